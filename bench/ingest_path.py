"""The event-loop engine's CPU per camera, without sockets: a camera's RTP replayed through the path
every packet of every pulled camera takes on the hub's event loop.

The capacity bench's clips (bench/capacity_clip.py: a 720p main stream and its 640x360
substream, 25 fps, a keyframe every 2 s) are packetised as the camera farm sends them (RTP in
RTSP interleaved frames, FU-A above 1400 bytes) and fed, in reads of about 200 ms of stream (as
`media.read_batch_ms` batches them), to the real connection parser, depacketiser and per-picture
path: pts, the relay and, for the main stream, the clip ring. Prints the CPU microseconds one
camera-second costs for

(a) the main stream (relayed, ring kept, not decoded: its camera has a substream);
(b) the substream as analytics reads it: keyframes only (`keyframes_only`);
(c) the baseline for (b): the substream read whole, every picture depacketised and relayed;

best of `--repeats`, one thread. Sockets, the selector and the decode are left out: the
capacity bench has them. Last line: one JSON object.

    python -m bench.ingest_path [--seconds 20] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.capacity_clip import SUBSTREAM, make_clip
from bench.rtsp_loop import FPS, packetise
from fusionhub.media.options import IngestOptions
from fusionhub.media.outputs import SourceOutputs
from fusionhub.media.recording import RecordingConfig
from fusionhub.media.relay import PacketRelay
from fusionhub.media.rtsploop import LoopCameraIngest, VideoTrack, _Connection, depacketizer

READ_S = 0.2  # media.read_batch_ms's default: what one batched read holds


def interleaved(clip: Path, seconds: int) -> tuple[bytes, bytes, bytes]:
    """`seconds` of the clip as the farm sends it (sequence numbers and timestamps running on), SPS, PPS."""
    frames, sps, pps = packetise(clip)
    seq, ts = 100, 1000
    out = bytearray()
    for i in range(FPS * seconds):
        frame = frames[i % len(frames)]
        data = bytearray(frame.data)
        for offset in frame.offsets:
            struct.pack_into("!HI", data, offset + 2, seq & 0xFFFF, ts & 0xFFFFFFFF)
            seq += 1
        out += data
        ts += 90_000 // FPS
    return bytes(out), sps, pps


def us_per_camera_second(
    stream: tuple[bytes, bytes, bytes], seconds: int, repeats: int, *, keyframes_only: bool, ring: bool, pool: ThreadPoolExecutor
) -> tuple[float, int]:
    """Best CPU µs per camera-second over `repeats` replays, and the pictures handed on per replay."""
    data, sps, pps = stream
    read = max(1, int(len(data) / seconds * READ_S))
    best, handed = float("inf"), 0
    loop = asyncio.get_running_loop()
    for _ in range(repeats):
        outputs = SourceOutputs("bench", PacketRelay("bench", queue_packets=300), RecordingConfig() if ring else None)
        ingest = LoopCameraIngest(
            1, "rtsp://127.0.0.1:9/bench", sink=outputs, on_sample=lambda *_: None, on_status=lambda _s: None,
            loop=loop, options=IngestOptions(), decode_pool=pool, keyframes_only=keyframes_only,
        )
        ingest.set_sampling(False)  # nothing decoded: this measures the loop's part only
        ingest._pipeline.begin_rtp(FPS)
        track = VideoTrack("rtsp://127.0.0.1:9/bench/trackID=0", 96, (sps, pps), float(FPS))
        connection = _Connection(depacketizer(track, ingest._access_unit, keyframes_only=ingest._keyframes_only))
        ingest._connection = connection
        started = time.process_time()
        for i in range(0, len(data), read):
            connection.data_received(data[i : i + read])
        best = min(best, time.process_time() - started)
        handed = ingest.stats.packets
    return best / seconds * 1e6, handed


async def run(args: argparse.Namespace) -> dict[str, float]:
    data_dir = Path(args.data_dir)
    main = interleaved(make_clip(data_dir / "bench" / "capacity-720p25-gop2s.mp4"), args.seconds)
    sub = interleaved(make_clip(data_dir / "bench" / "capacity-360p25-gop2s.mp4", size=SUBSTREAM), args.seconds)
    with ThreadPoolExecutor(1) as pool:
        main_us, main_n = us_per_camera_second(main, args.seconds, args.repeats, keyframes_only=False, ring=True, pool=pool)
        key_us, key_n = us_per_camera_second(sub, args.seconds, args.repeats, keyframes_only=True, ring=False, pool=pool)
        all_us, all_n = us_per_camera_second(sub, args.seconds, args.repeats, keyframes_only=False, ring=False, pool=pool)
    print(f"load average {os.getloadavg()[0]:.2f}; {args.seconds} s of stream, best of {args.repeats}")
    print(f"(a) 720p main stream, relayed and ringed:  {main_us:6.0f} µs per camera-second ({main_n} pictures handed on)")
    print(f"(b) 640x360 substream, keyframes only:     {key_us:6.0f} µs per camera-second ({key_n} pictures handed on)")
    print(f"(c) baseline: the substream read whole:    {all_us:6.0f} µs per camera-second ({all_n} pictures handed on)")
    print(f"substream (c)/(b): {all_us / key_us:.2f}x; a camera with its substream costs the loop "
          f"{main_us + key_us:.0f} µs a second instead of {main_us + all_us:.0f}")
    return {"main_us_per_camera_s": round(main_us), "substream_keyframes_only_us": round(key_us),
            "substream_whole_us": round(all_us), "ratio_vs_whole": round(all_us / key_us, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", default="var")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
