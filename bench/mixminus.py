"""Mix-minus vs an encoder per listener, for one call with T talkers and N listeners.

Prints, for N rising, the CPU seconds per second of audio (= % of a core / 100) of
(a) fusionhub.media.mixminus.MixMinus: T decoders + (T + 1) Opus encoders, whatever N;
(b) the per-listener baseline (aiortc's default: each listener's track mixed and encoded on its
own): T decoders + N encoders.
Both run in this process on the same decoded input; the load average is printed beside them
(this machine is shared: figures are noisy). Last line: one JSON object.

    python -m bench.mixminus [--talkers 2] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from fusionhub.media.mixminus import FRAME, MixMinus, _encode, _encoder
from tests.media.test_mixminus import _tone_packets


def _mixminus(packets: list[list[bytes]], frames: int) -> float:
    mixer = MixMinus(max_talkers=len(packets))
    start = time.process_time()
    for i in range(frames):
        for tid, stream in enumerate(packets):
            if stream[i]:
                mixer.push(tid, stream[i])
        mixer.tick()
    return time.process_time() - start


def _per_listener(packets: list[list[bytes]], frames: int, listeners: int) -> float:
    decoder_side = MixMinus(max_talkers=len(packets))  # the same decoding as (a)
    encoders = [_encoder(32_000) for _ in range(listeners)]
    start = time.process_time()
    for i in range(frames):
        for tid, stream in enumerate(packets):
            if stream[i]:
                decoder_side.push(tid, stream[i])
        with decoder_side._lock:  # the mixed PCM, then one encode per listener
            pcm = [t.frames.popleft() for t in decoder_side._talkers.values() if t.frames]
        total = np.clip(np.sum(pcm, axis=0), -32768, 32767).astype(np.int16) if pcm else np.zeros(FRAME, np.int16)
        for enc in encoders:
            _encode(enc, total, i * FRAME)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--talkers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    frames = int(args.seconds * 50)
    packets = [_tone_packets(300 + 200 * t, frames) for t in range(args.talkers)]
    rows = []
    for n in (8, 16, 32, 64):
        mm = _mixminus(packets, frames) / args.seconds * 100
        base = _per_listener(packets, frames, n) / args.seconds * 100
        load = os.getloadavg()[0]
        rows.append({"listeners": n, "mixminus_cpu_pct": round(mm, 1), "per_listener_cpu_pct": round(base, 1),
                     "ratio": round(base / mm, 1), "loadavg_1m": round(load, 2)})
        print(f"N={n:3d}  mix-minus {mm:6.1f} % of a core   encoder per listener {base:6.1f} %   "
              f"ratio {base / mm:5.1f}x   load {load:.2f}")
    last = rows[-1]
    print(json.dumps({"talkers": args.talkers, "participants": last["listeners"] + args.talkers,
                      "mixminus_cpu_pct": last["mixminus_cpu_pct"], "ratio_vs_default": last["ratio"], "rows": rows}))


if __name__ == "__main__":
    main()
