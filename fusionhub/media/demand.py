"""PullDemand: which cameras must be pulled now, and which may stop after their grace period.

A camera is wanted while someone watches it or analytics needs it (a camera with zones always
does). Once unwanted, it is still pulled for `grace_s` (a viewer who reloads the page, or
flips between cameras, finds it running), then it is due to go idle. Pure bookkeeping on a
clock the caller passes in; the gateway stops and restarts the sources.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _Demand:
    viewers: int = 0
    needed: bool = False  # by analytics
    unwanted_since: float | None = None  # None while wanted
    idle: bool = False  # not pulled now


class PullDemand:
    """Per-camera viewers and analytics need; `due()` lists the cameras whose grace has run out."""

    def __init__(self, grace_s: float | None) -> None:
        self._grace_s = grace_s  # None: never idle
        self._cams: dict[int, _Demand] = {}

    def add(self, camera_id: int, now: float) -> None:
        """A new camera: pulled at once, and for the grace period even if nobody wants it."""
        self._cams.setdefault(camera_id, _Demand(unwanted_since=now))

    def remove(self, camera_id: int) -> None:
        """Forget a camera."""
        self._cams.pop(camera_id, None)

    def _update(self, d: _Demand, now: float) -> None:
        if d.viewers > 0 or d.needed:
            d.unwanted_since = None
        elif d.unwanted_since is None:
            d.unwanted_since = now

    def set_needed(self, camera_id: int, needed: bool, now: float) -> None:
        """Analytics needs (or no longer needs) this camera's frames."""
        d = self._cams.get(camera_id)
        if d is not None:
            d.needed = needed
            self._update(d, now)

    def set_viewers(self, camera_id: int, viewers: int, now: float) -> None:
        """How many viewers the camera has now."""
        d = self._cams.get(camera_id)
        if d is not None:
            d.viewers = viewers
            self._update(d, now)

    def set_idle(self, camera_id: int, idle: bool) -> None:
        """Record that the gateway stopped (True) or restarted (False) pulling the camera."""
        d = self._cams.get(camera_id)
        if d is not None:
            d.idle = idle

    def is_idle(self, camera_id: int) -> bool:
        """True while the camera is not pulled."""
        d = self._cams.get(camera_id)
        return d is not None and d.idle

    def wanted(self, camera_id: int) -> bool:
        """True while someone watches it or analytics needs it."""
        d = self._cams.get(camera_id)
        return d is not None and (d.viewers > 0 or d.needed)

    def due(self, now: float) -> list[int]:
        """Pulled cameras unwanted for longer than the grace period, by id."""
        if self._grace_s is None:
            return []
        return sorted(
            cid
            for cid, d in self._cams.items()
            if not d.idle and d.unwanted_since is not None and now - d.unwanted_since >= self._grace_s
        )
