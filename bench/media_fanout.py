"""Fan-out benchmark: one 720p@2 Mbit/s RTSP camera to N WHEP viewers, passthrough vs transcoding.

    python -m bench.media_fanout [--max-viewers 150] [--step 10] [--budget-s 280]

A real GStreamer RTSP camera (tests/support/rtsp_server.py) serves a 720p25 clip with real
motion (bench/fanout_clip.py, cached under var/bench/). The hub runs in its own process
(bench/fanout_hub.py); viewers are real aiortc peer connections in other processes
(bench/fanout_client.py), 127.0.0.1 only, host candidates pinned. N rises by --step until a
viewer falls below full rate (fps < 95 % of the camera's) or fails to connect. Each step:
connect the new viewers, settle, then a measured window: hub CPU (from /proc), packets/s,
p99 frame interval, connect time. Then aiortc's stock transcoding path (MediaPlayer decode +
per-viewer libx264) the same way, and late joiners (a decoding aiortc viewer joining at random
points of the GOP): time from the WHEP POST to its first decoded frame.

viewers_per_core = N at the largest all-full-rate step / hub cores used in that step's window
(the hub is one event loop: a figure above N means that step used less than a core);
all_full_rate: that step had every viewer connected and at full rate;
ratio_vs_transcode = passthrough viewers_per_core / transcoding viewers_per_core;
transcodes: the most senders with a real encoder the passthrough hub counted (its /stats, read
in every step's window while the viewers are connected).
The last line is one JSON object. Every loop is bounded; the run stops within --budget-s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.fanout_clip import make_fanout_clip
from tests.support.rtsp import RtspServer

FPS = 25
FULL_RATE = 0.95 * FPS
CLIP_S = 240  # longer than any one hub's phase: the camera never reaches the end of the file
SETTLE_S = 2.0
WINDOW_S = 5.0
VIEWERS_PER_PROCESS = 10
CLK_TCK = os.sysconf("SC_CLK_TCK")


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[0]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Proc:
    """A child process speaking JSON lines on stdout, commands on stdin."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, *args: str) -> Proc:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        return cls(proc)

    async def line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            raw = await self.proc.stdout.readline()
        if not raw:
            raise RuntimeError(f"process {self.proc.pid} ended (rc {await self.proc.wait()})")
        return raw.decode().strip()

    async def json(self, timeout: float) -> dict[str, Any]:
        while True:
            text = await self.line(timeout)
            if text.startswith("{"):
                return dict(json.loads(text))

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((text + "\n").encode())

    async def stop(self, timeout: float = 10.0) -> None:
        if self.proc.returncode is not None:
            return
        with contextlib.suppress(Exception):
            self.send("quit")
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            async with asyncio.timeout(timeout):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


@dataclass
class Step:
    viewers: int
    connected: int
    full_rate: int
    hub_cpu_pct: float  # of one core
    packets_per_s: float
    p99_interval_ms: float
    worst_fps: float
    connect_s_p50: float
    connect_s_max: float
    refusals: int
    load: str
    lost: int = 0
    hub_viewers: int | None = None  # sessions the hub itself counted during the window
    transcodes: int | None = None  # of those, senders with a real encoder (passthrough hub only)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.connected == self.viewers and self.full_rate == self.viewers

    @property
    def cpu_per_viewer(self) -> float:
        return self.hub_cpu_pct / max(1, self.viewers)


async def start_hub(mode: str, camera: str, extra: list[str]) -> tuple[Proc, str]:
    hub = await Proc.start("-m", "bench.fanout_hub", "--mode", mode, "--camera", camera, *extra)
    line = await hub.line(60)
    if not line.startswith("READY "):
        raise RuntimeError(f"hub said {line!r}")
    return hub, f"http://127.0.0.1:{line.split()[1]}/whep/cameras/1"


