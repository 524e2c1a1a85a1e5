"""What evidence clips and camera sound cost, each against the naive way, in the same run.

    .venv/bin/python -m bench.media_evidence [--seconds 20] [--listeners 10]

1. Flag clip: a 720p25 ~2 Mbps H.264 + AAC camera's packets (as the ring holds them) written to
   MP4 by the hub's remux (clipwriter.write_clip: no video decode or encode) against the naive
   clip (decode every picture, encode it again with libx264 veryfast; audio copied). Wall and CPU
   seconds per clip, and the speed-up.
2. Sound of an AAC camera for N listeners: the hub converts to Opus ONCE per camera (one
   OpusTranscoder whatever the number of listeners) against one conversion per listener (what a
   per-viewer player does). CPU % of one core per camera, measured by converting the stream's
   packets (48 kHz AAC tone) the way the transcoder does.
Figures are CPU time of this process (time.process_time); record `cat /proc/loadavg` beside them.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from fusionhub.media.audio import AudioRelay
from fusionhub.media.clipwriter import write_clip
from fusionhub.media.packets import AudioFormat, AudioPacket, EncodedPacket
from fusionhub.media.ring import RingEntry
from fusionhub.media.transcode import OpusTranscoder

WIDTH, HEIGHT, FPS, RATE = 1280, 720, 25, 48_000


def make_camera_clip(path: Path, seconds: float) -> Path:
    """720p25 constrained-baseline H.264 at about 2 Mbps (a moving scene) plus a 48 kHz AAC tone."""
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        v.bit_rate = 2_000_000
        v.options = {"preset": "veryfast", "profile": "baseline", "x264-params": f"keyint={2 * FPS}:scenecut=0:bframes=0"}
        a = out.add_stream("aac", rate=RATE)
        a.layout = "mono"
        rng = np.random.default_rng(1)
        base = rng.integers(0, 255, (HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        samples = 0
        for i in range(round(seconds * FPS)):
            img = np.roll(base, i * 4, axis=1)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(v.encode(frame))
            while samples < (i + 1) * RATE // FPS:
                t = np.arange(samples, samples + 1024) / RATE
                pcm = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16).reshape(1, -1)
                af = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
                af.sample_rate, af.pts, af.time_base = RATE, samples, Fraction(1, RATE)
                out.mux(a.encode(af))
                samples += 1024
        out.mux(v.encode(None))
        out.mux(a.encode(None))
    return path


def ring_entries(path: Path) -> tuple[list[RingEntry], list[AudioPacket]]:
    """The clip's packets as the hub's ring holds them: Annex-B video, raw AAC, arrival times."""
    entries: list[RingEntry] = []
    audio: list[AudioPacket] = []
    with av.open(str(path)) as src:
        vs, as_ = src.streams.video[0], src.streams.audio[0]
        fmt = AudioFormat("aac", as_.codec_context.sample_rate, 1, bytes(as_.codec_context.extradata or b""))
        bsf = av.bitstream.BitStreamFilterContext("h264_mp4toannexb", vs)
        t0 = 1_000_000.0
        for packet in src.demux(vs, as_):
            if packet.stream.type == "audio":
                if packet.size and packet.pts is not None:
                    ap = AudioPacket(bytes(packet), int(packet.pts), fmt)
                    audio.append(ap)
                    entries.append(RingEntry(t0 + float(packet.pts * packet.time_base), ap))
                continue
            for f in bsf.filter(packet if packet.size else None):
                assert f.pts is not None
                pts = int(f.pts * vs.time_base * 90_000)
                entries.append(RingEntry(t0 + pts / 90_000, EncodedPacket(bytes(f), pts, bool(f.is_keyframe))))
    entries.sort(key=lambda e: e.at)
    return entries, audio


def reencode_clip(src: Path, dst: Path) -> None:
    """The naive clip: decode every picture and encode it again (audio copied)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mp4") as out:
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        vout = out.add_stream("libx264", rate=FPS)
        vout.width, vout.height, vout.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        vout.bit_rate = 2_000_000
        vout.options = {"preset": "veryfast"}
        aout = out.add_stream_from_template(ain)
        index = 0
        for packet in inp.demux(vin, ain):
            if packet.stream is ain:
                if packet.size:
                    packet.stream = aout
                    out.mux(packet)
                continue
            for frame in packet.decode():
                frame.pts, frame.time_base = index, Fraction(1, FPS)
                index += 1
                out.mux(vout.encode(frame))
        out.mux(vout.encode(None))


def timed(fn, *args):  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def opus_cpu(audio: list[AudioPacket], conversions: int) -> float:
    """CPU seconds to convert the stream to Opus `conversions` times (one OpusTranscoder each)."""
    cpu = time.process_time()
    for _ in range(conversions):
        transcoder = OpusTranscoder(AudioRelay("bench"), "bench")
        for i in range(0, len(audio), 16):
            transcoder._convert(audio[i : i + 16])  # the transcoder's worker-thread step, in this thread
    return time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="clip length (and seconds of camera sound)")
    ap.add_argument("--listeners", type=int, default=10, help="listeners of the AAC camera")
    args = ap.parse_args()
    print(f"load average: {open('/proc/loadavg').read().strip()}  cpus: {os.cpu_count()}")
    with tempfile.TemporaryDirectory(prefix="fh-bench-") as tmp:
        src = make_camera_clip(Path(tmp) / "camera.mp4", args.seconds)
        entries, audio = ring_entries(src)
        mbps = sum(len(e.packet.data) for e in entries if isinstance(e.packet, EncodedPacket)) * 8 / args.seconds / 1e6
        info, remux_wall, remux_cpu = timed(write_clip, Path(tmp) / "remux.mp4", entries)
        _, naive_wall, naive_cpu = timed(reencode_clip, src, Path(tmp) / "naive.mp4")
    print(f"\nflag clip, {args.seconds:.0f} s of 720p25 H.264 at {mbps:.1f} Mbit/s + AAC ({info.size / 1e6:.1f} MB):")
    print(f"  {'':<28}{'wall s':>9}{'CPU s':>9}")
    print(f"  {'remux (hub)':<28}{remux_wall:>9.3f}{remux_cpu:>9.3f}")
    print(f"  {'decode + re-encode (naive)':<28}{naive_wall:>9.3f}{naive_cpu:>9.3f}")
    speedup = naive_cpu / max(remux_cpu, 1e-6)
    print(f"  remux needs {speedup:.0f}x less CPU")

    audio_s = args.seconds
    shared = opus_cpu(audio, 1) / audio_s * 100
    per_listener = opus_cpu(audio, args.listeners) / audio_s * 100
    print(f"\nAAC camera heard by {args.listeners} listeners as Opus (CPU % of one core, per camera):")
    print(f"  one shared encoder (hub)     {shared:6.2f} %")
    print(f"  one encoder per listener     {per_listener:6.2f} %  ({per_listener / max(shared, 1e-6):.1f}x)")
    print("  G.711 and Opus cameras: relayed as received, no encoder at all")
    print(f"load average: {open('/proc/loadavg').read().strip()}")
    print(
        json.dumps(
            {
                "clip_seconds": args.seconds,
                "clip_remux_cpu_s": round(remux_cpu, 3),
                "clip_reencode_cpu_s": round(naive_cpu, 3),
                "remux_cpu_ratio": round(speedup, 1),
                "listeners": args.listeners,
                "opus_shared_cpu_pct": round(shared, 2),
                "opus_per_listener_cpu_pct": round(per_listener, 2),
                "opus_ratio": round(per_listener / max(shared, 1e-6), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
