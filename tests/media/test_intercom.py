"""The intercom's media path with real aiortc peers on 127.0.0.1: only the holder's Opus goes out, as sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest

from bench.ptt_client import PttClient, tone_cycle
from fusionhub.media.config import MediaConfig
from fusionhub.media.errors import CodecUnsupported
from fusionhub.media.ice import pin_host_addresses, rtc_configuration
from fusionhub.media.intercom import Intercom, IntercomConfig, Participant
from fusionhub.media.whep import InvalidOffer
from fusionhub.signaling.messages import PttBurst

ROOM = "team:1"


@pytest.fixture
async def intercom(tmp_path: Path) -> AsyncIterator[tuple[Intercom, list[PttBurst]]]:
    pin_host_addresses(["127.0.0.1"])
    bursts: list[PttBurst] = []
    config = IntercomConfig.model_validate({"floor": {"no_media_s": 1.0, "max_talk_s": 20.0, "grace_s": 0.5}})
    media = MediaConfig()

    async def on_burst(burst: PttBurst) -> None:
        bursts.append(burst)

    hub = Intercom(config, rtc=lambda: rtc_configuration(media), data_dir=tmp_path, on_burst=on_burst)
    await hub.start()
    try:
        yield hub, bursts
    finally:
        await hub.stop()
        pin_host_addresses(None)


async def join(hub: Intercom, index: int, packets: list[bytes], role: str = "field") -> PttClient:
    client = PttClient(index, packets, keep_payloads=True)
    participant = Participant(user_id=index, name=f"user{index}", role=role, priority=200 if role == "commander" else 100)

    async def exchange(offer: str) -> str:
        answer, _ = await hub.join(ROOM, participant, offer)
        return answer

    await client.connect(exchange)
    await client.expect("hello")
    return client


async def wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_holder_is_forwarded_unchanged_and_others_are_dropped(
    intercom: tuple[Intercom, list[PttBurst]],
) -> None:
    hub, bursts = intercom
    tone_a, tone_b = tone_cycle(1000.0, seed=1), tone_cycle(440.0, seed=2)
    a = await join(hub, 1, tone_a)
    b = await join(hub, 2, tone_b)
    c = await join(hub, 3, tone_a)
    try:
        # B misbehaves: it sends without holding the floor; nobody may hear it
        b.track.start_talking()
        await asyncio.sleep(0.5)
        assert len(c.payloads) == 0 and len(a.payloads) == 0
        b.track.stop_talking()

        assert (await a.request())["type"] == "granted"
        b.track.start_talking()  # still misbehaving while A talks
        await wait_for(lambda: len(c.payloads) >= 40)
        a.release()
        b.track.stop_talking()
        await c.expect("floor")
        await asyncio.sleep(0.2)
        # exactly A's packets, byte for byte, and none of B's; A does not hear itself
        assert set(c.payloads) <= set(tone_a)
        assert set(b.payloads) <= set(tone_a) and len(b.payloads) >= 40
        assert not set(c.payloads) & set(tone_b)
        assert len(a.payloads) == 0
        room = hub.room(ROOM)
        assert room is not None
        session_b = next(s for s in room.sessions.values() if s.participant.user_id == 2)
        assert session_b.dropped_in > 20
        # the hub never decodes: the tapped receivers' remote tracks stay empty
        for session in room.sessions.values():
            remote = session.peer_connection.getReceivers()[0].track
            assert remote._queue.qsize() == 0

        # talker change A -> B: C's timestamps keep rising
        before = len(c.timestamps)
        assert (await b.request())["type"] == "granted"
        await wait_for(lambda: len(c.payloads) >= 80)
        b.release()
        ts = list(c.timestamps)
        deltas = [(y - x) & 0xFFFFFFFF for x, y in zip(ts, ts[1:], strict=False)]
        assert all(0 < d < 1 << 31 for d in deltas), deltas
        assert any(p in set(tone_b) for p in list(c.payloads)[before:])

        # both bursts are recorded as Ogg Opus that plays back for about as long as they lasted
        await wait_for(lambda: len(bursts) >= 2)
        first = bursts[0]
        assert first.speaker_id == 1 and first.room_id == ROOM and first.end_reason == "released"
        with av.open(str(hub._data_dir / first.path)) as container:  # noqa: SLF001
            stream = container.streams.audio[0]
            assert stream.codec_context.name in ("opus", "libopus")
            samples = sum(frame.samples for frame in container.decode(stream))
        assert abs(samples / 48_000 - first.duration_s) < 0.1
        # it holds every packet forwarded (20 ms each), and no more than the hold lasted; the
        # hold's wall-clock length itself stretches when a busy machine delays the talker's packets
        assert abs(first.duration_s - first.packets * 0.02) < 0.1
        assert first.duration_s <= first.ended_at - first.started_at + 0.1
    finally:
        for client in (a, b, c):
            await client.close()


async def test_no_media_timeout_takes_the_floor_back(intercom: tuple[Intercom, list[PttBurst]]) -> None:
    hub, bursts = intercom
    a = await join(hub, 1, tone_cycle())
    b = await join(hub, 2, tone_cycle())
    try:
        a.drain()
        a.send("request")
        assert (await a.expect("granted"))["type"] == "granted"  # granted, but its microphone sends nothing
        revoked = await a.expect("revoked", timeout=3)
        assert revoked["reason"] == "no_media"
        floor = await b.expect("floor")
        while floor["state"] != "idle":
            floor = await b.expect("floor")
        assert bursts == []  # a burst without audio is not recorded
    finally:
        for client in (a, b):
            await client.close()


async def test_late_joiner_hears_and_sees_the_current_talker(intercom: tuple[Intercom, list[PttBurst]]) -> None:
    hub, _ = intercom
    a = await join(hub, 1, tone_cycle())
    try:
        assert (await a.request())["type"] == "granted"
        late = PttClient(9, tone_cycle(), keep_payloads=True)
        participant = Participant(user_id=9, name="late", role="field", priority=100)

        async def exchange(offer: str) -> str:
            return (await hub.join(ROOM, participant, offer))[0]

        await late.connect(exchange)
        hello = await late.expect("hello")
        assert hello["floor"]["state"] == "taken"
        assert hello["floor"]["holder"]["user_id"] == 1
        await wait_for(lambda: len(late.payloads) >= 10)
        a.release()
        await late.close()
    finally:
        await a.close()


async def test_offers_without_opus_or_data_channel_are_refused(intercom: tuple[Intercom, list[PttBurst]]) -> None:
    hub, _ = intercom
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    no_channel = pc.localDescription.sdp
    await pc.close()
    participant = Participant(user_id=1, name="x", role="field", priority=100)
    with pytest.raises(InvalidOffer):
        await hub.join(ROOM, participant, no_channel)
    with pytest.raises(InvalidOffer):
        await hub.join(ROOM, participant, "v=0\r\nnot sdp")
    pcmu_only = no_channel.replace("opus/48000/2", "foo/48000/2") + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
    with pytest.raises((CodecUnsupported, InvalidOffer)):
        await hub.join(ROOM, participant, pcmu_only)
    assert hub.room(ROOM) is None  # nothing was left behind
