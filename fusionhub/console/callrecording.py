"""Glue for call recordings: media records each party's publisher; dispatch attaches the file to the case.

Media never imports dispatch: a finished recording travels as a `CallRecorded` on
`Topic.CALL_RECORDED`, and a `BusIntake` (its own consumer group) stores it as a "recording"
attachment of the case with a `call_recording` timeline entry, acknowledging only once stored.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fusionhub.console.busintake import BusIntake
from fusionhub.dispatch.service import DispatchService
from fusionhub.media.outputs import SourceOutputs
from fusionhub.media.recording import CallRecordingConfig
from fusionhub.media.streamrecorder import StreamRecorders, StreamRecording
from fusionhub.signaling.bus import Bus
from fusionhub.signaling.calls import Call
from fusionhub.signaling.messages import CallRecorded, Topic, payload

log = logging.getLogger(__name__)


class CallRecording:
    """Starts a recorder per call party and carries the results to dispatch; `stop()` finishes all."""

    def __init__(self, bus: Bus, dispatch: DispatchService, data_dir: Path, config: CallRecordingConfig) -> None:
        self._bus = bus
        self.recorders = StreamRecorders(data_dir, config)
        self._intake: BusIntake[CallRecorded] = BusIntake(
            bus, Topic.CALL_RECORDED, "dispatch-call-recordings", CallRecorded, dispatch.record_call_recording
        )

    async def start(self) -> None:
        """Join the intake's consumer group."""
        await self._intake.start()

    def record(self, call: Call, user_id: int, key: str, outputs: SourceOutputs) -> None:
        """Record one party's publisher (`key`: its name) until it ends."""
        parties = [call.caller, *([call.callee] if call.callee is not None else [])]
        name = next((p.name for p in parties if p.user_id == user_id), str(user_id))

        async def done(rec: StreamRecording) -> None:
            info = rec.info
            msg = CallRecorded(
                recording_id=rec.recording_id, call_id=call.call_id, case_id=call.case_id, user_id=user_id, name=name,
                started_at=info.start, ended_at=info.end, duration_s=round(max(0.0, info.end - info.start), 3),
                has_audio=info.has_audio, truncated=rec.truncated, path=rec.path, sha256=info.sha256, size=info.size,
            )
            await self._bus.publish(Topic.CALL_RECORDED, payload(msg))

        if self.recorders.start(key, outputs, done) is not None:
            log.info("call %s: recording %s", call.call_id, key)

    async def stop(self) -> None:
        """Finish every recording, report it, then leave the intake (safe to call twice)."""
        try:
            await self.recorders.stop()
        except Exception:
            log.exception("error while finishing the call recordings")
        await self._intake.stop()
