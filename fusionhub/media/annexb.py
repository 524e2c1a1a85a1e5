"""Annex-B access units from demuxed H.264, converted in Python rather than by an FFmpeg filter.

The relay, the clip ring and the sampler all want Annex-B access units (start codes, no length
prefixes) whose keyframes stand alone (SPS/PPS in-band). FFmpeg's `h264_mp4toannexb` (MP4 files)
and `dump_extra` (RTSP) do that, but through PyAV each packet costs about seven short GIL
releases (two packet allocations, send, two receives, two frees). One source thread alone pays
little for them; a hub with 150 camera threads holds a contended GIL, and a release often hands
it to another thread and back. Measured on 150 file cameras: 20 voluntary context switches per
packet with the filter, 6 to 8 without it. The work itself is trivial (rewrite the NAL lengths,
prepend the parameter sets to a keyframe), so it is done here with bytes operations, holding the
GIL throughout.

Both conversions follow what the FFmpeg filters do, checked against them in
tests/media/test_annexb.py: the same NAL units in the same order, the same decoded pictures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import av

__all__ = ["IDR", "NON_IDR", "PPS", "SPS", "START", "AnnexB", "MalformedPacket"]

START = b"\x00\x00\x00\x01"
NON_IDR, IDR, SPS, PPS = 1, 5, 7, 8  # NAL unit types (1: a slice of a picture that is not a keyframe)


class MalformedPacket(ValueError):
    """A length-prefixed packet whose NAL lengths do not add up to its size."""


def _avcc_parameter_sets(extradata: bytes) -> tuple[int, bytes, bytes]:
    """(NAL length size, SPS as Annex-B, PPS as Annex-B) of an avcC record (ISO/IEC 14496-15 5.3.3.1)."""
    try:
        length_size = (extradata[4] & 0x03) + 1
        pos = 5
        parts: list[list[bytes]] = [[], []]
        for kind in range(2):  # the SPS list (count in the low 5 bits), then the PPS list
            count = extradata[pos] & (0x1F if kind == 0 else 0xFF)
            pos += 1
            for _ in range(count):
                if pos + 2 > len(extradata):
                    raise IndexError
                size = int.from_bytes(extradata[pos : pos + 2], "big")
                nal = extradata[pos + 2 : pos + 2 + size]
                if len(nal) != size:
                    raise IndexError
                parts[kind].append(START + nal)
                pos += 2 + size
    except IndexError:
        raise MalformedPacket("truncated avcC record (the stream's H.264 configuration)") from None
    if length_size == 3:
        raise MalformedPacket("avcC declares 3-byte NAL lengths, which H.264 does not allow")
    return length_size, b"".join(parts[0]), b"".join(parts[1])


class AnnexB:
    """Turns one stream's demuxed packets into Annex-B access units; keyframes carry SPS/PPS.

    `extradata` is the stream's codec extradata: an avcC record (first byte 1, MP4 files) means
    length-prefixed packets; anything else (RTSP's sprop-parameter-sets, raw .h264) means the
    packets are Annex-B already and the extradata, if any, is prepended to keyframes that do not
    start with it (as FFmpeg's dump_extra does).
    """

    def __init__(self, extradata: bytes | None) -> None:
        extradata = bytes(extradata or b"")
        self.length_prefixed = extradata[:1] == b"\x01"
        if self.length_prefixed:
            self._length_size, self._sps, self._pps = _avcc_parameter_sets(extradata)
            self._header = b""
        else:
            self._length_size, self._sps, self._pps = 0, b"", b""
            self._header = extradata

    def convert(self, packet: av.Packet | bytes, keyframe: bool) -> bytes:
        """One access unit as Annex-B bytes (a new object; the packet's buffer is not kept)."""
        if not self.length_prefixed:
            header = self._header
            if keyframe and header:
                data = bytes(packet)
                return data if data.startswith(header) else header + data
            return bytes(packet)
        return self._from_lengths(memoryview(packet).cast("B"))

    def _from_lengths(self, view: memoryview) -> bytes:
        n, total = self._length_size, len(view)
        if n == 4 and total > 4 and int.from_bytes(view[:4], "big") == total - 4 and view[4] & 0x1F != IDR:
            return b"".join((START, view[4:]))  # the common case: one slice, not an IDR
        out: list[bytes | memoryview] = []
        seen_sps = seen_pps = inserted = False
        pos = 0
        while pos < total:
            if pos + n > total:
                raise MalformedPacket(f"{total - pos} stray bytes at the end of an H.264 packet")
            size = int.from_bytes(view[pos : pos + n], "big")
            start, pos = pos + n, pos + n + size
            if size == 0:
                continue
            if pos > total:
                raise MalformedPacket(f"an H.264 NAL unit of {size} bytes overruns its {total}-byte packet")
            kind = view[start] & 0x1F
            if kind == SPS:
                seen_sps = True
            elif kind == PPS:
                seen_pps = True
            elif kind == IDR and not inserted:
                # the first slice of an IDR picture: make it decodable on its own, as
                # h264_mp4toannexb does, unless the packet brought its own parameter sets
                # (a PPS alone in the packet may refer to the SPS we insert: both then go first)
                inserted = True
                if not seen_sps:
                    out.append(self._sps)
                    out.append(self._pps)
                elif not seen_pps:
                    out.append(self._pps)
            out.append(START)
            out.append(view[start:pos])
        return b"".join(out)
