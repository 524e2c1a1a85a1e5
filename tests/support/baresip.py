"""A real SIP video terminal for tests: baresip (Debian `baresip-core`, `baresip-ffmpeg`) on 127.0.0.1.

It auto-answers calls to sip:terminal@127.0.0.1:{port} and sends a synthetic picture (fakevideo)
encoded as H.264 by libx264, and a 440 Hz tone as Opus (or G.711 when `audio="pcmu"`, G.722 when
`audio="g722"`).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO

BARESIP = shutil.which("baresip")
MODULES = Path("/usr/lib/baresip/modules")


def available() -> bool:
    """Whether baresip and its H.264 (avcodec) module are installed."""
    return BARESIP is not None and (MODULES / "avcodec.so").exists() and (MODULES / "fakevideo.so").exists()


def free_udp_port() -> int:
    """A UDP port free on 127.0.0.1 now (for a terminal registered before it starts)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(sip_port: int, audio: str) -> str:
    codec = {"opus": "opus.so", "pcmu": "g711.so", "g722": "g722.so"}[audio]
    return "\n".join([
        "poll_method epoll",
        f"sip_listen 127.0.0.1:{sip_port}",
        "net_interface 127.0.0.1",
        "audio_player aufile,/dev/null",
        "audio_alert aufile,/dev/null",
        "audio_source ausine,440",
        "ausrc_srate 48000",
        "ausrc_channels 2",  # ausine makes stereo only; baresip resamples for G.711
        "auplay_srate 48000",
        "video_source fakevideo,nil",
        "video_display fakevideo,nil",
        "video_size 320x240",
        "video_bitrate 300000",
        "video_fps 15",
        f"module_path {MODULES}",
        f"module {codec}",
        "module avcodec.so",
        "module ausine.so",
        "module aufile.so",
        "module fakevideo.so",
        "module_app account.so",
        "module_app menu.so",
        "",
    ])


def _launch(home: str, dial: str | None) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    log = open(Path(home) / "log", "wb")  # noqa: SIM115  # closed by baresip_terminal
    command = [str(BARESIP), "-f", home, *(["-e", f"/dial {dial}"] if dial else [])]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT), log


@asynccontextmanager
async def baresip_terminal(audio: str = "opus", *, port: int | None = None, dial: str | None = None) -> AsyncIterator[str]:
    """Run baresip until the block ends; yields the SIP URI to dial. `dial`: the terminal calls that URI."""
    assert BARESIP is not None
    port = port or free_udp_port()
    with tempfile.TemporaryDirectory(prefix="fh-baresip-") as home:
        (Path(home) / "config").write_text(_config(port, audio))
        uri = f"sip:terminal@127.0.0.1:{port}"
        (Path(home) / "accounts").write_text(f"<{uri}>;answermode=auto;regint=0\n")
        proc, log = _launch(home, dial)
        try:
            for _ in range(50):  # "baresip is ready." within a few seconds
                await asyncio.sleep(0.1)
                if b"baresip is ready" in (Path(home) / "log").read_bytes():
                    break
                if proc.poll() is not None:
                    raise RuntimeError("baresip exited: " + (Path(home) / "log").read_text(errors="replace")[-2000:])
            yield uri
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
