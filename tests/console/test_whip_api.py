"""WHIP and publisher viewing over HTTP: who may publish and watch, refusals, clean-up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fusionhub.console.keys import MEDIA
from tests.console.hubrunner import RunningHub, hub_config, running_hub
from tests.media.av_helpers import AvViewer
from tests.media.publish_helpers import Publisher

pytestmark = pytest.mark.slow

SDP = {"Content-Type": "application/sdp"}


@pytest.fixture
async def hub(tmp_path: Path, model_data_dir: Path) -> AsyncIterator[RunningHub]:
    async with running_hub(hub_config(tmp_path / "var", model_data_dir)) as running:
        for name in ("admin", "commander", "duty", "field1", "outsider"):
            await running.login(name)
        yield running


async def test_publish_watch_and_refusals(hub: RunningHub) -> None:
    pub, spare, viewer = Publisher(), Publisher(audio=False), AvViewer()
    ws = await hub.http.ws_connect(
        hub.url.replace("http://", "ws://") + "/ws", protocols=("fusionhub.v1", f"bearer.{hub.tokens['commander']}")
    )
    try:
        offer = await pub.offer()
        status, _ = await hub.call("POST", "/whip/field1", None, data=offer, headers=SDP)
        assert status == 401
        status, body = await hub.call("POST", "/whip/field1", "duty", data=offer, headers=SDP)
        assert status == 403, body  # duty officers watch; they do not publish
        status, body = await hub.call("POST", "/whip/field1", "field1", data=offer)
        assert status == 415, body
        status, body = await hub.call("POST", "/whip/field1", "field1", data="hello", headers=SDP)
        assert status == 400 and body["error"]["code"] == "invalid_sdp"
        status, body = await hub.call("POST", "/whip/bad%20name", "field1", data=offer, headers=SDP)
        assert status == 422 and body["error"]["code"] == "invalid_name"

        async with hub.http.post(f"{hub.url}/whip/field1", data=offer, headers={**SDP, **hub.auth("field1")}) as resp:
            assert resp.status == 201, await resp.text()
            location = resp.headers["Location"]
            await pub.accept(await resp.text())
        assert location.startswith("/whip/sessions/")
        status, body = await hub.call("POST", "/whip/field1", "commander", data=await spare.offer(), headers=SDP)
        assert status == 409 and body["error"]["code"] == "conflict"

        async with asyncio.timeout(15):
            while True:
                status, pubs = await hub.call("GET", "/api/v1/publishers", "commander")
                if pubs and pubs[0]["state"] == "online":
                    break
                await asyncio.sleep(0.1)
        assert pubs[0]["name"] == "field1" and pubs[0]["region"] == "city" and pubs[0]["has_audio"]
        status, pubs = await hub.call("GET", "/api/v1/publishers", "outsider")
        assert status == 200 and pubs == []  # another region sees nothing
        status, _ = await hub.call("POST", "/whep/publishers/field1", "outsider", data=await viewer.offer(), headers=SDP)
        assert status == 404
        status, _ = await hub.call("POST", "/whep/publishers/nobody", "duty", data=viewer.pc.localDescription.sdp, headers=SDP)
        assert status == 404

        status, answer = await hub.call("POST", "/whep/publishers/field1", "duty", data=viewer.pc.localDescription.sdp, headers=SDP)
        assert status == 201
        await viewer.accept(answer.decode())
        await viewer.wait(video=10, audio=25)
        assert viewer.audio_rms > 0.05

        # only the publisher (or an admin) ends the publishing session; its viewers go with it
        status, _ = await hub.call("DELETE", location, "commander")
        assert status == 404
        status, _ = await hub.call("DELETE", location, "field1")
        assert status == 200
        status, pubs = await hub.call("GET", "/api/v1/publishers", "commander")
        assert pubs == []
        async with asyncio.timeout(10):
            while hub.app[MEDIA].session_ids():
                await asyncio.sleep(0.1)
        # consoles were told: connecting, online, offline
        states: list[str] = []
        async with asyncio.timeout(10):
            while "offline" not in states:
                msg = await ws.receive_json()
                if msg["type"] == "event" and msg["data"]["topic"] == "media.publisher_status":
                    assert msg["data"]["data"]["name"] == "field1"
                    states.append(msg["data"]["data"]["state"])
        assert states[-2:] == ["online", "offline"], states
    finally:
        await ws.close()
        await viewer.close()
        await spare.close()
        await pub.close()

