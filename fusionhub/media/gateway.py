"""The media gateway: one ingest and one packet relay per camera, and every WHEP viewer session.

The console talks to media only through this class. Cameras are pulled once, whatever the
number of viewers; viewers get the camera's packets as received (no transcoding).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fusionhub.media.config import MediaConfig
from fusionhub.media.errors import GatewayFull, MediaError, UnknownCamera, UnknownSession
from fusionhub.media.filesource import FileLoopSource
from fusionhub.media.ice import pin_host_addresses
from fusionhub.media.ingest import CameraIngest
from fusionhub.media.relay import PacketRelay
from fusionhub.media.urls import validate_camera_url
from fusionhub.media.whep import WhepSession
from fusionhub.signaling.messages import CameraStatus

log = logging.getLogger(__name__)

SampleCallback = Callable[[int, float, np.ndarray], None]
StatusCallback = Callable[[CameraStatus], None]


class _Source(Protocol):
    """What the gateway needs of CameraIngest and FileLoopSource."""

    @property
    def status(self) -> CameraStatus: ...

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    def latest_keyframe_jpeg(self) -> bytes | None: ...


@dataclass
class _Camera:
    source: _Source
    relay: PacketRelay
    key: str  # what the source was built from (url or file path), to spot a real change; never logged


class MediaGateway:
    """Owns the cameras' sources and relays and all WHEP sessions; start() before use, stop() at the end."""

    def __init__(self, config: MediaConfig, *, on_sample: SampleCallback, on_status: StatusCallback) -> None:
        self._config = config
        self._on_sample = on_sample
        self._on_status = on_status
        self._cameras: dict[int, _Camera] = {}
        self._sessions: dict[str, WhepSession] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pinned = False
        self._stopped = False
        self.refused_full = 0

    async def start(self) -> None:
        """Apply the ICE host pinning (process-wide) and accept cameras and viewers."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        if self._config.ice_host_addresses is not None:
            pin_host_addresses(self._config.ice_host_addresses)
            self._pinned = True

    async def stop(self) -> None:
        """Close viewers, then sources, then relays; every step runs, errors are collected (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        errors: list[BaseException] = []
        for session in list(self._sessions.values()):
            await self._step(errors, session.close(), "closing WHEP session %s", session.session_id)
        for camera_id, cam in list(self._cameras.items()):
            await self._step(errors, cam.source.stop(), "stopping camera %s", camera_id)
            cam.relay.close()
        self._cameras.clear()
        self._sessions.clear()
        if self._pinned:
            pin_host_addresses(None)
            self._pinned = False
        if errors:
            raise MediaError(f"{len(errors)} error(s) while stopping the media gateway") from errors[0]

    @staticmethod
    async def _step(errors: list[BaseException], coro: Any, what: str, *args: object) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            errors.append(exc)
            log.exception("error " + what, *args)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._stopped:
            raise MediaError("the media gateway is not running")
        return self._loop

    async def add_camera(self, camera_id: int, url: str) -> None:
        """Pull an rtsp(s):// camera (raises InvalidCameraUrl); a changed URL replaces the running source."""
        validate_camera_url(url)
        loop = self._running_loop()

        def build(relay: PacketRelay) -> _Source:
            return CameraIngest(
                camera_id,
                url,
                sink=relay,
                on_sample=self._on_sample,
                on_status=self._on_status,
                loop=loop,
                options=self._config.ingest,
            )

        await self._install(camera_id, f"url:{url}", build)

    async def add_file_camera(self, camera_id: int, path: Path) -> None:
        """The built-in demo camera: a local clip played in a loop as if it were live."""
        loop = self._running_loop()

        def build(relay: PacketRelay) -> _Source:
            return FileLoopSource(
                camera_id,
                path,
                sink=relay,
                on_sample=self._on_sample,
                on_status=self._on_status,
                loop=loop,
                options=self._config.ingest,
            )

        await self._install(camera_id, f"file:{Path(path).resolve()}", build)

    async def _install(self, camera_id: int, key: str, build: Callable[[PacketRelay], _Source]) -> None:
        existing = self._cameras.get(camera_id)
        if existing is not None and existing.key == key:
            return  # same source (e.g. only the name or zones changed): keep pulling, keep viewers
        if existing is not None:
            # a new URL: swap the source under the same relay, so viewers stay and resume at the
            # new source's first keyframe
            await existing.source.stop()
            existing.relay.reset()
            relay = existing.relay
            log.info("camera %s: source replaced", camera_id)
        else:
            relay = PacketRelay(f"camera {camera_id}", queue_packets=self._config.viewer_queue_packets)
        source = build(relay)
        self._cameras[camera_id] = _Camera(source, relay, key)
        source.start()

    async def remove_camera(self, camera_id: int) -> None:
        """Stop pulling a camera and close its viewers (raises UnknownCamera)."""
        cam = self._cameras.pop(camera_id, None)
        if cam is None:
            raise UnknownCamera(f"camera {camera_id} is not in the media gateway")
        for session in [s for s in self._sessions.values() if s.camera_id == camera_id]:
            await session.close()
        cam.relay.close()
        await cam.source.stop()

    async def whep_offer(self, camera_id: int, sdp: str) -> tuple[str, str]:
        """Answer a WHEP offer for a camera: (answer SDP, session id).

        Raises UnknownCamera, GatewayFull (max_viewers reached), CodecUnsupported (no H.264 in
        the offer), InvalidOffer (not a usable SDP offer), TimeoutError (ICE gathering too slow).
        """
        self._running_loop()
        cam = self._cameras.get(camera_id)
        if cam is None:
            raise UnknownCamera(f"camera {camera_id} is not in the media gateway")
        if len(self._sessions) >= self._config.max_viewers:
            self.refused_full += 1
            raise GatewayFull(f"the hub already serves {self._config.max_viewers} viewers; try again later")
        session_id = secrets.token_urlsafe(16)
        session = WhepSession(session_id, camera_id, cam.relay, self._config, on_closed=self._forget_session)
        self._sessions[session_id] = session  # counted against max_viewers while the answer is built
        try:
            answer = await session.answer(sdp)
        except BaseException:
            await session.close()
            if camera_id not in self._cameras:
                raise UnknownCamera(f"camera {camera_id} was removed") from None
            raise
        log.info("camera %s: WHEP viewer %s joined (%d viewers)", camera_id, session_id[:6], len(self._sessions))
        return answer, session_id

    def _forget_session(self, session: WhepSession) -> None:
        if self._sessions.get(session.session_id) is session:
            del self._sessions[session.session_id]
            log.info("camera %s: WHEP viewer %s left", session.camera_id, session.session_id[:6])

    async def whep_delete(self, session_id: str) -> None:
        """End a WHEP session (raises UnknownSession)."""
        session = self._sessions.get(session_id)
        if session is None:
            raise UnknownSession("no such viewing session")
        await session.close()

    async def snapshot_jpeg(self, camera_id: int) -> bytes | None:
        """The latest keyframe as JPEG (encoded in a thread), None before the first (raises UnknownCamera)."""
        cam = self._cameras.get(camera_id)
        if cam is None:
            raise UnknownCamera(f"camera {camera_id} is not in the media gateway")
        return await asyncio.to_thread(cam.source.latest_keyframe_jpeg)

    def status(self, camera_id: int) -> CameraStatus:
        """A camera's current health (raises UnknownCamera)."""
        cam = self._cameras.get(camera_id)
        if cam is None:
            raise UnknownCamera(f"camera {camera_id} is not in the media gateway")
        return cam.source.status

    def statuses(self) -> list[CameraStatus]:
        """Every camera's current health, by camera id."""
        return [self._cameras[cid].source.status for cid in sorted(self._cameras)]

    def session_ids(self, camera_id: int | None = None) -> list[str]:
        """Open WHEP sessions, optionally of one camera."""
        return [sid for sid, s in self._sessions.items() if camera_id is None or s.camera_id == camera_id]

    def session(self, session_id: str) -> WhepSession:
        """One open WHEP session (raises UnknownSession); for diagnostics and tests."""
        try:
            return self._sessions[session_id]
        except KeyError:
            raise UnknownSession("no such viewing session") from None

    def stats(self) -> dict[str, Any]:
        """Counters for monitoring: per camera relay figures, viewers, refusals."""
        return {
            "cameras": {cid: cam.relay.stats() for cid, cam in sorted(self._cameras.items())},
            "viewers": len(self._sessions),
            "max_viewers": self._config.max_viewers,
            "refused_full": self.refused_full,
            "sessions": [s.stats() for s in self._sessions.values()],
        }