async def ramp(mode: str, url: str, hub: Proc, *, steps: list[int], deadline: float) -> list[Step]:
    """Add viewers step by step until one step is not all-connected at full rate."""
    clients: list[tuple[Proc, list[dict[str, Any]]]] = []
    results: list[Step] = []
    try:
        for target in steps:
            if time.monotonic() + 15 > deadline:
                print(f"  ({mode}: time budget reached before {target} viewers)")
                break
            have = sum(len(v) for _, v in clients)
            starting = []
            while have < target:
                n = min(VIEWERS_PER_PROCESS, target - have)
                proc = await Proc.start(
                    "-m", "bench.fanout_client", "--url", url, "--viewers", str(n), "--first-index", str(have)
                )
                starting.append(proc)
                have += n
            for proc in starting:
                summary = await proc.json(90)
                clients.append((proc, summary["viewers"]))
            await asyncio.sleep(SETTLE_S)
            t0, c0 = time.monotonic(), cpu_seconds(hub.proc.pid)
            await asyncio.sleep(WINDOW_S)
            t1, c1 = time.monotonic(), cpu_seconds(hub.proc.pid)
            reports: list[dict[str, Any]] = []
            for proc, _ in clients:
                proc.send(f"report {t0} {t1}")
                reports += (await proc.json(30))["viewers"]
            summaries = [v for _, vs in clients for v in vs]
            step = summarise(target, summaries, reports, (c1 - c0) / (t1 - t0) * 100, t1 - t0)
            stats = await hub_stats(url)  # read while every viewer of the step is still connected
            step.hub_viewers, step.transcodes = stats.get("viewers"), stats.get("transcodes")
            results.append(step)
            print(row(mode, step), flush=True)
            if not step.ok:
                break
    finally:
        await asyncio.gather(*(proc.stop() for proc, _ in clients))
    return results


def summarise(n: int, summaries: list[dict[str, Any]], reports: list[dict[str, Any]], cpu_pct: float, window: float) -> Step:
    connected = [s for s in summaries if s["ok"]]
    connect = sorted(s["connect_s"] for s in connected if s["connect_s"] is not None) or [float("nan")]
    live = [r for r in reports if r["connected"]]
    full = [r for r in live if r["fps"] >= FULL_RATE]
    p99s = [r["p99_interval_ms"] for r in live if r["p99_interval_ms"] is not None]
    packets = sum(r["packets"] for r in reports)
    failures = [f"viewer {s['index']}: {s['error']}" for s in summaries if not s["ok"]]
    failures += [f"viewer {r['index']}: {r['fps']:.1f} fps" for r in live if r["fps"] < FULL_RATE]
    return Step(
        viewers=n,
        connected=sum(1 for r in live if r["connected"]) if len(live) == len(connected) else len(connected),
        full_rate=len(full),
        hub_cpu_pct=cpu_pct,
        packets_per_s=packets / window,
        p99_interval_ms=max(p99s) if p99s else float("nan"),
        worst_fps=min((r["fps"] for r in live), default=0.0),
        connect_s_p50=statistics.median(connect),
        connect_s_max=connect[-1],
        refusals=sum(s["refusals"] for s in summaries),
        load=loadavg(),
        lost=sum(r["lost"] for r in reports),
        failures=failures[:5],
    )


def header() -> str:
    return (
        f"{'mode':<12}{'viewers':>8}{'conn':>6}{'full':>6}{'hub CPU%':>10}{'%/viewer':>10}{'pkts/s':>9}"
        f"{'p99 ms':>8}{'min fps':>8}{'conn p50':>9}{'conn max':>9}{'503s':>6}{'lost':>6}{'load':>7}"
    )


def row(mode: str, s: Step) -> str:
    text = (
        f"{mode:<12}{s.viewers:>8}{s.connected:>6}{s.full_rate:>6}{s.hub_cpu_pct:>10.1f}{s.cpu_per_viewer:>10.2f}"
        f"{s.packets_per_s:>9.0f}{s.p99_interval_ms:>8.0f}{s.worst_fps:>8.1f}{s.connect_s_p50:>9.3f}"
        f"{s.connect_s_max:>9.3f}{s.refusals:>6}{s.lost:>6}{s.load:>7}"
    )
    return text + ("" if s.ok else "   <- " + "; ".join(s.failures))


def per_core(results: list[Step]) -> tuple[float, Step | None]:
    passing = [s for s in results if s.ok]
    if not passing:
        return 0.0, None
    best = passing[-1]
    return best.viewers / max(best.hub_cpu_pct / 100, 1e-6), best


