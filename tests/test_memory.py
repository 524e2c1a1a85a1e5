"""The hub's malloc thresholds: freed frames are reused, not handed back and faulted in again."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc malloc only"
)

# A burst of samples as the hub holds them: 20 frames of 640x360 BGR written, then all freed. With
# glibc's defaults the freed 13.8 MB lies at the top of the heap, above its trim threshold, and goes
# back to the kernel, so every burst faults every page in again.
_BURSTS = textwrap.dedent(
    """
    import json, resource, sys
    from fusionhub.memory import keep_freed_memory
    kept = keep_freed_memory() if sys.argv[1] == "keep" else None
    FRAME = 640 * 360 * 3
    def burst():
        frames = [bytes([i]) * FRAME for i in range(20)]
        return sum(f[-1] for f in frames)
    for _ in range(5):
        burst()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(25):
        burst()
    print(json.dumps({"kept": kept, "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
    """
)


PAGES_PER_BURST = 20 * 640 * 360 * 3 // 4096


def _bursts(mode: str, **env: str) -> dict[str, object]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    out = subprocess.run(
        [sys.executable, "-c", _BURSTS, mode], cwd=REPO, env={**clean, **env}, capture_output=True, text=True,
        timeout=60, check=True,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_freed_frames_are_used_again_instead_of_faulting_in_fresh_pages() -> None:
    default = _bursts("default")
    kept = _bursts("keep")
    assert kept["kept"] is True
    # glibc's defaults give the pages back after each burst and fault them in again
    assert isinstance(default["faults"], int) and default["faults"] > 10 * PAGES_PER_BURST
    # kept: 25 bursts reuse the first bursts' memory
    assert isinstance(kept["faults"], int) and kept["faults"] < PAGES_PER_BURST // 2, (default, kept)


def test_an_operators_own_malloc_settings_are_left_alone() -> None:
    for env in ({"MALLOC_TRIM_THRESHOLD_": "131072"}, {"GLIBC_TUNABLES": "glibc.malloc.tcache_count=7"}):
        result = _bursts("keep", **env)
        assert result["kept"] is False, env
        # and glibc's behaviour is what the operator chose: pages go back after each burst
        assert isinstance(result["faults"], int) and result["faults"] > 10 * PAGES_PER_BURST, env
