"""The hub side of the intercom benchmark: one process serving push-to-talk joins on 127.0.0.1.

    python -m bench.intercom_hub --mode forward   # the hub's intercom: the holder's Opus packets as they are
    python -m bench.intercom_hub --mode default   # aiortc's default path: decode, then an encoder per listener

`forward` is fusionhub.media.intercom.Intercom as the hub runs it (floor control, recording on).
`default` is the same rooms, sessions and floor control with the media done the way aiortc does
it out of the box: the receiver decodes the talker (jitter buffer + decoder thread), every
listener's track gets the decoded frames, and every listener's RTCRtpSender encodes them with
its own Opus encoder. POST /join/{room}?name=pN (application/sdp) answers 201 with the SDP.
Prints {"port", "pid"} once listening; exits on stdin EOF or "quit".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import sys
import tempfile
from collections import deque
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from aiohttp import web
from aiortc import RTCConfiguration, RTCRtpTransceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from fusionhub.media.ice import pin_host_addresses
from fusionhub.media.intercom import Intercom, IntercomConfig, Participant
from fusionhub.media.intercom.room import IntercomRoom
from fusionhub.media.intercom.session import IntercomSession

TIME_BASE = Fraction(1, 48_000)


class FrameTrack(MediaStreamTrack):
    """A listener's outgoing audio in the default path: decoded frames, encoded by its own sender."""

    kind = "audio"

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self._queue: deque[av.AudioFrame] = deque(maxlen=capacity)
        self._ready = asyncio.Event()
        self.packets_sent = 0
        self.dropped = 0

    def offer(self, frame: av.AudioFrame) -> None:
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append(frame)
        self._ready.set()

    async def recv(self) -> av.AudioFrame:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        self.packets_sent += 1
        return self._queue.popleft()

    def stop(self) -> None:
        super().stop()
        self._ready.set()


class DecodingSession(IntercomSession):
    """A session whose incoming audio goes through aiortc's receiver (decoded) instead of the tap."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.track = FrameTrack(self._config.listener_queue_packets)  # type: ignore[assignment]
        self._reader: asyncio.Task[None] | None = None

    def _attach_receiver(self, transceiver: RTCRtpTransceiver) -> None:
        # aiortc creates the remote track when the offer is applied: read it from then on
        def on_track(track: MediaStreamTrack) -> None:
            if self._reader is None:
                self._reader = asyncio.create_task(self._read(track))

        self._pc.on("track", on_track)

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self.packets_in += 1
                self._on_rtp(self, frame)  # type: ignore[arg-type]

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await super().close()


class DecodingRoom(IntercomRoom):
    """The holder's decoded frames to every other listener (each listener's sender encodes them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pts = 0

    def on_rtp(self, session: IntercomSession, frame: Any) -> None:  # type: ignore[override]
        if not self.floor.on_media(session.id, self._clock()):
            session.dropped_in += 1
            return
        # one monotonic clock for the room (set once, before any encoder reads the frame)
        frame.pts = self._pts
        frame.time_base = TIME_BASE
        self._pts += frame.samples
        for other in self._sessions.values():
            if other is not session:
                other.track.offer(frame)
        self.forwarded += 1


class DecodingIntercom(Intercom):
    room_class = DecodingRoom
    session_class = DecodingSession


async def run(args: argparse.Namespace) -> None:
    pin_host_addresses(["127.0.0.1"])
    config = IntercomConfig.model_validate({"max_participants": 1000, "record": args.mode == "forward"})
    cls = Intercom if args.mode == "forward" else DecodingIntercom
    with tempfile.TemporaryDirectory(prefix="fh-ptt-bench-") as data_dir:

        async def on_burst(_: Any) -> None:
            return None

        intercom = cls(config, rtc=lambda: RTCConfiguration(iceServers=[]), data_dir=Path(data_dir), on_burst=on_burst)
        await intercom.start()
        ids = itertools.count(1)

        async def join(request: web.Request) -> web.Response:
            name = request.query.get("name", "p")
            participant = Participant(user_id=next(ids), name=name, role="field", priority=100)
            answer, _ = await intercom.join(request.match_info["room"], participant, await request.text())
            return web.Response(status=201, body=answer.encode(), content_type="application/sdp")

        async def stats(request: web.Request) -> web.Response:
            return web.json_response(intercom.stats())

        app = web.Application()
        app.router.add_post("/join/{room}", join)
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        try:
            while True:
                line = await reader.readline()
                if not line or line.strip() == b"quit":
                    break
        finally:
            await runner.cleanup()
            await intercom.stop()
    pin_host_addresses(None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("forward", "default"), default="forward")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
