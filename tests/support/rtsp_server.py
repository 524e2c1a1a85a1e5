#!/usr/bin/python3
"""A loopback RTSP camera for tests: serves an MP4's H.264 as is (no re-encoding).

Run with the SYSTEM python3 (it has `gi` and GstRtspServer), not the venv:

    /usr/bin/python3 tests/support/rtsp_server.py --port 8554 --path cam --file clip.mp4

Prints "READY" on stdout once serving rtsp://127.0.0.1:PORT/PATH. Binds 127.0.0.1 only.

Each client gets its OWN pipeline, starting at the beginning of the file (the media is not
shared): a reconnecting client always sees a fresh stream with a keyframe first, which keeps
tests deterministic. The stream ends (RTSP session ends) at the end of the file.

--params-in-sdp-only imitates cameras that send SPS/PPS only in the SDP's
sprop-parameter-sets: neither h264parse nor the payloader repeats them, and any SPS/PPS NAL
units found in the stream are dropped before payloading.

--video-stops-after S drops every video buffer past S seconds while the audio goes on: a camera
whose encoder hung but whose microphone still streams.

--audio pcma|pcmu|aac also serves the file's first audio track (AAC in the MP4), as a
conference terminal would: G.711 (decoded by faad, resampled to 8 kHz mono, 20 ms packets)
or the AAC as is (RFC 3640, rtpmp4gpay).
"""

from __future__ import annotations

import argparse
import signal
import struct
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

_PARAMETER_SET_TYPES = (7, 8)  # SPS, PPS
_G711 = "aacparse ! faad ! audioconvert ! audioresample ! audio/x-raw,rate=8000,channels=1 ! "
_AUDIO = {
    "none": "",
    "pcma": _G711 + "alawenc ! rtppcmapay name=pay1 pt=8 min-ptime=20000000 max-ptime=20000000",
    "pcmu": _G711 + "mulawenc ! rtppcmupay name=pay1 pt=0 min-ptime=20000000 max-ptime=20000000",
    "aac": "aacparse ! rtpmp4gpay name=pay1 pt=97",
}


def _strip_parameter_sets_avc(data: bytes) -> bytes | None:
    """Drop SPS/PPS NAL units from a 4-byte length-prefixed (avc) buffer; None when unchanged."""
    out = bytearray()
    pos, changed = 0, False
    while pos + 4 <= len(data):
        (size,) = struct.unpack_from(">I", data, pos)
        nal = data[pos + 4 : pos + 4 + size]
        if nal and (nal[0] & 0x1F) in _PARAMETER_SET_TYPES:
            changed = True
        else:
            out += data[pos : pos + 4 + size]
        pos += 4 + size
    return bytes(out) if changed else None


def _strip_probe(pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
    buf = info.get_buffer()
    ok, mapinfo = buf.map(Gst.MapFlags.READ)
    if not ok:
        return Gst.PadProbeReturn.OK
    try:
        stripped = _strip_parameter_sets_avc(bytes(mapinfo.data))
    finally:
        buf.unmap(mapinfo)
    if stripped is None:
        return Gst.PadProbeReturn.OK
    new = Gst.Buffer.new_wrapped(stripped)
    new.pts, new.dts, new.duration = buf.pts, buf.dts, buf.duration
    new.set_flags(buf.get_flags())
    # Replace the buffer: push the new one and drop the original.
    pad.get_peer().chain(new)
    return Gst.PadProbeReturn.DROP


def _stop_probe(after_ns: int) -> object:
    def probe(pad: Gst.Pad, info: Gst.PadProbeInfo) -> Gst.PadProbeReturn:
        pts = info.get_buffer().pts
        if pts != Gst.CLOCK_TIME_NONE and pts > after_ns:
            return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK

    return probe


class _Factory(GstRtspServer.RTSPMediaFactory):
    def __init__(self, launch: str, strip: bool, video_stops_after: float | None = None) -> None:
        super().__init__()
        self._launch = launch
        self._strip = strip
        self._video_stops_after = video_stops_after
        self.set_launch(launch)
        self.set_shared(False)

    def do_configure(self, media: GstRtspServer.RTSPMedia) -> None:
        parse = media.get_element().get_by_name("parse")
        if self._strip:
            parse.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, _strip_probe)
        if self._video_stops_after is not None:
            probe = _stop_probe(int(self._video_stops_after * Gst.SECOND))
            parse.get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, probe)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="cam", help="mount point, without the leading slash")
    ap.add_argument("--file", required=True, help="MP4 file with an H.264 video track")
    ap.add_argument("--user", help="require HTTP basic (or --digest) auth with this user")
    ap.add_argument("--password", help="password for --user")
    ap.add_argument("--digest", action="store_true", help="require digest auth (RFC 2617) instead of basic")
    ap.add_argument("--params-in-sdp-only", action="store_true")
    ap.add_argument("--audio", choices=sorted(_AUDIO), default="none", help="also serve the audio track")
    ap.add_argument(
        "--video",
        choices=["h264", "h265", "none"],
        default="h264",
        help="the file's video codec as served (h265: a camera we cannot relay); none: audio only",
    )
    ap.add_argument("--video-stops-after", type=float, help="drop the video past this many seconds")
    ap.add_argument("--sub-file", help="also serve this MP4's H.264 video, as the camera's substream")
    ap.add_argument("--sub-path", default="sub", help="mount point of --sub-file, behind the same login")
    args = ap.parse_args()

    Gst.init(None)
    interval = 0 if args.params_in_sdp_only else -1  # -1: SPS/PPS before every IDR
    # Force avc (length-prefixed) output so the strip probe can walk NAL units by length.
    video = (
        f"h264parse name=parse config-interval={interval} ! video/x-h264,stream-format=avc ! "
        f"rtph264pay name=pay0 pt=96 config-interval={interval}"
    )
    if args.video == "h265":
        video = "h265parse config-interval=-1 ! rtph265pay name=pay0 pt=96"
    if args.video == "none":  # a "camera" with only a microphone: its audio payloader is pay0
        audio = _AUDIO[args.audio].replace("name=pay1", "name=pay0")
        launch = f'( filesrc location="{args.file}" ! qtdemux name=demux demux.audio_0 ! queue ! {audio} )'
    elif args.audio == "none":
        launch = f'( filesrc location="{args.file}" ! qtdemux ! {video} )'
    else:
        launch = (
            f'( filesrc location="{args.file}" ! qtdemux name=demux '
            f"demux.video_0 ! queue ! {video} demux.audio_0 ! queue ! {_AUDIO[args.audio]} )"
        )
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = _Factory(launch, strip=args.params_in_sdp_only, video_stops_after=args.video_stops_after)
    factories = {args.path: factory}
    if args.sub_file:
        sub_launch = f'( filesrc location="{args.sub_file}" ! qtdemux ! {video} )'
        factories[args.sub_path] = _Factory(sub_launch, strip=args.params_in_sdp_only)
    if args.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        if args.digest:
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            auth.add_digest(args.user, args.password or "", token)
        else:
            basic = GstRtspServer.RTSPAuth.make_basic(args.user, args.password or "")
            auth.add_basic(basic, token)
        server.set_auth(auth)
        perms = GstRtspServer.RTSPPermissions()
        perms.add_role_from_structure(
            Gst.Structure.new_from_string(
                "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )
        )
        for each in factories.values():
            each.set_permissions(perms)
    for path, each in factories.items():
        server.get_mount_points().add_factory("/" + path.lstrip("/"), each)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1

    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print("READY", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
