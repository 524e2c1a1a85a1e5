"""CameraIngest: pull one RTSP camera with PyAV in its own thread, without transcoding."""

from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager

import av

from .handoff import LoopHandoff
from .options import IngestOptions
from .packets import PacketSink
from .sampler import Thumbnailer
from .source import SampleCallback, StatusCallback, ThreadedSource
from .urls import redactor, strip_credentials, validate_camera_url

__all__ = ["CameraIngest", "IngestOptions"]


class CameraIngest(ThreadedSource):
    """One RTSP camera: H.264 packets to the sink, keyframe samples to analytics, health status.

    Reconnects forever with exponential backoff and jitter. States: connecting, online (first
    packet), degraded (no keyframe for options.keyframe_timeout_s), offline with a reason
    (unreachable, auth_refused, no_video, unsupported_codec, ended, timeout), stopped.
    Raises InvalidCameraUrl (from the constructor) for a URL that is not rtsp(s)://host/...
    """

    def __init__(
        self,
        camera_id: int,
        url: str,
        *,
        sink: PacketSink,
        on_sample: SampleCallback,
        on_status: StatusCallback,
        loop: asyncio.AbstractEventLoop,
        options: IngestOptions,
        handoff: LoopHandoff | None = None,
        thumbnailer: Thumbnailer | None = None,
    ) -> None:
        super().__init__(
            camera_id,
            sink=sink,
            on_sample=on_sample,
            on_status=on_status,
            loop=loop,
            options=options,
            handoff=handoff,
            thumbnailer=thumbnailer,
        )
        self._url = validate_camera_url(url)
        self.public_url, _ = strip_credentials(url)
        self._scrub = redactor(url)

    def __repr__(self) -> str:
        return f"<CameraIngest camera={self.camera_id} url={self.public_url!r}>"

    def _describe(self) -> str:
        return self.public_url

    def _redact(self, text: str) -> str:
        return self._scrub(text)  # FFmpeg echoes the URL, and may quote the password bare

    def _open(self) -> AbstractContextManager[av.container.InputContainer]:
        timeout = self._options.timeout_s
        # FFmpeg's own socket timeout bounds connecting and every read. PyAV's `timeout=` is not
        # used: its interrupt callback takes the GIL each time FFmpeg checks it, which is before
        # every recv (three per RTP packet over TCP). With 150 cameras that was 776 µs of CPU per
        # frame against 146 without, and half the frames never arrived (bench/ingest_engines.py).
        return av.open(
            self._url,
            options={
                "rtsp_transport": "tcp",
                "timeout": str(int(timeout * 1_000_000)),  # socket I/O, microseconds
                "analyzeduration": "200000",
                "protocol_whitelist": "rtsp,rtsps,tcp,tls,udp,rtp",
                # Audio is set up only when the sink takes it (the gateway's outputs do); a
                # video-only sink keeps a single stream, whose clock FFmpeg never re-bases.
                "allowed_media_types": "video+audio" if hasattr(self._sink, "on_audio") else "video",
            },
        )

    def _classify(self, exc: Exception, *, opening: bool) -> str:
        if isinstance(exc, (av.error.HTTPUnauthorizedError, av.error.HTTPForbiddenError)):
            return "auth_refused"
        if isinstance(exc, (av.error.ExitError, av.error.TimeoutError, TimeoutError)):
            return "timeout"  # FFmpeg's socket timeout (ETIMEDOUT); ExitError: an interrupted read
        return "unreachable" if opening else "ended"
