"""SDP with conference terminals, parsed by aiosipua as on the wire: what the hub offers, which
codec it takes from a terminal's offer, and the audio format that follows (G.722's 8 kHz clock)."""

from __future__ import annotations

import pytest
from aiosipua import parse_sdp

from fusionhub.media.packets import AudioFormat
from fusionhub.media.sipsdp import answer_sdp, audio_format, h264_pt, offer_sdp


def terminal_offer(audio: str, video: str = "a=rtpmap:97 H264/90000\r\na=fmtp:97 packetization-mode=1") -> str:
    return (
        "v=0\r\no=room 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"{audio}\r\na=sendrecv\r\n"
        f"m=video 41000 RTP/AVP 97\r\n{video}\r\na=sendrecv\r\n"
    )


def test_the_hubs_offer_lists_every_audio_codec_it_takes_with_h264() -> None:
    sdp = parse_sdp(offer_sdp("127.0.0.1", 40000, 40002))
    assert sdp.audio is not None and sdp.video is not None
    assert [(c.payload_type, c.encoding_name.upper(), c.clock_rate) for c in sdp.audio.codecs] == [
        (111, "OPUS", 48000), (0, "PCMU", 8000), (8, "PCMA", 8000), (9, "G722", 8000)
    ]
    assert h264_pt(sdp) == 96 and sdp.audio.port == 40000 and sdp.video.port == 40002


@pytest.mark.parametrize(
    ("audio", "expected"),
    [
        ("m=audio 41002 RTP/AVP 9 0\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000", AudioFormat("g722", 8000, 1)),
        ("m=audio 41002 RTP/AVP 8 9\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000", AudioFormat("pcma", 8000, 1)),
        ("m=audio 41002 RTP/AVP 116 0\r\na=rtpmap:116 opus/48000/2\r\na=rtpmap:0 PCMU/8000", AudioFormat("opus", 48000, 2)),
    ],
)
def test_the_hub_answers_with_the_terminals_first_codec_it_takes(audio: str, expected: AudioFormat) -> None:
    offer = parse_sdp(terminal_offer(audio))
    pt = h264_pt(offer)
    assert pt == 97
    answer = parse_sdp(answer_sdp("127.0.0.1", offer, pt, 40000, 40002))
    fmt, payload_type = audio_format(answer)
    assert fmt == expected
    assert answer.audio is not None and [c.payload_type for c in answer.audio.codecs] == [payload_type]
    assert answer.video is not None and [c.payload_type for c in answer.video.codecs] == [97]


def test_g722_runs_an_8_khz_clock_over_16_khz_audio() -> None:
    offer = parse_sdp(terminal_offer("m=audio 41002 RTP/AVP 9\r\na=rtpmap:9 G722/8000"))
    fmt, _ = audio_format(parse_sdp(answer_sdp("127.0.0.1", offer, 97, 40000, 40002)))
    assert fmt is not None and fmt.sample_rate == 8000 and fmt.decoded_rate == 16000


def test_a_terminal_without_a_codec_the_hub_takes_gets_its_audio_line_refused() -> None:
    offer = parse_sdp(terminal_offer("m=audio 41002 RTP/AVP 18\r\na=rtpmap:18 G729/8000"))
    answer = parse_sdp(answer_sdp("127.0.0.1", offer, 97, 40000, 40002))
    assert answer.audio is not None and answer.audio.port == 0  # video still flows
    assert audio_format(answer) == (None, None)
