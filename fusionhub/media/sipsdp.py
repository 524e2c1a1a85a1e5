"""SDP of SIP terminals: the hub's offer, its answer to a terminal's offer, the codecs agreed."""

from __future__ import annotations

import secrets

from aiosipua import serialize_sdp
from aiosipua.sdp import SdpMessage

from fusionhub.media.packets import AudioFormat

# what the hub takes from a terminal: (payload type, SDP clock rate, channels), in the hub's order
# of preference. Opus and G.711 reach browsers as sent; G.722 (clock 8000 in SDP, 16 kHz audio)
# goes to them through the source's one shared Opus transcoder.
AUDIO = {"opus": (111, 48000, 2), "pcmu": (0, 8000, 1), "pcma": (8, 8000, 1), "g722": (9, 8000, 1)}
VIDEO_PT = 96


def offer_sdp(host: str, audio_port: int, video_port: int) -> str:
    sess = secrets.randbelow(1 << 31)
    lines = [
        "v=0", f"o=fusionhub {sess} 1 IN IP4 {host}", "s=fusionhub", f"c=IN IP4 {host}", "t=0 0",
        f"m=audio {audio_port} RTP/AVP 111 0 8 9",
        "a=rtpmap:111 opus/48000/2", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:9 G722/8000",
        "a=sendrecv",
        f"m=video {video_port} RTP/AVP {VIDEO_PT}",
        f"a=rtpmap:{VIDEO_PT} H264/90000", f"a=fmtp:{VIDEO_PT} packetization-mode=1;profile-level-id=42e01f",
        f"a=rtcp-fb:{VIDEO_PT} nack pli", f"a=rtcp-fb:{VIDEO_PT} ccm fir",
        "a=sendrecv",  # the terminal may be shown a hub source (send_video)
    ]
    return "\r\n".join(lines) + "\r\n"


def h264_pt(sdp: SdpMessage) -> int | None:
    """The payload type of H.264 packetization-mode 1 on the video line (mode 0 if that is all)."""
    video = sdp.video
    if video is None:
        return None
    h264 = [c for c in video.codecs if c.encoding_name.upper() == "H264"]
    best = [c for c in h264 if "packetization-mode=1" in (c.fmtp or "")] or h264
    return best[0].payload_type if best else None


def answer_sdp(host: str, offer: SdpMessage, video_pt: int, audio_port: int, video_port: int) -> str:
    """Our SDP answer to a terminal's offer: its H.264, its first audio codec we relay; we receive
    what it sends and may send video back when it offers sendrecv."""
    sess = secrets.randbelow(1 << 31)
    lines = ["v=0", f"o=fusionhub {sess} 1 IN IP4 {host}", "s=fusionhub", f"c=IN IP4 {host}", "t=0 0"]
    for media in offer.media:
        if media.media == "audio":
            codec = next((c for c in media.codecs if c.encoding_name.lower() in AUDIO), None)
            if codec is None or media.port == 0:
                lines += [f"m=audio 0 RTP/AVP {media.formats[0] if media.formats else 0}"]
                continue
            channels = f"/{codec.channels}" if codec.channels else ""
            lines += [f"m=audio {audio_port} RTP/AVP {codec.payload_type}",
                      f"a=rtpmap:{codec.payload_type} {codec.encoding_name}/{codec.clock_rate}{channels}",
                      "a=sendrecv" if media.direction == "sendrecv" else "a=recvonly"]
        elif media.media == "video":
            codec = next(c for c in media.codecs if c.payload_type == video_pt)
            direction = "sendrecv" if media.direction == "sendrecv" else "recvonly"
            lines += [f"m=video {video_port} RTP/AVP {video_pt}", f"a=rtpmap:{video_pt} H264/90000",
                      f"a=fmtp:{video_pt} {codec.fmtp or 'packetization-mode=1'}",
                      f"a=rtcp-fb:{video_pt} nack pli", f"a=rtcp-fb:{video_pt} ccm fir", f"a={direction}"]
    return "\r\n".join(lines) + "\r\n"


def audio_format(answer: SdpMessage) -> tuple[AudioFormat | None, int | None]:
    audio = answer.audio
    if audio is None or audio.port == 0:
        return None, None
    for codec in audio.codecs:
        name = codec.encoding_name.lower()
        if name in AUDIO:
            _, rate, channels = AUDIO[name]
            return AudioFormat(codec=name, sample_rate=codec.clock_rate or rate, channels=codec.channels or channels), codec.payload_type
    return None, None


def serialize(sdp: SdpMessage) -> str:
    """SDP text of an aiosipua message."""
    return str(serialize_sdp(sdp))
