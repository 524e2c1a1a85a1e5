"""The audio half of a WHEP answer: which codec a listener gets, and the track that feeds it.

- G.711 (8 kHz mono PCMA/PCMU) and Opus go to the listener as the source sent them, when the
  listener's offer accepts that codec (browsers accept all three);
- anything else (AAC), or G.711 for a listener without it, goes as Opus from the source's one
  shared transcoder;
- no audio section in the offer, or a source without audio (as far as is known when the offer
  arrives: WHEP has no renegotiation), gives a video-only answer.
Like video, the audio transceiver is created with its codec preference BEFORE the offer is
applied, so aiortc answers with exactly that codec.
"""

from __future__ import annotations

from typing import Protocol

from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.codecs import CODECS
from aiortc.rtcpeerconnection import find_common_codecs
from aiortc.sdp import MediaDescription, SessionDescription

from fusionhub.media.audio import AudioRelay, AudioRelayTrack
from fusionhub.media.packets import AudioFormat

_PASSTHROUGH = {"pcma": "audio/PCMA", "pcmu": "audio/PCMU", "opus": "audio/opus"}
OPUS = "audio/opus"


class AudioOutputs(Protocol):
    """What a WHEP session needs of a source's outputs (SourceOutputs)."""

    audio: AudioRelay

    def opus(self) -> AudioRelay: ...


def _receiving_audio(offer: SessionDescription) -> MediaDescription | None:
    for media in offer.media:
        if media.kind == "audio" and media.direction in ("recvonly", "sendrecv", None):
            return media
    return None


def _accepts(media: MediaDescription, mime: str) -> bool:
    local = [c for c in CODECS["audio"] if c.mimeType.lower() == mime.lower()]
    return bool(find_common_codecs(local, media.rtp.codecs))


def plan_audio(offer_sdp: str, fmt: AudioFormat | None) -> tuple[str, str] | None:
    """("passthrough" | "opus", mime type) for this offer and source format; None: no audio."""
    if fmt is None:
        return None
    try:
        media = _receiving_audio(SessionDescription.parse(offer_sdp))
    except Exception:  # the video check reports unparsable offers
        return None
    if media is None:
        return None
    mime = _PASSTHROUGH.get(fmt.codec)
    if fmt.codec in ("pcma", "pcmu") and (fmt.sample_rate != 8000 or fmt.channels != 1):
        mime = None  # WebRTC's G.711 is 8 kHz mono only
    if mime is not None and _accepts(media, mime):
        return "passthrough", mime
    if _accepts(media, OPUS):
        return "opus", OPUS
    return None


def attach_audio(pc: RTCPeerConnection, offer_sdp: str, outputs: AudioOutputs) -> tuple[AudioRelayTrack, str] | None:
    """Add a sendonly audio transceiver fed from the source (call before applying the offer)."""
    plan = plan_audio(offer_sdp, outputs.audio.format)
    if plan is None:
        return None
    mode, mime = plan
    track = AudioRelayTrack(outputs.audio if mode == "passthrough" else outputs.opus())
    transceiver = pc.addTransceiver(track, direction="sendonly")
    caps = RTCRtpSender.getCapabilities("audio").codecs
    transceiver.setCodecPreferences([c for c in caps if c.mimeType.lower() == mime.lower()])
    return track, f"{mime.split('/')[1]}{'' if mode == 'passthrough' else ' (transcoded)'}"
