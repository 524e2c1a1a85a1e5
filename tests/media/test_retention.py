"""Disk budgets: the oldest server-written files go first; nothing else in the folder is touched."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from fusionhub.media.retention import enforce_budget, server_files


def _file(folder: Path, name: str, size: int, mtime: float) -> Path:
    path = folder / name
    path.write_bytes(b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


def test_oldest_first_until_within_budget(tmp_path: Path) -> None:
    clips = [_file(tmp_path, f"{uuid.uuid4().hex}.mp4", 100, 1000 + i) for i in range(5)]
    evidence = _file(tmp_path, f"{uuid.uuid4()}.jpg", 100, 999)  # evidence names are dashed UUIDs
    foreign = _file(tmp_path, "operator-notes.mp4", 10_000, 1)  # not ours: never counted, never deleted
    hidden = _file(tmp_path, f".{uuid.uuid4().hex}.mp4.part", 10_000, 1)  # a clip being written
    removed = enforce_budget(tmp_path, 350)
    assert [r.name for r in removed] == [evidence.name, clips[0].name, clips[1].name]
    assert all(not p.exists() for p in (evidence, clips[0], clips[1]))
    assert all(p.exists() for p in (*clips[2:], foreign, hidden))
    assert sum(size for _, _, size in server_files(tmp_path)) == 300
    assert enforce_budget(tmp_path, 350) == []  # within budget: nothing more goes


def test_budget_zero_empties_and_a_missing_folder_is_fine(tmp_path: Path) -> None:
    _file(tmp_path, f"{uuid.uuid4().hex}.mp4", 10, 1)
    assert len(enforce_budget(tmp_path, 0)) == 1
    assert enforce_budget(tmp_path / "nowhere", 0) == []
