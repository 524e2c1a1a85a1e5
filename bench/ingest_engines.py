"""What packet ingest costs per frame: the hub's two RTSP engines, thread per camera and event loop.

    python -m bench.ingest_engines [--cameras 100,200] [--window-s 15]

On the capacity bench's 2-core box, "other" (mostly packet ingest) is the second cost after
inference, and it grows faster than the camera count: each camera's thread wakes for every packet
and contends for the GIL with every other camera's. This bench reads the same cameras over the
same wire through the hub's real MediaGateway with each `media.rtsp_engine`:

  threads     CameraIngest: one thread per camera, FFmpeg's RTSP client through PyAV (the default)
  event loop  LoopCameraIngest: every camera an asyncio protocol on the hub's event loop, RTSP over
              TCP with interleaved RTP, H.264 depacketised in Python (single NAL units, FU-A,
              STAP-A); keyframes decoded by the same sampler in a small shared pool; every packet
              read as it comes (media.read_batch_ms 0)
  batched     the same, as the hub runs a camera nobody watches live (the default): the loop
              wakes for a camera once about read_batch_ms (200) of its stream waits, and reads
              several frames at once

The cameras: one server process (bench/rtsp_loop.py) serving the capacity bench's clip (720p,
25 fps, keyframe every 2 s) to every client, each at its own phase, pre-packetised, over loopback.
Its CPU is not counted; a real camera's is not the hub's either.

Per set-up and camera count it prints frames delivered per second against the cameras' 25 fps,
socket reads per frame, and the hub process's CPU per frame without the keyframe decode and
scaling (which all do alike), with the ratios. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.capacity_clip import make_clip  # noqa: E402
from bench.rtsp_loop import FPS, serve  # noqa: E402
from fusionhub.media.config import MediaConfig  # noqa: E402
from fusionhub.media.gateway import MediaGateway  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s() -> float:
    """user+system CPU seconds of this process (all its threads)."""
    fields = Path(f"/proc/{os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SETUPS = {  # name: media config
    "threads": {"rtsp_engine": "threads"},
    "event loop": {"rtsp_engine": "event_loop", "read_batch_ms": 0},
    "batched": {"rtsp_engine": "event_loop", "read_batch_ms": MediaConfig().read_batch_ms},
}


async def measure(url: str, n: int, media: dict[str, Any], warmup_s: float, window_s: float) -> dict[str, float]:
    """The hub's real gateway reading n cameras with the given media config."""
    gateway = MediaGateway(
        MediaConfig.model_validate({"ingest": {"sample_max_side": 640}, **media}),
        on_sample=lambda *_a: None, on_status=lambda _s: None,
    )
    await gateway.start()
    try:
        for i in range(1, n + 1):
            await gateway.add_camera(i, f"{url}?cam={i}")
            gateway.set_analytics_need(i, True)
            await asyncio.sleep(1.0 / n)

        def totals() -> tuple[int, float, int, int]:
            stats = gateway.ingest_stats().values()
            return (
                sum(s.packets for s in stats), sum(s.decode_cpu_s + s.resize_cpu_s for s in stats),
                sum(s.samples for s in stats), sum(s.reads for s in stats),
            )

        return await _window(totals, warmup_s, window_s)
    finally:
        await gateway.stop()


async def _window(totals: Any, warmup_s: float, window_s: float) -> dict[str, float]:
    await asyncio.sleep(warmup_s)
    (frames0, decode0, samples0, reads0), cpu0, t0 = totals(), cpu_s(), time.monotonic()
    await asyncio.sleep(window_s)
    (frames1, decode1, samples1, reads1), cpu1, wall = totals(), cpu_s(), time.monotonic() - t0
    frames = max(1, frames1 - frames0)
    decode = decode1 - decode0
    return {
        "frames_per_s": frames / wall,
        "cores": (cpu1 - cpu0) / wall,
        "decode_cores": decode / wall,
        "us_per_frame": (cpu1 - cpu0 - decode) / frames * 1e6,
        "samples_per_s": (samples1 - samples0) / wall,  # keyframes decoded into pictures: the stream is intact
        "reads_per_frame": (reads1 - reads0) / frames,  # 0 for threads (FFmpeg's reads are not counted)
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    clip = make_clip(args.data_dir / "bench" / "capacity-720p25-gop2s.mp4")
    port = free_port()
    ready = mp.get_context("spawn").Event()
    server = mp.get_context("spawn").Process(target=serve, args=({"camera": clip}, port, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(60):
            raise SystemExit("the RTSP server did not start")
        url = f"rtsp://127.0.0.1:{port}/clip"
        results: dict[int, dict[str, dict[str, float]]] = {}
        for n in args.cameras:
            results[n] = {}
            for name, media in SETUPS.items():
                r = await measure(url, n, media, args.warmup_s, args.window_s)
                results[n][name] = r
                reads = f"; {r['reads_per_frame']:.2f} reads per frame" if r["reads_per_frame"] else ""
                print(
                    f"  {name:10s} {n:4d} cams: {r['frames_per_s']:7.0f} frames/s of {FPS * n} sent; hub process "
                    f"{r['cores']:.2f} cores, of which keyframe decode+scale {r['decode_cores']:.2f} "
                    f"({r['samples_per_s']:.0f} samples/s of {n // 2} keyframes/s){reads}; "
                    f"{r['us_per_frame']:.0f} µs per frame besides",
                    flush=True,
                )
                await asyncio.sleep(2.0)  # the server drops the closed connections
    finally:
        server.kill()
        server.join()
    print("\nsummary: hub CPU per frame besides keyframe decode (µs), and the share of frames delivered")
    for n, by_setup in results.items():
        t, e, b = by_setup["threads"], by_setup["event loop"], by_setup["batched"]
        print(
            f"  {n:4d} cameras  threads {t['us_per_frame']:5.0f} ({t['frames_per_s'] / (FPS * n):.0%})  "
            f"event loop {e['us_per_frame']:5.0f} ({e['frames_per_s'] / (FPS * n):.0%})  "
            f"batched {b['us_per_frame']:5.0f} ({b['frames_per_s'] / (FPS * n):.0%})  "
            f"ratios: event loop {t['us_per_frame'] / e['us_per_frame']:.2f}x, batched "
            f"{t['us_per_frame'] / b['us_per_frame']:.2f}x threads and {e['us_per_frame'] / b['us_per_frame']:.2f}x "
            "event loop"
        )
    n = max(results)
    t, e, b = results[n]["threads"], results[n]["event loop"], results[n]["batched"]
    return {
        "cameras": n,
        "threads_us_per_frame": round(t["us_per_frame"], 1),
        "event_loop_us_per_frame": round(e["us_per_frame"], 1),
        "batched_us_per_frame": round(b["us_per_frame"], 1),
        "threads_delivered": round(t["frames_per_s"] / (FPS * n), 3),
        "event_loop_delivered": round(e["frames_per_s"] / (FPS * n), 3),
        "batched_delivered": round(b["frames_per_s"] / (FPS * n), 3),
        "batched_reads_per_frame": round(b["reads_per_frame"], 3),
        "ratio_vs_threads": round(t["us_per_frame"] / e["us_per_frame"], 2),
        "batched_ratio_vs_event_loop": round(e["us_per_frame"] / b["us_per_frame"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", type=lambda s: [int(x) for x in s.split(",")], default=[100, 200])
    parser.add_argument("--warmup-s", type=float, default=5.0)
    parser.add_argument("--window-s", type=float, default=15.0)
    parser.add_argument("--data-dir", type=Path, default=REPO / "var")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
