"""FileLoopSource: the built-in demo camera, a local MP4 played in real time, looping forever."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import av

from .handoff import LoopHandoff
from .options import IngestOptions
from .packets import PacketSink
from .sampler import Thumbnailer
from .source import SampleCallback, SourceFailure, StatusCallback, ThreadedSource

__all__ = ["FileLoopSource", "IngestOptions"]


class FileLoopSource(ThreadedSource):
    """Plays a server-side MP4 (H.264) like a live camera: paced by pts, looping seamlessly.

    Same interface and behaviour as CameraIngest (packets, samples, snapshot, status); pts keep
    rising across loops. The path comes from server config, never from the API.
    """

    _realtime = True

    def __init__(
        self,
        camera_id: int,
        path: str | Path,
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
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"<FileLoopSource camera={self.camera_id} path={str(self.path)!r}>"

    def _describe(self) -> str:
        return f"file {self.path.name}"

    def _open(self) -> AbstractContextManager[av.container.InputContainer]:
        if not self.path.is_file():
            raise SourceFailure("unreachable", f"no such file: {self.path}")
        return av.open(str(self.path), options={"protocol_whitelist": "file"})  # a local file, nothing else

    def _passes(
        self, container: av.container.InputContainer
    ) -> Iterator[tuple[av.VideoStream, Iterator[av.Packet]]]:
        stream = self._video_stream(container)
        while True:
            yielded = 0

            def counted() -> Iterator[av.Packet]:
                nonlocal yielded
                for packet in container.demux(stream):
                    if packet.size:
                        yielded += 1
                    yield packet

            yield stream, counted()
            if not yielded:
                raise SourceFailure("no_video", "the file has no video packets")
            container.seek(0, stream=stream)
