"""The cheap parts of scaling analytics, on real pictures and a real H.264 clip: sampling modes,
the motion gate's decisions, and the choice of inference runtime with its fallback."""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.capacity_clip import play_through
from fusionhub.analytics import runtime
from fusionhub.analytics.detector import Detector
from fusionhub.analytics.models import ModelFiles
from fusionhub.analytics.motion import THUMB_SIZE, GateSettings, MotionGate, thumbnail, zones_window
from fusionhub.media.democlip import bus_image, make_scene_clip
from fusionhub.media.options import IngestOptions
from fusionhub.media.pipeline import IngestStats, PacketPipeline
from fusionhub.media.sampling import SamplingOptions

CLIP_S, CLIP_FPS, GOP_S = 10, 25, 2.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 s of the real street photo, 25 fps, a keyframe every 2 s (a common camera default)."""
    out = tmp_path_factory.mktemp("clip") / "street.mp4"
    return make_scene_clip(
        out, image=bus_image(), seconds_empty=4, seconds_present=CLIP_S - 4, fps=CLIP_FPS, width=320, gop_s=GOP_S
    )


def _sample(clip: Path, sampling: SamplingOptions | None) -> tuple[list[np.ndarray], IngestStats]:
    """Push every packet of the clip through the real pipeline (as fast as it goes, not paced)."""
    frames: list[np.ndarray] = []
    stats = IngestStats()
    pipeline = PacketPipeline(
        1, options=IngestOptions(sampling=sampling), stats=stats, on_sample=lambda _ts, f, _thumb: frames.append(f)
    )
    play_through(pipeline, clip)
    return frames, stats


@pytest.mark.parametrize("fps", [1.0, 4.0, 12.5])
def test_fps_mode_samples_at_the_requested_rate(clip: Path, fps: float) -> None:
    frames, stats = _sample(clip, SamplingOptions(mode="fps", fps=fps))
    assert abs(len(frames) - CLIP_S * fps) <= 1, len(frames)
    assert stats.decoded == CLIP_S * CLIP_FPS  # every frame decoded: a P-frame needs its references
    assert stats.samples == len(frames) and stats.sample_errors == 0
    assert frames[0].shape[1] == 320 and all(f.shape == frames[0].shape and f.dtype == np.uint8 for f in frames)
    # the samples follow the clip: the empty road first, then the bus (not one frame repeated)
    assert not np.array_equal(frames[0], frames[-1])


def test_keyframe_mode_decodes_keyframes_only(clip: Path) -> None:
    frames, stats = _sample(clip, None)  # the default: keyframes, at most one a second
    keyframes = round(CLIP_S / GOP_S)
    assert len(frames) == keyframes and stats.decoded == keyframes == stats.keyframes
    fewer, fewer_stats = _sample(clip, SamplingOptions(mode="keyframes", fps=0.25))  # one every 4 s at most
    assert len(fewer) == 3 and fewer_stats.decoded == 3
    assert stats.decode_cpu_s > 0 and stats.resize_cpu_s >= 0


def test_a_looping_camera_samples_the_same_pictures_on_every_pass(clip: Path) -> None:
    """A file camera starts a new stream at each loop, an RTSP one at each reconnect: the sampler
    keeps its keyframe decoder across them, and the samples must not change because of it."""
    frames: list[np.ndarray] = []
    stats = IngestStats()
    pipeline = PacketPipeline(1, options=IngestOptions(), stats=stats, on_sample=lambda _ts, f, _thumb: frames.append(f))
    play_through(pipeline, clip, passes=3)
    per_pass = round(CLIP_S / GOP_S)
    assert len(frames) == 3 * per_pass and stats.sample_errors == 0
    first = frames[:per_pass]
    assert not np.array_equal(first[0], first[-1])  # the clip changes within a pass
    for later in (frames[per_pass : 2 * per_pass], frames[2 * per_pass :]):
        assert all(np.array_equal(a, b) for a, b in zip(first, later, strict=True))


def _street(rng: np.random.Generator) -> np.ndarray:
    frame = np.full((360, 640, 3), 90, np.uint8)
    frame[200:, :] = 60  # road
    frame[:120, 40:600] = 150  # buildings
    return frame


def _noisy(frame: np.ndarray, rng: np.random.Generator, sigma: float = 3.0) -> np.ndarray:
    noise = rng.normal(0, sigma, frame.shape)
    return np.clip(frame.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def test_motion_gate_skips_noise_but_not_a_small_car() -> None:
    rng = np.random.default_rng(7)
    street = _street(rng)
    gate = MotionGate(GateSettings())
    still, thumb = gate.still(0.0, street)
    assert not still  # nothing analysed yet
    gate.analysed(0.0, street, thumb)
    for t in range(1, 6):  # sensor noise only
        assert gate.still(float(t), _noisy(street, rng))[0]
    car = street.copy()
    car[250:290, 300:360] = (30, 30, 200)  # a 60x40 car: 1 % of the picture
    assert not gate.still(6.0, _noisy(car, rng))[0]
    darker = (street * 0.75).astype(np.uint8)  # a cloud: everything changes, so it is looked at again
    assert not gate.still(7.0, darker)[0]
    assert not gate.still(31.0, street)[0]  # refresh_s (30 s) passed: analysed however still
    assert not gate.still(8.0, street[:, :320].copy())[0]  # another frame size: never compared


def test_motion_gate_watches_the_zones_surroundings_only() -> None:
    """Trees and traffic far from every zone do not wake the detector; whatever enters the zone
    crosses its surroundings first; with margin 1 the whole picture counts again."""
    rng = np.random.default_rng(5)
    street = _street(rng)
    road = [(0.0, 0.6), (0.5, 0.6), (0.5, 1.0), (0.0, 1.0)]  # the near lane, left half
    window = zones_window([road], margin=0.1)
    assert window is not None
    gate = MotionGate(GateSettings(), window)
    gate.analysed(0.0, street, None)
    far = street.copy()
    far[20:100, 420:620] = (40, 160, 40)  # a tree swaying on the far right, above the buildings
    far[130:180, 500:640] = (200, 200, 200)  # a van on the far side of the street
    assert gate.still(1.0, _noisy(far, rng))[0], "movement far from the zone is skipped"
    whole = MotionGate(GateSettings(), zones_window([road], margin=1.0))
    whole.analysed(0.0, street, None)
    assert not whole.still(1.0, far)[0], "margin 1: the whole picture is compared"
    entering = street.copy()
    entering[190:230, 330:390] = (30, 30, 200)  # a car coming up to the lane, beside it
    assert not gate.still(2.0, _noisy(entering, rng))[0], "what comes near the zone is analysed"
    parked = street.copy()
    parked[250:300, 100:200] = (30, 30, 200)  # in the lane
    assert not gate.still(3.0, _noisy(parked, rng))[0]
    darker = (street * 0.75).astype(np.uint8)
    assert not gate.still(4.0, darker)[0]  # a cloud over everything, the zone too
    assert zones_window([[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0)]], 0.1) is None  # a zone over everything: all of it
    assert zones_window([], 0.1) is None


def test_motion_gate_reference_is_the_last_analysed_frame() -> None:
    """A slow creep adds up: each step is small, but against the analysed reference it shows."""
    street = _street(np.random.default_rng(1))
    gate = MotionGate(GateSettings())
    gate.analysed(0.0, street, None)
    creeping = street.copy()
    skipped = 0
    for step in range(1, 40):
        creeping[250:290, 300 : 300 + 4 * step] = (30, 30, 200)  # a car 4 pixels further in each time
        still, thumb = gate.still(float(step), creeping)
        if not still:
            break
        skipped += 1
    assert 0 < skipped < 10


def test_motion_gate_takes_the_thumbnail_made_off_the_loop() -> None:
    """The media side hands each sample's thumbnail over (made in its decode thread): the gate
    decides on it, and one it cannot trust (another size) is replaced by its own."""
    rng = np.random.default_rng(5)
    street = _street(rng)
    car = street.copy()
    car[250:290, 300:360] = (30, 30, 200)
    gate = MotionGate(GateSettings())
    still, thumb = gate.still(0.0, street, thumbnail(street))
    assert not still and thumb is not None and thumb.shape == (THUMB_SIZE[1], THUMB_SIZE[0])
    gate.analysed(0.0, street, thumb)
    noisy = _noisy(street, rng)
    assert gate.still(1.0, noisy, thumbnail(noisy)) == (True, None)
    # the thumbnail it is given is what it looks at: the street's picture with the car's thumbnail moved
    assert gate.still(2.0, street, thumbnail(car))[0] is False
    # a thumbnail of another size is not compared: the gate makes its own (here: unchanged street)
    odd = cv2.resize(thumbnail(car), (16, 9), interpolation=cv2.INTER_AREA)
    assert gate.still(3.0, street, odd) == (True, None)
    still, own = gate.still(4.0, car, odd)
    assert not still and own is not None and np.array_equal(own, thumbnail(car))


def test_thumbnail_grey_first_matches_averaging_colour_first() -> None:
    """Averaging one grey channel instead of three colour ones (half the time) changes no pixel
    by more than one grey level, so the gate's pixel_delta means what it meant."""
    rng = np.random.default_rng(9)
    frame = _noisy(_street(rng), rng, sigma=25.0)
    frame[250:290, 300:360] = (30, 30, 200)
    colour_first = cv2.cvtColor(cv2.resize(frame, THUMB_SIZE, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2GRAY)
    diff = cv2.absdiff(thumbnail(frame), colour_first)
    assert diff.max() <= 1


def test_disabled_gate_never_skips() -> None:
    street = _street(np.random.default_rng(2))
    gate = MotionGate(GateSettings(enabled=False))
    gate.analysed(0.0, street, None)
    assert gate.still(1.0, street) == (False, None)


def test_missing_runtime_falls_back_to_cpu_with_a_warning(
    model_files: ModelFiles, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fusionhub.analytics.runtime")
    have = runtime.available_runtimes()
    assert "cpu" in have
    if "cuda" not in have:
        backend = runtime.load_backend(model_files.onnx, wanted=["cuda"], threads=1)
        assert backend.name == "onnxruntime/CPUExecutionProvider"
        assert "cuda (not installed here)" in caplog.text and "falling back to onnxruntime/CPU" in caplog.text
    caplog.clear()
    monkeypatch.setattr(runtime, "_openvino_installed", lambda: False)
    backend = runtime.load_backend(model_files.onnx, wanted=["openvino", "cpu"], threads=1)
    assert backend.name == "onnxruntime/CPUExecutionProvider"
    assert "openvino (not installed here)" in caplog.text


def test_cpu_runtime_asked_for_says_nothing(model_files: ModelFiles, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="fusionhub.analytics.runtime")
    assert runtime.load_backend(model_files.onnx, wanted=["cpu"], threads=1).dynamic
    assert caplog.text == ""


@pytest.mark.skipif("openvino" not in runtime.available_runtimes(), reason="openvino is not installed")
@pytest.mark.parametrize("precision", ["auto", "f32"])
def test_openvino_finds_what_onnxruntime_finds(model_files: ModelFiles, bus_jpg: np.ndarray, precision: str) -> None:
    ort = Detector(model_files.onnx, threads=1, providers=["cpu"])
    ov = Detector(model_files.onnx, threads=1, providers=["openvino"], precision=precision)
    assert ov.providers[0].startswith("openvino/CPU/")
    for size in (640, 320):
        a, _ = ort.detect_timed(bus_jpg, size)
        b, t = ov.detect_timed(bus_jpg, size)
        bus_a = next(d for d in a if d.label == "bus")
        bus_b = next(d for d in b if d.label == "bus")
        assert abs(bus_a.confidence - bus_b.confidence) < 0.05
        assert max(abs(bus_a.x1 - bus_b.x1), abs(bus_a.y2 - bus_b.y2)) < 12
        assert t.inference_cpu_ms > 0


def test_dynamic_model_runs_at_a_camera_size_with_a_rectangular_input(model_files: ModelFiles, bus_jpg: np.ndarray) -> None:
    det = Detector(model_files.onnx, threads=1)
    assert det.dynamic
    dets, _ = det.detect_timed(bus_jpg, 320)
    bus = next(d for d in dets if d.label == "bus")
    assert bus.x1 < 40 and bus.x2 > 770  # boxes in the frame's own pixels, whatever the input size
    with pytest.raises(Exception, match="multiple of 32"):
        det.detect_timed(bus_jpg, 300)


# auto times the two CPU runtimes only where both are installed and there is no GPU
both_cpu_runtimes = pytest.mark.skipif(
    "openvino" not in runtime.available_runtimes() or "cuda" in runtime.available_runtimes(),
    reason="needs OpenVINO installed and no GPU",
)


def _auto(model_files: ModelFiles, caplog: pytest.LogCaptureFixture) -> runtime.Backend:
    caplog.set_level(logging.INFO, logger="fusionhub.analytics.runtime")
    return runtime.load_backend(model_files.onnx, wanted=["auto"], threads=1, imgsz=320)


@both_cpu_runtimes
def test_auto_runtime_times_both_cpu_runtimes_and_keeps_the_cheaper(
    model_files: ModelFiles, caplog: pytest.LogCaptureFixture, bus_jpg: np.ndarray
) -> None:
    backend = _auto(model_files, caplog)
    line = next(r.getMessage() for r in caplog.records if "auto: CPU per frame" in r.getMessage())
    # "...: CPU per frame at 192x320: onnxruntime/CPUExecutionProvider 16.1 ms, openvino/CPU/f32 22.5 ms; using ..."
    assert "at 192x320" in line  # a 16:9 camera frame's input at 320, as the hub sends it
    figures = re.findall(r"(\S+) ([\d.]+) ms", line.split("; using ")[0])
    costs = {name: float(ms) for name, ms in figures}
    assert len(costs) == 2 and all(c > 0 for c in costs.values()), line
    assert backend.name == min(costs, key=costs.__getitem__)
    assert line.endswith(f"using {backend.name}")
    # and a detector asking for auto gets one of the two (timed again: a close race may go either way), working
    det = Detector(model_files.onnx, threads=1, providers=["auto"])
    assert det.providers[0] in costs
    assert any(d.label == "bus" for d in det.detect_timed(bus_jpg, 320)[0])


@pytest.mark.skipif("cuda" in runtime.available_runtimes(), reason="auto takes CUDA where it works")
@pytest.mark.parametrize(("ort_ms", "ov_ms", "kept"), [(5.9, 7.5, "onnxruntime"), (5.9, 4.5, "openvino")])
def test_auto_runtime_follows_the_timing(
    model_files: ModelFiles, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    ort_ms: float, ov_ms: float, kept: str,
) -> None:
    """Whichever the timing favours is kept, either way round."""
    if "openvino" not in runtime.available_runtimes():
        pytest.skip("openvino is not installed")
    monkeypatch.setattr(runtime, "cpu_ms_per_frame", lambda backends, imgsz: [ort_ms, ov_ms])
    assert _auto(model_files, caplog).name.startswith(kept)


@pytest.mark.skipif("cuda" in runtime.available_runtimes(), reason="auto takes CUDA where it works")
def test_auto_runtime_without_openvino_is_onnxruntime_untimed(
    model_files: ModelFiles, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runtime, "_openvino_installed", lambda: False)
    monkeypatch.setattr(runtime, "cpu_ms_per_frame", lambda backends, imgsz: pytest.fail("nothing to compare"))
    assert _auto(model_files, caplog).name == "onnxruntime/CPUExecutionProvider"
    assert "only onnxruntime/CPUExecutionProvider is installed" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@both_cpu_runtimes
def test_auto_runtime_passes_over_an_openvino_that_cannot_run_the_model(
    model_files: ModelFiles, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(self: runtime.OpenVinoBackend, blob: np.ndarray) -> np.ndarray:
        raise runtime.DetectorError(f"OpenVINO cannot compile the model for input {blob.shape}")

    monkeypatch.setattr(runtime.OpenVinoBackend, "run", refuse)
    assert _auto(model_files, caplog).name == "onnxruntime/CPUExecutionProvider"
    assert "auto: OpenVINO cannot run this model (OpenVINO cannot compile the model for input (1, 3, 192, 320))" in caplog.text


@pytest.mark.skipif("cuda" in runtime.available_runtimes(), reason="auto takes CUDA where it works")
def test_auto_runtime_is_timed_once_per_pool_and_shared(
    model_files: ModelFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The pool's first worker times and writes its choice; the next ones take it without timing."""
    if "openvino" not in runtime.available_runtimes():
        pytest.skip("openvino is not installed")
    caplog.set_level(logging.INFO, logger="fusionhub.analytics.runtime")
    shared = tmp_path / "run" / "auto.json"

    def auto(threads: int = 1) -> runtime.Backend:
        return runtime.load_backend(model_files.onnx, wanted=["auto"], threads=threads, imgsz=320, shared_choice=shared)

    monkeypatch.setattr(runtime, "cpu_ms_per_frame", lambda backends, imgsz: [5.9, 4.5])
    assert auto().name.startswith("openvino")
    assert json.loads(shared.read_text())["runtime"] == "openvino"
    # the next workers would time a different winner (a busy moment): they do not time, they follow
    monkeypatch.setattr(runtime, "cpu_ms_per_frame", lambda backends, imgsz: pytest.fail("timed again"))
    assert auto().name.startswith("openvino") and auto().name.startswith("openvino")
    assert caplog.text.count("as the pool's first worker timed it") == 2
    # another model set-up (here: two threads) is a different question, timed afresh
    monkeypatch.setattr(runtime, "cpu_ms_per_frame", lambda backends, imgsz: [5.9, 7.5])
    assert auto(threads=2).name == "onnxruntime/CPUExecutionProvider"
    # a choice file that is not one (damaged, another release's) is timed over, not trusted
    shared.write_text("{not json")
    assert auto(threads=2).name == "onnxruntime/CPUExecutionProvider"
    assert json.loads(shared.read_text())["runtime"] == "cpu"


def test_a_worker_stuck_timing_holds_the_others_up_only_so_long(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    shared = tmp_path / "auto.json"
    with runtime._exclusive(shared):  # the pool's first worker, stuck
        started = time.monotonic()
        with runtime._exclusive(shared, wait_s=0.3):  # the next one gives up waiting and goes on
            waited = time.monotonic() - started
    assert waited >= 0.3  # it waited its while, then went on (a stuck holder no longer blocks it)
    assert "another worker has been timing" in caplog.text
