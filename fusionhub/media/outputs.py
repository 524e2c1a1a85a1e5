"""SourceOutputs: everything one source's packets feed, as the single sink the source writes to.

- video: the PacketRelay (GOP cache, per-viewer queues) for WHEP viewers;
- audio: an AudioRelay for listeners, plus ONE OpusTranscoder per source, started on demand,
  for listeners that cannot take the source's audio as it is (AAC always);
- ring: the PacketRing that flag clips are cut from.
"""

from __future__ import annotations

from fusionhub.media.audio import AudioRelay
from fusionhub.media.packets import AudioPacket, EncodedPacket
from fusionhub.media.recording import RecordingConfig
from fusionhub.media.relay import PacketRelay
from fusionhub.media.ring import PacketRing
from fusionhub.media.transcode import OpusTranscoder


class SourceOutputs:
    """The sink of one source (PacketSink and AudioSink): fans each packet out to its consumers."""

    def __init__(self, name: str, video: PacketRelay, recording: RecordingConfig | None) -> None:
        self.name = name
        self.video = video
        self.audio = AudioRelay(name)
        self.ring = (
            PacketRing(seconds=recording.buffer_s, max_bytes=recording.buffer_bytes)
            if recording is not None and recording.buffer_s > 0
            else None
        )
        self._opus: OpusTranscoder | None = None

    def on_packet(self, packet: EncodedPacket) -> None:
        """A video packet from the source (loop thread)."""
        self.video.on_packet(packet)
        if self.ring is not None:
            self.ring.on_packet(packet)

    def on_audio(self, packet: AudioPacket) -> None:
        """An audio packet from the source (loop thread)."""
        self.audio.on_audio(packet)
        if self.ring is not None:
            self.ring.on_audio(packet)

    def reset(self) -> None:
        """The source was replaced: viewers resume at its first keyframe; the history is not its."""
        self.video.reset()
        if self.ring is not None:
            self.ring.clear()

    def opus(self) -> AudioRelay:
        """The source's audio as Opus, from its one shared transcoder (started if it is not running)."""
        if self._opus is None:
            self._opus = OpusTranscoder(self.audio, self.name)
        self._opus.start()
        return self._opus.relay

    async def close(self) -> None:
        """Close every consumer (idempotent)."""
        self.video.close()
        self.audio.close()
        if self._opus is not None:
            await self._opus.stop()
        if self.ring is not None:
            self.ring.clear()

    def stats(self) -> dict[str, object]:
        """Audio and recording figures (the video relay reports its own)."""
        return {
            "audio": self.audio.stats(),
            "opus": self._opus.stats() if self._opus is not None else None,
            "ring": self.ring.stats() if self.ring is not None else None,
        }
