"""RtspServer: a real GStreamer RTSP camera on 127.0.0.1 for tests (tests/support/rtsp_server.py).

    async with RtspServer(clip) as cam:
        ingest = CameraIngest(1, cam.url, ...)
        await cam.stop()      # the camera dies (SIGKILL)
        await cam.restart()   # it comes back on the same port

Every client gets its own stream from the start of the file (the media is not shared).
TinyRtspServer: a scripted RTSP answerer (redirects, challenges) that records what it is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # has `gi` with GstRtspServer; the venv does not
_READY_TIMEOUT_S = 15.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RtspServer:
    """The test RTSP server as a subprocess; always killed on exit."""

    def __init__(
        self,
        file: Path,
        *,
        path: str = "cam",
        user: str | None = None,
        password: str | None = None,
        digest: bool = False,
        params_in_sdp_only: bool = False,
        audio: str = "none",
        video: str = "h264",
        video_stops_after: float | None = None,
        port: int | None = None,
        substream: Path | None = None,
    ) -> None:
        self.file = Path(file)
        self.path = path.lstrip("/")
        self.user = user
        self.password = password
        self.digest = digest  # digest auth (RFC 2617) instead of basic, when user is set
        self.params_in_sdp_only = params_in_sdp_only
        self.audio = audio  # none, pcma, pcmu or aac: also serve the file's AAC track (G.711 transcoded)
        self.video = video  # h264, h265 (the file must be H.265) or none (audio only)
        self.video_stops_after = video_stops_after  # seconds: then only the audio goes on
        self.port = port or free_port()
        self.substream = substream  # also served at /sub, behind the same login (a camera's substream)
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr = tempfile.TemporaryFile()

    @property
    def url(self) -> str:
        """The camera URL, with the server's credentials when it requires some."""
        return self.url_for(self.user, self.password)

    def url_for(self, user: str | None = None, password: str | None = None) -> str:
        """The camera URL with the given credentials (none when user is None)."""
        auth = ""
        if user is not None:
            auth = quote(user, safe="") + ":" + quote(password or "", safe="") + "@"
        return f"rtsp://{auth}127.0.0.1:{self.port}/{self.path}"

    def sub_url_for(self, user: str | None = None, password: str | None = None) -> str:
        """The substream's URL (see `substream`) with the given credentials (none when user is None)."""
        return self.url_for(user, password).rsplit("/", 1)[0] + "/sub"

    @property
    def pid(self) -> int | None:
        """The server process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        """Start the server and wait until it serves (it prints READY)."""
        if self._proc is not None:
            raise RuntimeError("already running")
        args = [str(SERVER_SCRIPT), "--port", str(self.port), "--path", self.path]
        args += ["--file", str(self.file)]
        if self.user is not None:
            args += ["--user", self.user, "--password", self.password or ""]
            if self.digest:
                args.append("--digest")
        if self.params_in_sdp_only:
            args.append("--params-in-sdp-only")
        if self.audio != "none":
            args += ["--audio", self.audio]
        if self.video != "h264":
            args += ["--video", self.video]
        if self.video_stops_after is not None:
            args += ["--video-stops-after", str(self.video_stops_after)]
        if self.substream is not None:
            args += ["--sub-file", str(self.substream), "--sub-path", "sub"]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        self._proc = await asyncio.create_subprocess_exec(
            SYSTEM_PYTHON,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )
        assert self._proc.stdout is not None
        try:
            async with asyncio.timeout(_READY_TIMEOUT_S):
                while True:
                    line = await self._proc.stdout.readline()
                    if not line:
                        raise RuntimeError(f"RTSP server exited: {self._stderr_text()}")
                    if line.strip() == b"READY":
                        return
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Kill the server at once (a camera losing power). Safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:
            proc.kill()
        await proc.wait()

    async def restart(self) -> None:
        """Kill the server and start it again on the same port."""
        await self.stop()
        await self.start()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open but nothing is sent."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo pause()."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def _stderr_text(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")[-2000:]

    async def __aenter__(self) -> RtspServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.stop()
        finally:
            self._stderr.close()


class LoopbackServer:
    """A scripted TCP server on 127.0.0.1 (an ephemeral port) for the length of an `async with`;
    subclasses answer each connection in `_client`."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class TinyRtspServer(LoopbackServer):
    """A loopback RTSP server that answers OPTIONS, and DESCRIBE by `describe(port)` (status line and
    headers); it records every request head it was sent."""

    def __init__(self, describe: Callable[[int], str]) -> None:
        super().__init__()
        self.describe = describe
        self.requests: list[str] = []

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                self.requests.append(head)
                cseq = next((line for line in head.split("\r\n") if line.lower().startswith("cseq:")), "CSeq: 0")
                if head.startswith("DESCRIBE"):
                    answer = self.describe(self.port)
                else:
                    answer = "RTSP/1.0 200 OK\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN"
                writer.write(f"{answer}\r\n{cseq}\r\nContent-Length: 0\r\n\r\n".encode("latin-1"))
                await writer.drain()
        writer.close()