async def late_joiners(url: str, trials: int) -> list[float]:
    """First decoded frame of an aiortc viewer joining at a random point of the GOP."""
    times: list[float] = []
    for _ in range(trials):
        await asyncio.sleep(random.uniform(0.3, 2.3))  # a random phase of the 2 s GOP
        proc = await Proc.start(
            "-m", "bench.fanout_client", "--url", url, "--viewers", "1", "--decode", "--wait-first-frame", "10"
        )
        try:
            viewer = (await proc.json(60))["viewers"][0]
        finally:
            await proc.stop()
        if viewer["first_frame_s"] is not None:
            times.append(float(viewer["first_frame_s"]))
    return times


async def hub_stats(url: str) -> dict[str, Any]:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(url.split("/whep/")[0] + "/stats") as r:
        return dict(await r.json())


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    deadline = started + args.budget_s
    clip_path = Path(args.data_dir) / "bench" / f"fanout-720p{FPS}-2M-{CLIP_S}s.mp4"
    print(f"clip {clip_path} (made once, then reused) ...", flush=True)
    clip = await asyncio.to_thread(make_fanout_clip, clip_path, seconds=CLIP_S, fps=FPS, bitrate=2_000_000)
    deadline = max(deadline, time.monotonic() + 120)  # making the clip the first time does not count
    steps = list(range(args.step, args.max_viewers + 1, args.step))
    print(f"load average at start: {loadavg()} on {os.cpu_count()} CPUs", flush=True)
    async with RtspServer(clip) as camera:
        # the hub's own viewer limit (media.max_viewers) must not be what the ramp measures
        hub_config = {"max_viewers": args.max_viewers + args.step, **json.loads(args.hub_config)}
        hub, url = await start_hub("passthrough", camera.url, ["--config", json.dumps(hub_config)])
        try:
            await asyncio.sleep(3)  # the ingest is up and a GOP is cached
            late = await late_joiners(url, args.late_trials)
            print(f"late joiner, first decoded frame after the WHEP POST: {[round(t, 3) for t in late]} s")
            print(header(), flush=True)
            passthrough = await ramp("passthrough", url, hub, steps=steps, deadline=deadline - 60)
        finally:
            await hub.stop()
        hub, url = await start_hub("transcode", camera.url, [])
        try:
            await asyncio.sleep(3)
            transcode = await ramp("transcode", url, hub, steps=[1, 2, 3, 4, 6, 8], deadline=deadline)
        finally:
            await hub.stop()
    pt_core, pt_best = per_core(passthrough)
    tc_core, tc_best = per_core(transcode)
    print()
    for name, best, vpc in (("passthrough", pt_best, pt_core), ("transcode", tc_best, tc_core)):
        if best is None:
            print(f"{name}: no step had every viewer at full rate")
        else:
            print(
                f"{name}: {best.viewers} viewers all at full rate with {best.hub_cpu_pct:.1f} % of a core "
                f"({best.cpu_per_viewer:.2f} %/viewer, p99 frame interval {best.p99_interval_ms:.0f} ms) "
                f"-> {vpc:.0f} viewers per core"
            )
    counted = [s.transcodes for s in passthrough if s.transcodes is not None]
    transcodes = max(counted) if counted else None
    sessions = max((s.hub_viewers or 0 for s in passthrough), default=0)
    print(
        f"passthrough hub: at most {sessions} sessions open at once, {transcodes} of them with an encoder; "
        f"run took {time.monotonic() - started:.0f} s"
    )
    # None (JSON null), never Infinity, when the transcoding baseline had no passing step
    ratio = round(pt_core / tc_core, 1) if tc_core else None
    if ratio is not None:
        print(f"passthrough viewers per core / transcoding viewers per core = {ratio}")
    return {
        "viewers_per_core": int(pt_core),
        "all_full_rate": pt_best is not None,
        "transcodes": transcodes,
        "ratio_vs_transcode": ratio,
        "late_join_first_frame_s": round(max(late), 3) if late else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-viewers", type=int, default=150)
    ap.add_argument("--step", type=int, default=10)
    ap.add_argument("--budget-s", type=float, default=280.0, help="stop ramping so the run ends within this")
    ap.add_argument("--late-trials", type=int, default=5)
    ap.add_argument("--data-dir", default="var")
    ap.add_argument("--hub-config", default="{}", help="MediaConfig fields (JSON) for the passthrough hub")
    args = ap.parse_args()
    result = asyncio.run(main_async(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
