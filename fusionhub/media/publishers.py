"""PublisherRegistry: the live WHIP publishers (field phones, WebRTC terminals) by name.

A publisher is a source like a camera: it has a source id (negative, so it never collides with
a camera's record id), a status (connecting, online while media flows, offline once gone),
SourceOutputs that WHEP viewers, listeners and clips use, and analytics samples. Names are
unique while live; publishing again under the same name after the first ended is fine and keeps
the same source id for the life of the hub.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from fusionhub.media.config import MediaConfig
from fusionhub.media.errors import GatewayFull, MediaError
from fusionhub.media.outputs import SourceOutputs
from fusionhub.media.packets import AudioFormat
from fusionhub.media.publisher import PublisherSource, SampleCallback
from fusionhub.media.relay import PacketRelay
from fusionhub.media.ring import PacketRing
from fusionhub.media.sampler import Thumbnailer
from fusionhub.media.whip import WhipSession
from fusionhub.signaling.messages import PublisherStatus

log = logging.getLogger(__name__)

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class IngestSession(Protocol):
    """What the registry needs of a publishing session: a WhipSession, or a dialled SIP terminal (media/sip.py)."""

    session_id: str
    name: str
    audio_format: AudioFormat | None
    keyframe_requests: int

    async def answer(self, offer: str) -> str: ...

    def request_keyframe(self) -> None: ...

    async def close(self) -> None: ...


class SessionFactory(Protocol):
    """Builds the session of a new publisher (default: WhipSession)."""

    def __call__(
        self,
        session_id: str,
        name: str,
        config: MediaConfig,
        *,
        on_video: Callable[[bytes, int], None],
        on_audio: Callable[[bytes, int], None],
        on_closed: Callable[[IngestSession], None],
    ) -> IngestSession: ...


class UnknownPublisher(MediaError, LookupError):
    """No live publisher has that name (or session id)."""


class PublisherBusy(MediaError):
    """Someone is already publishing under that name."""


class InvalidPublisherName(MediaError, ValueError):
    """A publisher name must be 1-64 letters, digits, '_', '.', '-', starting with a letter or digit."""


@dataclass
class Publisher:
    """One live publisher."""

    name: str
    source_id: int
    user_id: int
    region: str
    session: IngestSession
    source: PublisherSource
    outputs: SourceOutputs
    status: PublisherStatus
    # False while its WHIP answer is being built: counted against max_publishers, but not yet
    # offered to viewers, whose answer depends on the audio format that answer settles
    answered: bool = False

    def public(self) -> dict[str, object]:
        """As the API shows it."""
        return {
            "name": self.name,
            "source_id": self.source_id,
            "user_id": self.user_id,
            "region": self.region,
            "state": self.status.state,
            "since": self.status.since,
            "has_audio": self.status.has_audio,
        }


class PublisherRegistry:
    """Owns every WHIP session and its source; stop() ends them all."""

    def __init__(
        self,
        config: MediaConfig,
        *,
        on_sample: SampleCallback,
        on_status: Callable[[PublisherStatus], None] | None = None,
        on_gone: Callable[[int], None] | None = None,
        thumbnailer: Thumbnailer | None = None,
    ) -> None:
        self._config = config
        self._on_sample = on_sample
        self._thumbnailer = thumbnailer
        self._listeners: list[Callable[[PublisherStatus], None]] = [on_status] if on_status is not None else []
        self._on_gone = on_gone
        self._live: dict[str, Publisher] = {}
        self._ids: dict[str, int] = {}
        self._cleanups: set[asyncio.Task[None]] = set()
        self._stopped = False

    def _source_id(self, name: str) -> int:
        return self._ids.setdefault(name, -(len(self._ids) + 1))

    async def publish(
        self, name: str, offer_sdp: str, *, user_id: int, region: str, session_factory: SessionFactory | None = None
    ) -> tuple[str, str]:
        """Answer a WHIP offer: (answer SDP, session id). Raises InvalidPublisherName, PublisherBusy,
        GatewayFull, InvalidOffer, CodecUnsupported, TimeoutError. `session_factory` (default
        WhipSession) lets another ingest, e.g. a dialled SIP terminal, publish the same way."""
        if self._stopped:
            raise MediaError("the media gateway is not running")
        if not re.match(NAME_PATTERN, name):
            raise InvalidPublisherName(InvalidPublisherName.__doc__ or "invalid publisher name")
        if name in self._live:
            raise PublisherBusy(f"someone is already publishing as {name!r}")
        if len(self._live) >= self._config.whip.max_publishers:
            raise GatewayFull(f"the hub already takes {self._config.whip.max_publishers} publishers; try again later")
        source_id = self._source_id(name)
        outputs = SourceOutputs(
            f"publisher {name}",
            PacketRelay(f"publisher {name}", queue_packets=self._config.viewer_queue_packets),
            self._config.recording,
        )
        session_id = secrets.token_urlsafe(16)
        pub: Publisher | None = None

        def online() -> None:
            if pub is not None:
                self._set_status(pub, "online")

        source = PublisherSource(
            source_id,
            name,
            outputs=outputs,
            options=self._config.ingest,
            on_sample=self._on_sample,
            on_online=online,
            thumbnailer=self._thumbnailer,
        )
        factory: SessionFactory = session_factory or WhipSession  # type: ignore[assignment]
        session = factory(
            session_id, name, self._config, on_video=source.on_video, on_audio=source.on_audio, on_closed=self._ended
        )
        status = PublisherStatus(
            name=name, source_id=source_id, state="connecting", region=region, user_id=user_id, has_audio=False, since=time.time()
        )
        pub = Publisher(name, source_id, user_id, region, session, source, outputs, status)
        self._live[name] = pub  # counted against max_publishers while the answer is built
        try:
            answer = await session.answer(offer_sdp)
        except BaseException:
            await session.close()
            raise
        source.audio_format = session.audio_format
        outputs.audio.format = session.audio_format  # known from the SDP before the first packet
        pub.answered = True
        self._set_status(pub, "connecting")
        log.info("publisher %s (source %d) answered by user %s; audio %s", name, source_id, user_id,
                 session.audio_format.codec if session.audio_format else "none")
        return answer, session_id

    def _set_status(self, pub: Publisher, state: str, reason: str | None = None) -> None:
        pub.status = PublisherStatus(
            name=pub.name,
            source_id=pub.source_id,
            state=state,  # type: ignore[arg-type]
            reason=reason,
            region=pub.region,
            user_id=pub.user_id,
            has_audio=pub.source.audio_format is not None,
            since=time.time(),
        )
        for listener in self._listeners:
            listener(pub.status)

    def add_listener(self, listener: Callable[[PublisherStatus], None]) -> None:
        """Also call `listener` with every status change (on the loop; it must not block)."""
        self._listeners.append(listener)

    def _ended(self, session: IngestSession) -> None:
        pub = self._live.get(session.name)
        if pub is None or pub.session is not session:
            return
        del self._live[session.name]
        log.info("publisher %s (source %d) ended", pub.name, pub.source_id)
        if pub.source.packets:  # an answer that never connected was not announced as live
            self._set_status(pub, "offline", "ended")
        task = asyncio.get_running_loop().create_task(self._cleanup(pub), name=f"publisher-{pub.name}-cleanup")
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _cleanup(self, pub: Publisher) -> None:
        await pub.source.stop()
        if self._on_gone is not None:
            self._on_gone(pub.source_id)
        await pub.outputs.close()

    def get(self, name: str) -> Publisher:
        """A live publisher (raises UnknownPublisher, also while its answer is still being built:
        a viewer answered then would get no audio, as WHEP cannot add it later)."""
        pub = self._live.get(name)
        if pub is None or not pub.answered:
            raise UnknownPublisher(f"nobody is publishing as {name!r}")
        return pub

    def by_session(self, session_id: str) -> Publisher:
        """The live publisher of a WHIP session (raises UnknownPublisher)."""
        for pub in self._live.values():
            if pub.session.session_id == session_id:
                return pub
        raise UnknownPublisher("no such publishing session")

    def session_ids(self) -> set[str]:
        """WHIP session ids of the live publishers."""
        return {p.session.session_id for p in self._live.values()}

    def by_source(self, source_id: int) -> Publisher | None:
        """The live publisher with that source id, if any."""
        return next((p for p in self._live.values() if p.source_id == source_id), None)

    def ring(self, source_id: int) -> PacketRing | None:
        """The clip ring of a live publisher."""
        pub = self.by_source(source_id)
        return pub.outputs.ring if pub is not None else None

    def list(self) -> list[Publisher]:
        """Live publishers, by name."""
        return [self._live[n] for n in sorted(self._live)]

    async def unpublish(self, session_id: str) -> None:
        """End a publishing session (raises UnknownPublisher)."""
        await self.by_session(session_id).session.close()

    async def stop(self) -> None:
        """End every publisher and wait for their clean-up (safe to call twice)."""
        self._stopped = True
        for pub in list(self._live.values()):
            await pub.session.close()
        while self._cleanups:
            await asyncio.gather(*list(self._cleanups), return_exceptions=True)

    def stats(self) -> dict[str, object]:
        """Counters per live publisher."""
        return {
            p.name: {**p.public(), **p.source.stats(), **p.outputs.stats(), "keyframe_requests": p.session.keyframe_requests}
            for p in self.list()
        }
