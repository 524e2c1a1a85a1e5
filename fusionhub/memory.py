"""Keep freed memory in the process instead of handing it back to the kernel at once (glibc only).

The hub and its workers allocate and free the same large blocks many times a second: samples
(691 KB at 640x360), frames for the model, blobs, ZeroMQ messages, and 30 s of every camera's packets
in the clip rings. glibc's malloc gives memory back to the kernel as soon as a few hundred KB lie
free at the top of a heap, and serves any block above its mmap threshold (128 KB at first) with
fresh pages. Each page it takes back faults in again, zeroed, the next time it is touched; on a
virtual machine a fault costs microseconds. With 280 cameras on a 2-core VM the hub process took
350-800 page faults a second in steady state this way, and the whole pipeline spent 12.5-13.6 ms
of CPU per analysed frame; with the thresholds below, 60-180 faults a second and 11.3-11.5 ms
(bench/analytics_capacity.py's set-up, measured by turns).

The price is memory the process keeps after a peak instead of returning it: at most
TRIM_THRESHOLD free at the top of each heap.

An operator who sets glibc's own knobs (MALLOC_TRIM_THRESHOLD_, MALLOC_MMAP_THRESHOLD_,
MALLOC_TOP_PAD_, or `glibc.malloc.*` in GLIBC_TUNABLES) keeps them: nothing is changed then.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import sys

__all__ = ["MMAP_THRESHOLD", "TOP_PAD", "TRIM_THRESHOLD", "keep_freed_memory"]

log = logging.getLogger(__name__)

# mallopt(3) parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 32 * 1024 * 1024  # blocks below this come from the heap (glibc's own ceiling)
TRIM_THRESHOLD = 64 * 1024 * 1024  # free memory at a heap's top kept before any goes back
TOP_PAD = 16 * 1024 * 1024  # extra asked of the kernel whenever the heap grows

_OPERATOR_KNOBS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")


def keep_freed_memory() -> bool:
    """Set glibc malloc's thresholds for this process; True when they were set.

    False, changing nothing, off Linux/glibc or where the operator set malloc's knobs."""
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in _OPERATOR_KNOBS) or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        log.debug("malloc thresholds left as the environment sets them")
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = all(
        mallopt(param, value) == 1
        for param, value in ((_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_TOP_PAD, TOP_PAD))
    )
    log.debug("malloc keeps freed memory: mmap threshold %d, trim threshold %d, top pad %d (%s)",
              MMAP_THRESHOLD, TRIM_THRESHOLD, TOP_PAD, "set" if done else "refused")
    return done
