"""The Python Annex-B conversion against FFmpeg's own filters, on real x264 clips."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from fusionhub.media.annexb import AnnexB, MalformedPacket

from .rtc_helpers import make_h264_clip

START = b"\x00\x00\x00\x01"


def nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an Annex-B buffer (3- or 4-byte start codes), payloads only."""
    starts, i = [], 0
    while (j := data.find(b"\x00\x00\x01", i)) >= 0:
        starts.append(j)
        i = j + 3
    units = []
    for k, j in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(data)
        unit = data[j + 3 : end]
        if k + 1 < len(starts) and unit.endswith(b"\x00"):
            unit = unit[:-1]  # the next unit's 4-byte start code
        units.append(unit)
    return units


def converted(clip: Path) -> tuple[list[tuple[bytes, bool]], list[bytes]]:
    """(ours: (bytes, keyframe) per packet, FFmpeg's h264_mp4toannexb: bytes per packet)."""
    ours: list[tuple[bytes, bool]] = []
    theirs: list[bytes] = []
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        annexb = AnnexB(stream.codec_context.extradata)
        assert annexb.length_prefixed  # an MP4: avcC
        bsf = av.bitstream.BitStreamFilterContext("h264_mp4toannexb", stream)
        for packet in container.demux(stream):
            if not packet.size:
                continue
            key = bool(packet.is_keyframe)
            ours.append((annexb.convert(packet, key), key))  # first: the filter takes the packet's data
            theirs.append(b"".join(bytes(p) for p in bsf.filter(packet)))
    return ours, theirs


def decoded(packets: list[bytes]) -> list[np.ndarray]:
    decoder = av.CodecContext.create("h264", "r")
    frames = [f.to_ndarray(format="gray") for p in packets for f in decoder.decode(av.Packet(p))]
    return frames + [f.to_ndarray(format="gray") for f in decoder.decode(None)]


@pytest.mark.parametrize(
    ("profile", "slices"), [("baseline", 1), ("high", 1), ("high", 4)], ids=["baseline", "high", "high-4-slices"]
)
def test_mp4_packets_match_ffmpegs_filter(tmp_path: Path, profile: str, slices: int) -> None:
    clip = tmp_path / "cam.mp4"
    make_h264_clip(clip, profile=profile, seconds=2.0, gop_s=0.5, x264_extra=f"slices={slices}:threads=1")
    ours, theirs = converted(clip)
    assert len(ours) == len(theirs) == 60
    # the same NAL units in the same order, packet by packet (start code lengths may differ)
    assert [nal_units(data) for data, _ in ours] == [nal_units(data) for data in theirs]
    keyframes = [data for data, key in ours if key]
    assert len(keyframes) == 4
    for data in keyframes:  # every keyframe stands alone: SPS and PPS before its first slice
        types = [u[0] & 0x1F for u in nal_units(data)]
        assert types.index(7) < types.index(8) < types.index(5)
        assert types.count(7) == 1 and types.count(5) == slices
    # what a viewer sees: the same pictures
    ours_frames, their_frames = decoded([d for d, _ in ours]), decoded(theirs)
    assert len(ours_frames) == 60
    assert all(np.array_equal(a, b) for a, b in zip(ours_frames, their_frames, strict=True))
    # and a viewer joining at any keyframe can decode from there on
    second = next(i for i, (_, key) in enumerate(ours) if key and i > 0)
    assert len(decoded([d for d, _ in ours[second:]])) == 60 - second


def test_annexb_stream_gets_the_sdp_parameter_sets_on_keyframes_only() -> None:
    sps, pps = START + b"\x67\x42\xc0\x1e\xaa", START + b"\x68\xce\x3c\x80"
    annexb = AnnexB(sps + pps)  # RTSP: sprop-parameter-sets, already Annex-B
    assert not annexb.length_prefixed
    idr, slice_ = START + b"\x65\x88\x84\x00", START + b"\x41\x9a\x02"
    assert annexb.convert(idr, True) == sps + pps + idr
    assert annexb.convert(slice_, False) == slice_
    assert annexb.convert(sps + pps + idr, True) == sps + pps + idr  # already in-band: not twice
    assert AnnexB(b"").convert(idr, True) == idr  # no SDP parameter sets: in-band ones pass as sent


def avcc(sps: bytes, pps: bytes, length_size: int = 4) -> bytes:
    return (
        bytes([1, sps[1], sps[2], sps[3], 0xFC | (length_size - 1), 0xE1])
        + len(sps).to_bytes(2, "big")
        + sps
        + b"\x01"
        + len(pps).to_bytes(2, "big")
        + pps
    )


def prefixed(*units: bytes, size: int = 4) -> bytes:
    return b"".join(len(u).to_bytes(size, "big") + u for u in units)


def test_length_prefixed_packets_of_every_shape() -> None:
    sps, pps = b"\x67\x42\xc0\x1e\xaa", b"\x68\xce\x3c\x80"
    sei, idr_a, idr_b, p_slice = b"\x06\x05\x01\x80", b"\x65\x88\x84", b"\x65\x88\x85", b"\x41\x9a\x02"
    annexb = AnnexB(avcc(sps, pps))
    units = lambda data: nal_units(data)  # noqa: E731
    # SEI, then a two-slice IDR: the parameter sets go once, before the first slice
    assert units(annexb.convert(prefixed(sei, idr_a, idr_b), True)) == [sei, sps, pps, idr_a, idr_b]
    # a keyframe that brings its own parameter sets gets none added
    assert units(annexb.convert(prefixed(sps, pps, idr_a), True)) == [sps, pps, idr_a]
    # its own SPS only: our PPS goes in
    assert units(annexb.convert(prefixed(sps, idr_a), True)) == [sps, pps, idr_a]
    assert annexb.convert(prefixed(p_slice), False) == START + p_slice
    assert units(annexb.convert(prefixed(p_slice, b"", p_slice), False)) == [p_slice, p_slice]  # empty unit skipped
    # 2-byte lengths (allowed by avcC)
    short = AnnexB(avcc(sps, pps, length_size=2))
    assert units(short.convert(prefixed(idr_a, size=2), True)) == [sps, pps, idr_a]


@pytest.mark.parametrize(
    "packet",
    [
        (10).to_bytes(4, "big") + b"\x41\x9a",  # says 10 bytes, has 2
        (2).to_bytes(4, "big") + b"\x41\x9a" + b"\x00\x00",  # 2 stray bytes, not a length
    ],
    ids=["overrun", "stray-bytes"],
)
def test_a_broken_packet_is_refused_with_a_reason(packet: bytes) -> None:
    annexb = AnnexB(avcc(b"\x67\x42\xc0\x1e", b"\x68\xce"))
    with pytest.raises(MalformedPacket, match="H.264"):
        annexb.convert(packet, False)


def test_a_truncated_avcc_record_is_refused() -> None:
    with pytest.raises(MalformedPacket, match="avcC"):
        AnnexB(avcc(b"\x67\x42\xc0\x1e\xaa", b"\x68\xce")[:-3])
