"""A camera source's health policy, shared by both RTSP engines: states, reconnect backoff, log noise.

The thread engine (source.py) and the event-loop engine (rtsploop.py) report the same states for
the same reasons, back off the same way and log a flapping camera the same way; this class is
that policy, once. It does not deliver anything: `report()` returns the status to deliver (or
None for a repeat) and the engine delivers it on the event loop its own way.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Literal

from fusionhub.signaling.messages import CameraStatus

from .options import IngestOptions

log = logging.getLogger("fusionhub.media.source")

State = Literal["connecting", "online", "offline", "degraded", "stopped"]


class SourceHealth:
    """States reported, consecutive failures (for the backoff) and the flapping-log policy of one source."""

    def __init__(
        self, camera_id: int, options: IngestOptions, describe: Callable[[], str], redact: Callable[[str], str]
    ) -> None:
        self._camera_id = camera_id
        self._options = options
        self._describe = describe
        self._redact = redact
        self.reported: tuple[State, str | None] = ("stopped", None)
        self._quiet = False  # after the first outage: logs at debug until stable again
        self._attempt = 0  # consecutive failed sessions, for the backoff
        self._online_since: float | None = None  # start of the current online streak
        self._stable_s = max(options.reconnect_max_s, 30.0)

    def next_delay(self) -> float:
        """Seconds to wait before the next connection attempt (exponential, with jitter)."""
        delay = min(self._options.reconnect_max_s, self._options.reconnect_min_s * 2**self._attempt)
        self._attempt = min(self._attempt + 1, 30)
        return delay * random.uniform(0.5, 1.0)  # jitter: cameras behind one switch desynchronise

    def check_stable(self, now: float) -> None:
        """After a while online, backoff restarts from the minimum and logging gets loud again."""
        if self._online_since is None:
            self._online_since = now
        elif (self._attempt or self._quiet) and now - self._online_since >= self._stable_s:
            self._attempt = 0
            if self._quiet:
                self._quiet = False
                log.info("[camera %d] %s stable again", self._camera_id, self._describe())

    def report(self, state: State, reason: str | None, detail: str = "") -> CameraStatus | None:
        """Log a state change and return its status; None when it repeats the current state."""
        if (state, reason) == self.reported:
            return None
        previous = self.reported[0]
        self.reported = (state, reason)
        name = self._describe()
        if state != "online" and state != "degraded":
            self._online_since = None
        if state == "offline":
            level = logging.DEBUG if self._quiet else logging.WARNING
            if not self._quiet:
                self._quiet = True  # a flapping camera warns once, then logs at debug
            detail = self._redact(detail)
            log.log(level, "[camera %d] %s offline (%s): %s", self._camera_id, name, reason, detail)
        elif state == "online" and previous != "degraded":
            level = logging.DEBUG if self._quiet else logging.INFO
            log.log(level, "[camera %d] %s online", self._camera_id, name)
        else:
            log.debug("[camera %d] %s %s %s", self._camera_id, name, state, reason or "")
        return CameraStatus(camera_id=self._camera_id, state=state, reason=reason, since=time.time())
