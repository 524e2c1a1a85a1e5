"""Disk budgets: keep a directory of server-written files under a byte budget, oldest first.

Only files the hub wrote are touched: names it generated (a UUID and a known suffix) directly in
the given directory; anything else there is neither counted nor deleted. Blocking: call from a
thread.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# uuid4().hex (clips) or str(uuid4()) (evidence), then the suffix
_SERVER_NAME = re.compile(r"^(?:[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.(mp4|jpg)$")


@dataclass(frozen=True, slots=True)
class Removed:
    """A file deleted to stay within budget."""

    name: str
    size: int


def server_files(directory: Path) -> list[tuple[float, str, int]]:
    """(mtime, name, size) of the server-named files in `directory`, oldest first."""
    out: list[tuple[float, str, int]] = []
    try:
        with os.scandir(directory) as it:
            for entry in it:
                if not _SERVER_NAME.match(entry.name) or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                out.append((st.st_mtime, entry.name, st.st_size))
    except FileNotFoundError:
        return []
    out.sort()
    return out


def enforce_budget(directory: Path, budget: int) -> list[Removed]:
    """Delete the oldest server-named files until their total is at most `budget` bytes."""
    files = server_files(directory)
    total = sum(size for _, _, size in files)
    removed: list[Removed] = []
    for _, name, size in files:
        if total <= budget:
            break
        try:
            (directory / name).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("retention: cannot delete %s: %s", name, exc.strerror)
            continue
        total -= size
        removed.append(Removed(name, size))
    if removed:
        log.info("retention: deleted %d file(s) from %s to stay within %d bytes", len(removed), directory.name, budget)
    return removed
