"""Admission control over real HTTP: WHEP set-ups beyond the limit get 503 + Retry-After while the
viewers already watching keep their full frame rate; refused viewers get in when they retry."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from fusionhub.console.keys import MEDIA
from tests.console.hubrunner import RunningHub, hub_config, running_hub
from tests.support.rtsp import RtspServer

from .conftest import CLIP_FPS
from .viewers import DecodingViewer

pytestmark = pytest.mark.slow


async def _post(hub: RunningHub, cam_id: int, viewer: DecodingViewer) -> tuple[int, str, dict[str, str]]:
    offer = await viewer.offer()
    headers = {**hub.auth("commander"), "Content-Type": "application/sdp"}
    async with hub.http.post(f"{hub.url}/whep/cameras/{cam_id}", data=offer, headers=headers) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


@pytest.mark.timeout(120)
async def test_setups_beyond_the_limit_get_503_while_live_viewers_keep_full_rate(
    scene_clip: Path, tmp_path: Path, model_data_dir: Path
) -> None:
    config = hub_config(tmp_path, model_data_dir, media={"max_concurrent_setups": 1, "setup_queue": 0})
    async with RtspServer(scene_clip) as camera, running_hub(config) as hub:
        await hub.login("admin")
        await hub.login("commander")
        status, cam = await hub.call(
            "POST", "/api/v1/cameras", "admin", json={"name": "Gate 4", "url": camera.url, "region": "city"}
        )
        assert status == 201
        live = DecodingViewer()
        crowd = [DecodingViewer() for _ in range(4)]
        try:
            for _ in range(5):  # a hub still busy starting up may say so: a client comes back after Retry-After
                status, answer, headers = await _post(hub, cam["id"], live)
                if status != 503:
                    break
                assert headers.get("Retry-After") == "2" and '"hub_full"' in answer, answer
                await live.close()
                live = DecodingViewer()
                await asyncio.sleep(2)
            assert status == 201, answer
            await live.accept(answer)
            await live.wait_frames(10, timeout=30)

            t0 = time.monotonic()
            replies = await asyncio.gather(*(_post(hub, cam["id"], v) for v in crowd))
            refused = [(v, r) for v, r in zip(crowd, replies, strict=True) if r[0] == 503]
            admitted = [(v, r) for v, r in zip(crowd, replies, strict=True) if r[0] == 201]
            assert refused and admitted, [r[0] for r in replies]
            for _, (_, body, headers) in refused:
                assert headers.get("Retry-After") == "2" and '"hub_full"' in body
            for viewer, (_, body, _) in admitted:
                await viewer.accept(body)

            # the refused ones come back after Retry-After, one set-up at a time, until all are in
            for i, (viewer, _) in enumerate(refused):
                for _ in range(20):
                    await asyncio.sleep(0.2)
                    await viewer.close()
                    viewer = DecodingViewer()  # a fresh peer connection and offer for each attempt
                    refused[i] = (viewer, refused[i][1])
                    status, body, headers = await _post(hub, cam["id"], viewer)
                    if status == 201:
                        await viewer.accept(body)
                        break
                    assert status == 503 and headers.get("Retry-After") == "2"
                else:
                    raise AssertionError("a refused viewer never got in")
            crowd = [v for v, _ in admitted + refused]
            for viewer in crowd:
                await viewer.wait_frames(5, timeout=20)
            await asyncio.sleep(max(0.0, t0 + 4 - time.monotonic()))
            t1 = time.monotonic()
            fps = live.fps(t0, t1)
            print(f"live viewer during the set-up burst: {fps:.1f} fps over {t1 - t0:.1f} s (camera {CLIP_FPS} fps)")
            assert fps >= 0.85 * CLIP_FPS
            assert all(v.fps(t1 - 1.5, t1) >= 0.6 * CLIP_FPS for v in crowd)  # the newcomers play too
            gate = hub.app[MEDIA].stats()["admission"]
            # every 503 is counted: mostly as queue full; on a loaded box some as event-loop lag
            refusals = gate["refused_queue_full"] + gate["refused_lag"] + gate["refused_wait"]
            assert refusals >= len(refused) and gate["setting_up"] == 0, gate
        finally:
            for viewer in [live, *crowd]:
                await viewer.close()
