"""Push-to-talk benchmark: one room of N participants, one talker at a time, N rising.

    python -m bench.intercom                 # N = 8, 16, 32, 64; both paths; about 3–5 minutes
    python -m bench.intercom --sizes 8 16    # fewer sizes

For each N the hub runs in its own process (bench/intercom_hub.py), first as the hub does it
(`forward`: the floor holder's Opus packets forwarded as they are, bursts recorded) and then
the same rooms with aiortc's default path (`default`: the talker decoded, an Opus encoder per
listener), the baseline, in the same run. The N participants are real aiortc peers (ICE, DTLS,
SRTP, data channel) spread over client processes (bench/ptt_client.py), all on 127.0.0.1.

Figures per run:
- hub CPU: the hub process's CPU time over a window with one participant talking, in % of one
  core (from /proc/PID/stat, so other processes on the machine do not count);
- packets/s per listener over that window (a talker sends 50/s);
- mouth-to-ear latency p99: the talker sends a 100 ms tone every 500 ms; latency is from the
  talker handing out a tone's first packet to a listener receiving the first loud packet;
- floor-grant latency p99: request sent on the data channel → `granted` received, over many
  request/release probes by different participants.
The last line is JSON: {"participants", "hub_cpu_pct", "grant_p99_ms", "ratio_vs_default", …} for
the largest N (ratio = default CPU / forward CPU). `cat /proc/loadavg` is printed beside each run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
CLIENTS_PER_PROCESS = 16
TALK_S = 6.0  # one talker; CPU and packets are measured over its last TALK_S - WARM_S seconds
WARM_S = 1.0
PROBES = 100  # grant probes per run
PROBE_GAP_S = 0.05
PROBE_WAIT_S = 8.0
CONNECT_TIMEOUT_S = 150.0


def loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def p99(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]


class Proc:
    """A child process speaking one JSON line per answer on stdout, commands on stdin."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, *args: str) -> Proc:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=64 * 1024 * 1024
        )
        return cls(proc)

    async def line(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.proc.stdout.readline()
                if not raw:
                    raise RuntimeError(f"process {self.proc.pid} ended")
                try:
                    return dict(json.loads(raw))
                except ValueError:
                    continue  # a stray print

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((text + "\n").encode())

    async def stop(self) -> None:
        if self.proc.returncode is None:
            try:
                self.send("quit")
                await self.proc.stdin.drain()  # type: ignore[union-attr]
                self.proc.stdin.close()  # type: ignore[union-attr]
                await asyncio.wait_for(self.proc.wait(), 20)
            except (TimeoutError, ConnectionError, BrokenPipeError):
                self.proc.kill()
                await self.proc.wait()


@dataclass
class Result:
    mode: str
    n: int
    connected: int = 0
    hub_cpu_pct: float = 0.0
    pps: float = 0.0
    pps_min: float = 0.0
    latency_p99_ms: float | None = None
    latency_p50_ms: float | None = None
    grant_p99_ms: float | None = None
    grants: int = 0
    grant_timeouts: int = 0
    load: str = ""
    connect_s: float = 0.0
    errors: list[str] = field(default_factory=list)


async def run_once(mode: str, n: int) -> Result:
    result = Result(mode, n)
    hub = await Proc.start("-m", "bench.intercom_hub", "--mode", mode)
    clients: list[Proc] = []
    try:
        info = await hub.line(30)
        url = f"http://127.0.0.1:{info['port']}/join/bench"
        t0 = time.monotonic()
        owner: dict[int, Proc] = {}
        for first in range(0, n, CLIENTS_PER_PROCESS):
            count = min(CLIENTS_PER_PROCESS, n - first)
            proc = await Proc.start("-m", "bench.ptt_client", "--url", url, "--clients", str(count), "--first-index", str(first))
            clients.append(proc)
            for i in range(first, first + count):
                owner[i] = proc
        for proc in clients:
            connected = await proc.line(CONNECT_TIMEOUT_S)
            result.connected += sum(1 for c in connected["clients"] if c["ok"])
            result.errors += [c["error"] for c in connected["clients"] if not c["ok"]][:3]
        result.connect_s = time.monotonic() - t0
        await asyncio.sleep(1.0)

        # one talker; the window starts once its audio flows
        talker = 0
        owner[talker].send(f"talk {talker}")
        await asyncio.sleep(WARM_S)
        w0, c0 = time.monotonic(), cpu_seconds(info["pid"])
        await asyncio.sleep(TALK_S - WARM_S)
        w1, c1 = time.monotonic(), cpu_seconds(info["pid"])
        owner[talker].send(f"release {talker}")
        result.hub_cpu_pct = 100.0 * (c1 - c0) / (w1 - w0)
        result.load = loadavg()
        await asyncio.sleep(0.5)

        # floor-grant probes by different participants, one at a time
        for k in range(PROBES):
            who = (k * 7 + 1) % n
            owner[who].send(f"probe {who}")
            await asyncio.sleep(PROBE_GAP_S)
        # a saturated hub answers late: wait (bounded) until every probe has its answer or timed out
        deadline = time.monotonic() + PROBE_WAIT_S
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            for proc in clients:
                proc.send("pending")
            if sum([(await proc.line(30))["n"] for proc in clients]) == 0:
                break

        reports: list[dict[str, Any]] = []
        for proc in clients:
            proc.send(f"report {w0} {w1}")
        for proc in clients:
            reports += (await proc.line(60))["clients"]
        listeners = [r for r in reports if r["index"] != talker]
        rates = [r["pps"] for r in listeners]
        result.pps = sum(rates) / len(rates) if rates else 0.0
        result.pps_min = min(rates) if rates else 0.0
        talk_onsets = sorted(next(r for r in reports if r["index"] == talker)["talk_onsets"])
        latencies: list[float] = []
        for r in listeners:
            for onset in r["onsets"]:
                before = [t for t in talk_onsets if t <= onset]
                if before and onset - before[-1] < 0.45:
                    latencies.append((onset - before[-1]) * 1000)
        # every grant but the talker's first (that one started the talk window, not a probe)
        grants = [g for r in reports for g in (r["grant_ms"][1:] if r["index"] == talker else r["grant_ms"])]
        result.grants = len(grants)
        result.grant_timeouts = sum(r.get("grant_timeouts", 0) for r in reports)
        result.grant_p99_ms = p99(grants)
        result.latency_p99_ms = p99(latencies)
        result.latency_p50_ms = sorted(latencies)[len(latencies) // 2] if latencies else None
    finally:
        await asyncio.gather(*(c.stop() for c in clients), return_exceptions=True)
        await hub.stop()
    return result


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


async def main_async(sizes: list[int]) -> None:
    started = time.monotonic()
    print(f"intercom benchmark: sizes {sizes}; loadavg at start {loadavg()}; {os.cpu_count()} CPUs", flush=True)
    header = f"{'mode':8} {'N':>3} {'ok':>3} {'hub CPU %':>9} {'pkt/s/listener':>14} {'m2e p50/p99 ms':>15} {'grant p99 ms':>12} {'loadavg':>16}"
    print(header, flush=True)
    table: dict[tuple[str, int], Result] = {}
    for n in sizes:
        for mode in ("forward", "default"):
            r = await run_once(mode, n)
            table[(mode, n)] = r
            print(
                f"{mode:8} {n:>3} {r.connected:>3} {r.hub_cpu_pct:>9.1f} {r.pps:>8.1f} (min {r.pps_min:.0f})"
                f" {fmt(r.latency_p50_ms, 0):>6}/{fmt(r.latency_p99_ms, 0):<6} {fmt(r.grant_p99_ms):>12} {r.load:>16}",
                flush=True,
            )
            if r.grant_timeouts:
                print(f"   {r.grant_timeouts} floor requests got no answer within 5 s", flush=True)
            for err in r.errors:
                print(f"   error: {err}", flush=True)
    print("ratio default/forward CPU: " + ", ".join(
        f"N={n}: {table[('default', n)].hub_cpu_pct / max(table[('forward', n)].hub_cpu_pct, 0.01):.1f}x" for n in sizes
    ), flush=True)
    print(f"total {time.monotonic() - started:.0f} s", flush=True)
    n = sizes[-1]
    fwd, base = table[("forward", n)], table[("default", n)]
    print(json.dumps({
        "participants": n,
        "hub_cpu_pct": round(fwd.hub_cpu_pct, 1),
        "grant_p99_ms": None if fwd.grant_p99_ms is None else round(fwd.grant_p99_ms, 1),
        "ratio_vs_default": round(base.hub_cpu_pct / max(fwd.hub_cpu_pct, 0.01), 2),
        "default_cpu_pct": round(base.hub_cpu_pct, 1),
        "mouth_to_ear_p99_ms": None if fwd.latency_p99_ms is None else round(fwd.latency_p99_ms, 1),
        "pps_per_listener": round(fwd.pps, 1),
        "connected": fwd.connected,
        "loadavg": fwd.load,
    }))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 16, 32, 64])
    args = ap.parse_args()
    if any(s < 2 or s > 256 for s in args.sizes):
        ap.error("sizes are 2–256 participants")
    asyncio.run(main_async(sorted(args.sizes)))


if __name__ == "__main__":
    main()
