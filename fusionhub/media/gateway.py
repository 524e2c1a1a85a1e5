"""The media gateway: one ingest and one packet relay per camera, and every WHEP viewer session.

The console talks to media only through this class. Cameras are pulled once, whatever the
number of viewers; viewers get the camera's packets as received (no transcoding).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from fusionhub.media.admission import LoopLagMonitor, SetupGate
from fusionhub.media.config import MediaConfig
from fusionhub.media.demand import PullDemand
from fusionhub.media.errors import GatewayFull, MediaError, UnknownCamera, UnknownSession
from fusionhub.media.filesource import FileLoopSource
from fusionhub.media.handoff import LoopHandoff
from fusionhub.media.ice import pin_host_addresses
from fusionhub.media.ingest import CameraIngest
from fusionhub.media.options import IngestOptions
from fusionhub.media.outputs import SourceOutputs
from fusionhub.media.pipeline import IngestStats
from fusionhub.media.publishers import PublisherRegistry
from fusionhub.media.relay import PacketRelay
from fusionhub.media.ring import PacketRing
from fusionhub.media.rtpsend import check_sender_hooks, use_fast_ntp_clock
from fusionhub.media.rtsploop import LoopCameraIngest, decode_pool_size, lower_thread_priority
from fusionhub.media.sampler import SampleCallback, Thumbnailer
from fusionhub.media.sampling import SamplingOptions
from fusionhub.media.source import StatusCallback
from fusionhub.media.urls import validate_camera_url
from fusionhub.media.whep import WhepSession
from fusionhub.signaling.messages import CameraStatus, PublisherStatus
from fusionhub.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class _Source(Protocol):
    """What the gateway needs of CameraIngest and FileLoopSource."""

    @property
    def status(self) -> CameraStatus: ...

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    def latest_keyframe_jpeg(self) -> bytes | None: ...

    def set_sampling(self, wanted: bool) -> None: ...


SourceBuilder = Callable[[SourceOutputs, StatusCallback], _Source]


@dataclass
class _Substream:
    """A camera's second, smaller stream of the same picture, which analytics decodes instead of
    the main one. Nobody views it and no clip is cut from it; it runs while the camera is pulled
    and analytics needs it. Until it is online (and whenever it drops) the main stream is sampled."""

    key: str  # what it was built from (url and sampling); never logged
    build: SourceBuilder
    outputs: SourceOutputs  # its relay has no viewers; no clip ring
    source: _Source | None = None  # None while not running
    generation: object | None = None
    online: bool = False


@dataclass
class _Camera:
    source: _Source  # while idle: the stopped one (its last snapshot still answers)
    relay: PacketRelay
    key: str  # what the source was built from (url or file path), to spot a real change; never logged
    outputs: SourceOutputs  # the source's sink: this relay, audio, the clip ring
    build: SourceBuilder  # makes a fresh source (after a URL change or when leaving idle)
    generation: object | None = None  # the running source's token: statuses of older ones are dropped
    idle_status: CameraStatus | None = None  # set while the camera is not pulled (see demand.py)
    reported: tuple[str, str | None, bool | None] | None = None  # the last (state, reason, substream) passed on
    # whether analytics takes its samples; until told (set_analytics_need), it does
    sampling: bool = True
    sub: _Substream | None = None  # the stream analytics decodes, when the camera has one


class MediaGateway:
    """Owns the cameras' sources and relays and all WHEP sessions; start() before use, stop() at the end."""

    def __init__(
        self,
        config: MediaConfig,
        *,
        on_sample: SampleCallback,
        on_status: StatusCallback,
        on_publisher: Callable[[PublisherStatus], None] | None = None,
        on_sample_lost: Callable[[int], None] | None = None,
        thumbnailer: Thumbnailer | None = None,
    ) -> None:
        """`on_sample(source_id, ts, frame, thumb)`, on the loop: a sampled frame; `thumb` is
        `thumbnailer(frame)`, computed in the decode thread so the loop never spends its time on it
        (analytics' motion-gate thumbnail), or None without a thumbnailer.
        `on_sample_lost(camera_id)`, on the loop: a camera's keyframe due for a sample was replaced by
        its next one before a decode thread was free (the box is short of CPU; analytics counts it)."""
        self._config = config
        # WHIP publishers: sources like cameras, with negative source ids
        self.publishers = PublisherRegistry(
            config, on_sample=on_sample, on_status=on_publisher, on_gone=self._source_gone, thumbnailer=thumbnailer
        )
        self._on_sample = on_sample
        self._on_sample_lost = on_sample_lost
        self._thumbnailer = thumbnailer
        self._on_status = on_status
        self._cameras: dict[int, _Camera] = {}
        self._sessions: dict[str, WhepSession] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handoff: LoopHandoff | None = None  # every camera's packets to the loop, batched
        self._decode_pool: ThreadPoolExecutor | None = None  # event-loop engine: samples decoded here
        self._on_threads: set[str] = set()  # camera URLs the event-loop engine handed over (audio, quirks)
        self._pinned = False
        self._stopped = False
        self.refused_full = 0
        self._closing: set[asyncio.Task[None]] = set()  # viewer sessions closing because their source went
        self._lag = LoopLagMonitor()
        self._gate = SetupGate(
            slots=config.max_concurrent_setups,
            queue=config.setup_queue,
            wait_s=config.setup_wait_s,
            retry_after_s=config.retry_after_s,
            lag=self._lag,
            max_lag_ms=config.max_loop_lag_ms,
        )
        self._demand = PullDemand(config.idle_grace_s)
        self._demand_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Apply the ICE host pinning (process-wide) and accept cameras and viewers."""
        if self._loop is not None:
            return
        check_sender_hooks()  # the passthrough needs them: fail at start, not on the first viewer
        use_fast_ntp_clock(True)
        self._loop = asyncio.get_running_loop()
        self._handoff = LoopHandoff(self._loop)
        if self._config.ice_host_addresses is not None:
            pin_host_addresses(self._config.ice_host_addresses)
            self._pinned = True
        self._lag.start()
        grace = self._config.idle_grace_s
        if grace is not None:
            period = min(1.0, max(0.05, grace / 4))
            self._demand_task = asyncio.create_task(self._demand_loop(period), name="media-pull-demand")

    async def stop(self) -> None:
        """Close viewers, then sources, then relays; every step runs, errors are collected (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        errors: list[BaseException] = []
        task, self._demand_task = self._demand_task, None
        await cancel_and_wait(task)
        await self._lag.stop()
        for session in list(self._sessions.values()):
            await self._step(errors, session.close(), "closing WHEP session %s", session.session_id)
        await self._step(errors, self.publishers.stop(), "stopping WHIP publishers")
        if self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)
        for camera_id, cam in list(self._cameras.items()):
            await self._step(errors, cam.source.stop(), "stopping camera %s", camera_id)
            await self._step(errors, self._close_substream(cam), "stopping the substream of camera %s", camera_id)
            await self._step(errors, cam.outputs.close(), "closing the outputs of camera %s", camera_id)
        self._cameras.clear()
        self._sessions.clear()
        pool, self._decode_pool = self._decode_pool, None
        if pool is not None:  # after the sources: none offers a frame any more
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
        if self._pinned:
            pin_host_addresses(None)
            self._pinned = False
        use_fast_ntp_clock(False)
        if errors:
            raise MediaError(f"{len(errors)} error(s) while stopping the media gateway") from errors[0]

    @staticmethod
    async def _step(errors: list[BaseException], coro: Any, what: str, *args: object) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            errors.append(exc)
            log.exception("error " + what, *args)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None or self._stopped:
            raise MediaError("the media gateway is not running")
        return self._loop

    def _ingest_options(self, sampling: SamplingOptions | None) -> IngestOptions:
        return self._config.ingest if sampling is None else self._config.ingest.model_copy(update={"sampling": sampling})

    async def add_camera(
        self,
        camera_id: int,
        url: str,
        *,
        sampling: SamplingOptions | None = None,
        substream_url: str | None = None,
    ) -> None:
        """Pull an rtsp(s):// camera (raises InvalidCameraUrl); a changed URL or sampling replaces the
        running source. `substream_url`: the camera's substream, which analytics decodes instead of
        the main stream (viewers, snapshots and clips keep the main one); while it is not online the
        main stream is sampled. A changed substream replaces only the substream's source."""
        validate_camera_url(url)
        if substream_url is not None:
            validate_camera_url(substream_url)
        options = self._ingest_options(sampling)
        build = self._rtsp_builder(camera_id, url, options, substream=False)
        sub = None
        if substream_url is not None:
            sub_key = f"url:{substream_url}{_sampling_key(sampling)}"
            sub = (sub_key, self._rtsp_builder(camera_id, substream_url, options, substream=True))
        await self._install(camera_id, f"url:{url}{_sampling_key(sampling)}", build, sub)

    def _rtsp_builder(self, camera_id: int, url: str, options: IngestOptions, *, substream: bool) -> SourceBuilder:
        """What builds a source for an RTSP url, with the engine the gateway picks for it."""
        loop = self._running_loop()
        on_loop = self._config.rtsp_engine == "event_loop" and urlsplit(url).scheme.lower() == "rtsp"

        def build(sink: SourceOutputs, on_status: StatusCallback) -> _Source:
            sink.video.on_watched = None  # the previous source's
            if on_loop and url not in self._on_threads:
                source = LoopCameraIngest(
                    camera_id,
                    url,
                    sink=sink,
                    on_sample=self._on_sample,
                    on_status=on_status,
                    loop=loop,
                    options=options,
                    decode_pool=self._shared_decode_pool(),
                    on_handover=lambda why, quirk: self._read_with_threads(camera_id, url, why, quirk, substream),
                    on_sample_lost=self._on_sample_lost,
                    read_batch_s=self._config.read_batch_ms / 1000,
                    thumbnailer=self._thumbnailer,
                    keyframes_only=substream,  # nobody views a substream: its other pictures are not read
                )
                source.set_watched(sink.video.subscriber_count > 0)
                sink.video.on_watched = source.set_watched
                return source
            return CameraIngest(
                camera_id,
                url,
                sink=sink,
                on_sample=self._on_sample,
                on_status=on_status,
                loop=loop,
                options=options,
                handoff=self._handoff,
                thumbnailer=self._thumbnailer,
            )

        return build

    def _read_with_threads(self, camera_id: int, url: str, why: str, quirk: bool, substream: bool) -> None:
        """The event-loop engine handed a camera (or its substream) over: the threaded engine reads
        it from now on. A quirk (sessions that end before any picture) is worth a warning: worth
        reporting to us."""
        self._on_threads.add(url)
        log.log(
            logging.WARNING if quirk else logging.INFO,
            "camera %s: %s read by the threaded engine, since %s",
            camera_id,
            "substream" if substream else "stream",
            why,
        )
        cam = self._cameras.get(camera_id)
        if cam is None or cam.idle_status is not None or self._stopped:
            return  # the next build sees the URL in _on_threads
        if not substream:
            self._background(self._rebuild(camera_id, cam, cam.source), f"media-{camera_id}-handover")
        elif cam.sub is not None and cam.sub.source is not None:
            restart = self._restart_substream(camera_id, cam, cam.sub, cam.sub.source)
            self._background(restart, f"media-{camera_id}-substream-handover")

    def _background(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run a source change in the background; stop() waits for it."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _rebuild(self, camera_id: int, cam: _Camera, old: _Source) -> None:
        """Replace a camera's source with a fresh build, viewers kept, unless it changed meanwhile."""
        if self._cameras.get(camera_id) is not cam or cam.source is not old or cam.idle_status is not None:
            return
        cam.generation = None
        await old.stop()
        if self._cameras.get(camera_id) is cam and cam.source is old and cam.idle_status is None and not self._stopped:
            cam.outputs.reset()
            self._start_source(camera_id, cam)

    def _shared_decode_pool(self) -> ThreadPoolExecutor:
        """The threads that decode samples for the event-loop engine's cameras (made on first use)."""
        if self._decode_pool is None:
            self._decode_pool = ThreadPoolExecutor(
                decode_pool_size(), thread_name_prefix="media-decode", initializer=lower_thread_priority,
                initargs=(self._config.decode_nice,),
            )
        return self._decode_pool

    async def add_file_camera(self, camera_id: int, path: Path, *, sampling: SamplingOptions | None = None) -> None:
        """The built-in demo camera: a local clip played in a loop as if it were live."""
        loop = self._running_loop()
        options = self._ingest_options(sampling)

        def build(sink: SourceOutputs, on_status: StatusCallback) -> _Source:
            return FileLoopSource(
                camera_id,
                path,
                sink=sink,
                on_sample=self._on_sample,
                on_status=on_status,
                loop=loop,
                options=options,
                handoff=self._handoff,
                thumbnailer=self._thumbnailer,
            )

        resolved = await asyncio.to_thread(Path(path).resolve)
        await self._install(camera_id, f"file:{resolved}{_sampling_key(sampling)}", build)

    async def _install(
        self, camera_id: int, key: str, build: SourceBuilder, sub: tuple[str, SourceBuilder] | None = None
    ) -> None:
        existing = self._cameras.get(camera_id)
        if existing is not None and existing.key == key:
            # same source (e.g. only the name or zones changed): keep pulling, keep viewers
            await self._set_substream(camera_id, existing, sub)
            return
        if existing is not None:
            existing.key, existing.build = key, build
            await self._set_substream(camera_id, existing, sub)
            if existing.idle_status is not None:
                return  # not pulled now: the new source starts with the next viewer
            # a new URL: swap the source under the same relay, so viewers stay and resume at the
            # new source's first keyframe
            existing.generation = None
            await existing.source.stop()
            existing.outputs.reset()
            log.info("camera %s: source replaced", camera_id)
            self._start_source(camera_id, existing)
            return
        relay = PacketRelay(f"camera {camera_id}", queue_packets=self._config.viewer_queue_packets)
        outputs = SourceOutputs(f"camera {camera_id}", relay, self._config.recording)
        source, generation = self._new_source(camera_id, build, outputs)
        cam = _Camera(source, relay, key, outputs, build, generation, sub=self._new_substream(camera_id, sub))
        self._cameras[camera_id] = cam
        self._demand.add(camera_id, time.monotonic())
        source.start()
        self._sync_substream(camera_id, cam)

    def _new_source(self, camera_id: int, build: SourceBuilder, outputs: SourceOutputs) -> tuple[_Source, object]:
        """A source whose statuses are passed on only while it is the camera's current one."""
        generation = object()

        def on_status(status: CameraStatus) -> None:
            self._source_status(camera_id, generation, status)

        return build(outputs, on_status), generation

    def _start_source(self, camera_id: int, cam: _Camera) -> None:
        cam.source, cam.generation = self._new_source(camera_id, cam.build, cam.outputs)
        cam.idle_status = None
        cam.source.set_sampling(_main_samples(cam))
        cam.source.start()
        self._sync_substream(camera_id, cam)

    # -- substreams: what analytics decodes when a camera has one ---------------------------------

    def _new_substream(self, camera_id: int, spec: tuple[str, SourceBuilder] | None) -> _Substream | None:
        if spec is None:
            return None
        name = f"camera {camera_id} substream"
        relay = PacketRelay(name, queue_packets=self._config.viewer_queue_packets)
        return _Substream(spec[0], spec[1], SourceOutputs(name, relay, None))

    async def _set_substream(self, camera_id: int, cam: _Camera, spec: tuple[str, SourceBuilder] | None) -> None:
        """Give a camera this substream (None: none), replacing the running one only if it changed."""
        if (cam.sub.key if cam.sub is not None else None) == (spec[0] if spec is not None else None):
            return
        if cam.sub is not None:
            await self._close_substream(cam)
            log.info("camera %s: substream %s", camera_id, "replaced" if spec is not None else "removed")
        cam.sub = self._new_substream(camera_id, spec)
        self._sync_substream(camera_id, cam)

    def _sync_substream(self, camera_id: int, cam: _Camera) -> None:
        """Run the substream exactly while the camera is pulled and analytics needs it, and sample
        the main stream exactly while analytics needs the camera and its substream is not online."""
        sub = cam.sub
        if sub is not None:
            wanted = cam.sampling and cam.idle_status is None and not self._stopped
            if wanted and sub.source is None:
                generation = object()

                def on_status(status: CameraStatus) -> None:
                    self._substream_status(camera_id, sub, generation, status)

                sub.source, sub.generation = sub.build(sub.outputs, on_status), generation
                sub.source.set_sampling(True)
                sub.source.start()
            elif not wanted and sub.source is not None:
                old = self._detach_substream(cam)
                if old is not None:
                    self._background(old.stop(), f"media-{camera_id}-substream-stop")
        cam.source.set_sampling(_main_samples(cam))
        self._tell_substream(camera_id, cam)

    def _detach_substream(self, cam: _Camera) -> _Source | None:
        """Take the running substream source off the camera (the caller stops it); the main
        stream is sampled again if analytics needs the camera."""
        sub = cam.sub
        if sub is None or sub.source is None:
            return None
        old, sub.source, sub.generation, sub.online = sub.source, None, None, False
        sub.outputs.reset()
        cam.source.set_sampling(_main_samples(cam))
        return old

    async def _restart_substream(self, camera_id: int, cam: _Camera, sub: _Substream, old: _Source) -> None:
        """Rebuild a substream's source (its engine changed), unless it changed meanwhile."""
        if self._cameras.get(camera_id) is not cam or cam.sub is not sub or sub.source is not old:
            return
        self._detach_substream(cam)
        await old.stop()
        if self._cameras.get(camera_id) is cam and cam.sub is sub:
            self._sync_substream(camera_id, cam)

    def _substream_status(self, camera_id: int, sub: _Substream, generation: object, status: CameraStatus) -> None:
        cam = self._cameras.get(camera_id)
        if cam is None or cam.sub is not sub or sub.generation is not generation:
            return  # a replaced or stopped substream's last words
        online = status.state == "online"
        if online == sub.online:
            return
        sub.online = online
        if online:
            log.info("camera %s: substream online; analytics decodes it instead of the main stream", camera_id)
        else:
            log.warning(
                "camera %s: substream %s (%s); analytics decodes the main stream until it is back",
                camera_id,
                status.state,
                status.reason or "no reason given",
            )
        cam.source.set_sampling(_main_samples(cam))
        self._tell_substream(camera_id, cam)

    def _tell_substream(self, camera_id: int, cam: _Camera) -> None:
        """Consoles show which stream analytics decodes: a change is published with the camera's state."""
        reported = cam.reported
        if cam.idle_status is not None or cam.generation is None or reported is None:
            return  # its next status carries it
        if reported[2] != self.substream_online(camera_id):
            self._pass_on(camera_id, cam, cam.source.status)

    def _source_status(self, camera_id: int, generation: object, status: CameraStatus) -> None:
        cam = self._cameras.get(camera_id)
        if cam is not None and cam.generation is not generation:
            return  # the last words of a replaced or idled source: not the camera's state any more
        if cam is not None and status.state == "offline":
            # the next connection starts a new stream: viewers wait for its first keyframe
            # instead of decoding its P-frames against pictures of the old one
            cam.relay.reset()
        if cam is None:
            self._on_status(status)
        else:
            self._pass_on(camera_id, cam, status)

    def _pass_on(self, camera_id: int, cam: _Camera, status: CameraStatus) -> None:
        """Publish a camera's state with whether analytics decodes its substream, unless it is no news."""
        status = status.model_copy(update={"substream_online": self.substream_online(camera_id)})
        reported = (status.state, status.reason, status.substream_online)
        if reported == cam.reported:
            # a new source repeating its predecessor's state (the event-loop engine hands a
            # camera to FFmpeg while connecting): no news, and the first one's `since` stays true
            return
        cam.reported = reported
        self._on_status(status)

    async def remove_camera(self, camera_id: int) -> None:
        """Stop pulling a camera and close its viewers (raises UnknownCamera)."""
        cam = self._cameras.pop(camera_id, None)
        if cam is None:
            raise UnknownCamera(f"camera {camera_id} is not in the media gateway")
        self._demand.remove(camera_id)
        for session in [s for s in self._sessions.values() if s.camera_id == camera_id]:
            await session.close()
        await cam.outputs.close()
        await cam.source.stop()
        await self._close_substream(cam)

    async def _close_substream(self, cam: _Camera) -> None:
        if cam.sub is None:
            return
        old = self._detach_substream(cam)
        if old is not None:
            await old.stop()
        await cam.sub.outputs.close()

    async def whep_offer(self, camera_id: int, sdp: str) -> tuple[str, str]:
        """Answer a WHEP offer for a camera: (answer SDP, session id).

        Raises UnknownCamera, GatewayFull (max_viewers reached, or too many set-ups under way,
        or the hub saturated: see admission.py), CodecUnsupported (no H.264 in the offer),
        InvalidOffer (not a usable SDP offer), TimeoutError (ICE gathering too slow). An idle
        camera starts being pulled again at once.
        """
        self._running_loop()
        if camera_id not in self._cameras:
            raise UnknownCamera(f"camera {camera_id} is not in the media gateway")
        self._check_viewer_limit()
        slot = await self._gate.acquire()  # held until the viewer is connected (or gone)
        cam = self._cameras.get(camera_id)
        if cam is None or len(self._sessions) >= self._config.max_viewers:
            slot.release()
            if cam is None:
                raise UnknownCamera(f"camera {camera_id} was removed")
            self._check_viewer_limit()
        assert cam is not None
        session_id = secrets.token_urlsafe(16)
        session = WhepSession(
            session_id,
            camera_id,
            cam.relay,
            self._config,
            on_closed=self._forget_session,
            audio=cam.outputs,
            setup_slot=slot,
        )
        self._sessions[session_id] = session  # counted against max_viewers while the answer is built
        self._viewers_changed(camera_id)
        if cam.idle_status is not None:
            log.info("camera %s: a viewer arrived; pulling it again", camera_id)
            self._start_source(camera_id, cam)
            self._demand.set_idle(camera_id, False)
        try:
            answer = await session.answer(sdp)
        except BaseException:
            await session.close()
            if camera_id not in self._cameras:
                raise UnknownCamera(f"camera {camera_id} was removed") from None
            raise
        log.info("camera %s: WHEP viewer %s joined (%d viewers)", camera_id, session_id[:6], len(self._sessions))
        return answer, session_id

    async def whep_offer_publisher(self, name: str, sdp: str) -> tuple[str, str]:
        """Answer a WHEP offer for a live WHIP publisher: (answer SDP, session id).

        Raises UnknownPublisher, GatewayFull, CodecUnsupported, InvalidOffer, TimeoutError.
        """
        self._running_loop()
        pub = self.publishers.get(name)
        self._check_viewer_limit()
        slot = await self._gate.acquire()  # held until the viewer is connected (or gone)
        session_id = secrets.token_urlsafe(16)
        session = WhepSession(
            session_id,
            pub.source_id,
            pub.outputs.video,
            self._config,
            on_closed=self._forget_session,
            audio=pub.outputs,
            setup_slot=slot,
        )
        self._sessions[session_id] = session
        try:
            answer = await session.answer(sdp)
        except BaseException:
            await session.close()
            raise
        if not pub.outputs.video.cached_packets:
            pub.session.request_keyframe()  # nothing cached: ask now rather than wait for the periodic one
        log.info("publisher %s: WHEP viewer %s joined (%d viewers)", name, session_id[:6], len(self._sessions))
        return answer, session_id

    async def whip_publish(self, name: str, sdp: str, *, user_id: int, region: str) -> tuple[str, str]:
        """Answer a WHIP offer (see PublisherRegistry.publish): (answer SDP, session id)."""
        self._running_loop()
        return await self.publishers.publish(name, sdp, user_id=user_id, region=region)

    async def whip_delete(self, session_id: str) -> None:
        """End a WHIP publishing session (raises UnknownPublisher)."""
        await self.publishers.unpublish(session_id)

    def _source_gone(self, source_id: int) -> None:
        """A publisher ended: its viewers' peer connections close too."""
        for session in [s for s in self._sessions.values() if s.camera_id == source_id]:
            task = asyncio.get_running_loop().create_task(session.close(), name=f"whep-{session.session_id[:6]}-gone")
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def ring(self, source_id: int) -> PacketRing | None:
        """The clip ring of a camera (id >= 0) or a live publisher (negative id); None if there is none."""
        if source_id < 0:
            return self.publishers.ring(source_id)
        cam = self._cameras.get(source_id)
        return cam.outputs.ring if cam is not None else None

    def _check_viewer_limit(self) -> None:
        if len(self._sessions) >= self._config.max_viewers:
            self.refused_full += 1
            raise GatewayFull(
                f"the hub already serves {self._config.max_viewers} viewers; try again later",
                retry_after_s=self._config.retry_after_s,
            )

    def _forget_session(self, session: WhepSession) -> None:
        if self._sessions.get(session.session_id) is session:
            del self._sessions[session.session_id]
            log.info("camera %s: WHEP viewer %s left", session.camera_id, session.session_id[:6])
            self._viewers_changed(session.camera_id)

    # -- pulling on demand (bookkeeping in demand.py) ---------------------------------------------

    def set_analytics_need(self, camera_id: int, needed: bool) -> None:
        """Tell the gateway whether analytics needs a camera's frames (a camera with zones does).

        A needed camera is always pulled; one that is neither needed nor watched stops being
        pulled `idle_grace_s` after that became true. A camera analytics does not need is not
        decoded either: viewers get its packets as they came, and a snapshot decodes the latest
        keyframe when asked; its substream is not pulled. Unknown cameras are ignored.
        """
        cam = self._cameras.get(camera_id)
        if cam is None:
            return
        cam.sampling = needed
        self._demand.set_needed(camera_id, needed, time.monotonic())
        if needed and cam.idle_status is not None and not self._stopped:
            log.info("camera %s: analytics needs it; pulling it again", camera_id)
            self._start_source(camera_id, cam)
            self._demand.set_idle(camera_id, False)
        else:
            self._sync_substream(camera_id, cam)  # started or stopped with the need

    def _viewers_changed(self, camera_id: int) -> None:
        viewers = sum(1 for s in self._sessions.values() if s.camera_id == camera_id)
        self._demand.set_viewers(camera_id, viewers, time.monotonic())

    async def _demand_loop(self, period_s: float) -> None:
        while True:
            await asyncio.sleep(period_s)
            for camera_id in self._demand.due(time.monotonic()):
                try:
                    await self._go_idle(camera_id)
                except asyncio.CancelledError:
                    raise
                except Exception:  # keep serving; the camera stays pulled
                    log.exception("camera %s: could not stop pulling it", camera_id)

    async def _go_idle(self, camera_id: int) -> None:
        cam = self._cameras.get(camera_id)
        if cam is None or cam.idle_status is not None:
            return
        log.info("camera %s: nobody watches it and analytics does not need it; no longer pulled", camera_id)
        self._demand.set_idle(camera_id, True)
        cam.generation = None  # its "stopped" is not news: the camera is idle
        cam.idle_status = CameraStatus(camera_id=camera_id, state="idle", since=time.time())
        cam.reported = ("idle", None, None)
        self._on_status(cam.idle_status)
        source = cam.source
        old_sub = self._detach_substream(cam)
        await source.stop()
        if old_sub is not None:
            await old_sub.stop()
        if cam.idle_status is not None:
            cam.relay.reset()  # the cached GOP is stale; the next viewer starts at a fresh keyframe

    async def whep_delete(self, session_id: str) -> None:
        """End a WHEP session (raises UnknownSession)."""
        session = self._sessions.get(session_id)
        if session is None:
            raise UnknownSession("no such viewing session")
        await session.close()

    async def snapshot_jpeg(self, camera_id: int) -> bytes | None:
        """The latest keyframe as JPEG (encoded in a thread), None before the first (raises UnknownCamera)."""
        cam = self._cameras.get(camera_id)
        if cam is None:
            raise UnknownCamera(f"camera {camera_id} is not in the media gateway")
        return await asyncio.to_thread(cam.source.latest_keyframe_jpeg)

    def status(self, camera_id: int) -> CameraStatus:
        """A camera's current health (raises UnknownCamera)."""
        cam = self._cameras.get(camera_id)
        if cam is None:
            raise UnknownCamera(f"camera {camera_id} is not in the media gateway")
        return cam.idle_status or cam.source.status

    def statuses(self) -> list[CameraStatus]:
        """Every camera's current health, by camera id."""
        return [self.status(cid) for cid in sorted(self._cameras)]

    def session_ids(self, camera_id: int | None = None) -> list[str]:
        """Open WHEP sessions, optionally of one camera."""
        return [sid for sid, s in self._sessions.items() if camera_id is None or s.camera_id == camera_id]

    def session(self, session_id: str) -> WhepSession:
        """One open WHEP session (raises UnknownSession); for diagnostics and tests."""
        try:
            return self._sessions[session_id]
        except KeyError:
            raise UnknownSession("no such viewing session") from None

    def substream_online(self, camera_id: int) -> bool | None:
        """Whether analytics decodes a camera's substream now (True), or the main stream because the
        substream is not online (False); None for a camera without a running substream."""
        cam = self._cameras.get(camera_id)
        if cam is None or cam.sub is None or cam.sub.source is None:
            return None
        return cam.sub.online

    def ingest_stats(self) -> dict[int, IngestStats]:
        """Each camera source's counters (packets, samples, decode and resize CPU time)."""
        return self._counters(lambda cam: cam.source)

    def substream_stats(self) -> dict[int, IngestStats]:
        """The counters of each running substream source (where cameras with one decode their samples)."""
        return self._counters(lambda cam: cam.sub.source if cam.sub is not None else None)

    def _counters(self, source_of: Callable[[_Camera], _Source | None]) -> dict[int, IngestStats]:
        out: dict[int, IngestStats] = {}
        for cid, cam in sorted(self._cameras.items()):
            stats = getattr(source_of(cam), "stats", None)
            if isinstance(stats, IngestStats):
                out[cid] = stats
        return out

    def stats(self) -> dict[str, Any]:
        """Counters for monitoring: per camera relay figures, viewers, refusals."""
        return {
            "cameras": {cid: cam.relay.stats() for cid, cam in sorted(self._cameras.items())},
            "viewers": len(self._sessions),
            "max_viewers": self._config.max_viewers,
            "refused_full": self.refused_full,
            "admission": self._gate.stats(),
            "loop_lag_ms": round(self._lag.lag_ms, 1),
            "transcodes": sum(1 for s in self._sessions.values() if s.transcoding),
            "idle_cameras": sorted(cid for cid, cam in self._cameras.items() if cam.idle_status is not None),
            "sessions": [s.stats() for s in self._sessions.values()],
            "outputs": {cid: cam.outputs.stats() for cid, cam in sorted(self._cameras.items())},
            # cameras with a substream: whether it runs, and whether analytics decodes it (online)
            "substreams": {
                cid: {"running": cam.sub.source is not None, "online": cam.sub.online}
                for cid, cam in sorted(self._cameras.items())
                if cam.sub is not None
            },
            "publishers": self.publishers.stats(),
        }


def _main_samples(cam: _Camera) -> bool:
    """Whether a camera's main stream is sampled: analytics needs it and no substream is online."""
    return cam.sampling and (cam.sub is None or not cam.sub.online)


def _sampling_key(sampling: SamplingOptions | None) -> str:
    """The part of a source's key that a sampling change alters (the source is rebuilt for it)."""
    return "" if sampling is None else f"#sampling={sampling.mode}/{sampling.fps:g}"
