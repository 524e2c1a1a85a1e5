"""Analytics configuration: the hub side (AnalyticsConfig) and one worker process (WorkerConfig)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fusionhub.analytics.ruleconfig import RulesConfig

Provider = Literal["cpu", "cuda", "openvino", "auto"]
Precision = Literal["auto", "f32"]
HubPrecision = Literal["auto", "f32", "int8"]
INT8_SUFFIX = "-int8"


def model_file(name: str, imgsz: int, *, int8: bool = False) -> str:
    """The file name of a model in a model directory: `<name>-<imgsz>.onnx`, `-int8` for its INT8 copy."""
    return f"{name}-{imgsz}{INT8_SUFFIX if int8 else ''}.onnx"


def _cpu_only() -> list[Provider]:
    return ["cpu"]


class AnalyticsConfig(BaseModel):
    """Detection model, worker pool and rule tuning of the analytics hub."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(
        default="yolo26n",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
        description="model name; its file is <model_dir>/<model>-<imgsz>.onnx (remote workers are told this name)",
    )
    model_dir: Path | None = Field(
        default=None, description="directory holding fetched models; default <data_dir>/models"
    )
    model_path: Path | None = Field(
        default=None, description="explicit ONNX file for local workers; overrides model_dir (its sidecar must match)"
    )
    imgsz: int = Field(default=640, ge=160, le=1280, multiple_of=32, description="model input size in pixels (square)")
    conf: float = Field(default=0.35, ge=0.05, le=0.95, description="minimum detection confidence")
    providers: list[Provider] = Field(
        default_factory=_cpu_only,
        min_length=1,
        max_length=3,
        description="inference runtimes in order of preference: cpu (ONNX Runtime), cuda (ONNX Runtime on an "
        "NVIDIA GPU), openvino (the openvino package), auto (CUDA where usable, else whichever of cpu and openvino "
        "costs less CPU per frame here, timed once per hub start by the first local worker, the others take its "
        "choice); a missing one is skipped with a warning, CPU is the "
        "last resort",
    )
    precision: HubPrecision = Field(
        default="auto",
        description="OpenVINO arithmetic: auto lets it use bfloat16 where the CPU has it (about 1.7x faster, "
        "scores within a few points); f32 keeps full precision (ONNX Runtime always runs the float model in f32). "
        "int8: every worker, local or remote, loads <model>-<imgsz>-int8.onnx, the copy `fusionhub models "
        "quantize` writes and checks against the float model",
    )
    local_workers: int = Field(default=1, ge=0, le=16, description="worker processes the hub starts itself (0: remote only)")
    worker_threads: int = Field(default=2, ge=1, le=64, description="inference threads per local worker")
    bind: str | None = Field(
        default=None,
        pattern=r"^(ipc|tcp)://\S+$",
        description="ZeroMQ ROUTER endpoint workers connect to; default ipc://<data_dir>/run/analytics.sock; "
        "tcp://0.0.0.0:5560 lets remote workers in",
    )
    heartbeat_s: float = Field(
        default=1.0, ge=0.1, le=30.0,
        description="how often an idle worker says it is alive, and the hub's transport heartbeat to every worker",
    )
    worker_silence_s: float = Field(
        default=6.0, ge=0.5, le=300.0,
        description="a worker silent this long is taken for dead and forgotten; a busy one too, once its "
        "connection stops answering the hub's transport heartbeats (every heartbeat_s) for this long",
    )
    job_timeout_s: float = Field(
        default=10.0, ge=0.5, le=300.0, description="a frame job not answered in this time is given up"
    )
    jobs_per_worker: int = Field(
        default=2, ge=1, le=8,
        description="batches a worker holds at once (jobs_per_worker x batch_max frames): the next waits in its "
        "queue while it runs one, so it does not sit idle while the hub sends it more (1: one at a time)",
    )
    batch_max: int = Field(
        default=4, ge=1, le=16,
        description="frames a worker runs through the model at once when that many are waiting for it (a batch "
        "never waits to fill): on OpenVINO four frames cost about 40 % less CPU each than one at a time, "
        "on ONNX Runtime's CPU provider about the same; 1: one at a time",
    )
    restart_backoff_s: float = Field(
        default=1.0, ge=0.0, le=60.0, description="pause before a dead local worker is replaced"
    )
    track_iou: float = Field(
        default=0.3, ge=0.05, le=0.95, description="least IoU for a detection to continue a track"
    )
    track_grace_s: float = Field(
        default=3.5,
        ge=0.0,
        le=600.0,
        description="a vehicle missed for less than this keeps its track and dwell (samples are ~1 s apart)",
    )
    load_window_s: float = Field(
        default=60.0, ge=10.0, le=3600.0,
        description="the span over which the hub judges whether it keeps up (status page and log): a hub that "
        "superseded 10 % of its samples or analysed them more than 2 s late over this span is behind",
    )
    evidence_quality: int = Field(default=85, ge=30, le=100, description="JPEG quality of evidence frames")
    rules: RulesConfig = Field(
        default_factory=RulesConfig,
        description="class map (which model classes each rule watches) and rule tuning; see docs/ANALYTICS.md",
    )
    job_timeout_min_s: float = Field(
        default=2.0,
        ge=0.2,
        le=300.0,
        description="a worker that answered a few jobs is given up on after 10x its usual round trip, but "
        "never sooner than this (a remote worker killed mid-job holds its camera this long at most)",
    )
    motion_gate: bool = Field(
        default=True, description="skip inference for a frame whose thumbnail barely changed since the last analysed one"
    )
    motion_pixel_delta: int = Field(
        default=12, ge=1, le=255, description="grey levels a 64x36 thumbnail pixel must change by to count as moved"
    )
    motion_min_changed: float = Field(
        default=0.003,
        ge=0.0,
        le=1.0,
        description="share of thumbnail pixels that must move for a frame to be analysed (0.003: about 7 pixels)",
    )
    motion_zone_margin: float = Field(
        default=0.1, ge=0.0, le=1.0,
        description="the motion gate compares only the thumbnail around a camera's zones: their box widened by this "
        "share of the picture on each side and twice that above (so movement far from every zone, trees or "
        "the sky, does not cost an inference); 1: the whole picture",
    )
    motion_refresh_s: float = Field(
        default=30.0, ge=1.0, le=3600.0, description="analyse a camera at least this often, however still its picture"
    )

    def resolved_model_path(self, data_dir: Path, *, int8: bool | None = None) -> Path:
        """The ONNX file local workers load: the INT8 copy with precision = "int8" (or `int8` given)."""
        if self.model_path is not None:
            return self.model_path
        int8 = self.precision == "int8" if int8 is None else int8
        return (self.model_dir or data_dir / "models") / model_file(self.model, self.imgsz, int8=int8)

    def resolved_bind(self, data_dir: Path) -> str:
        """The ROUTER endpoint, defaulting to an ipc socket in <data_dir>/run."""
        if self.bind is not None:
            return self.bind
        return f"ipc://{(data_dir / 'run' / 'analytics.sock').resolve()}"


class CameraAnalysis(BaseModel):
    """One camera's analytics settings, from its record (the hub's defaults where unset)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    imgsz: int | None = Field(
        default=None,
        ge=160,
        le=1280,
        multiple_of=32,
        description="detector input size for this camera (320 suits near, large objects; 640 far ones); "
        "None: the hub's imgsz. Needs a dynamic-shape model (what `fusionhub models fetch` exports)",
    )
    motion_gate: bool = Field(default=True, description="skip unchanged frames of this camera (if the hub's gate is on)")


class WorkerConfig(BaseModel):
    """One worker process: where the hub is and which model file to use."""

    model_config = ConfigDict(extra="forbid")

    connect: str = Field(pattern=r"^(ipc|tcp)://\S+$", description="the hub's ROUTER endpoint")
    model_path: Path | None = Field(
        default=None, description="ONNX file; None: <model_dir>/<name>-<imgsz>.onnx as named by the hub"
    )
    model_dir: Path = Field(default=Path("var/models"), description="where to look for the model the hub names")
    threads: int = Field(default=2, ge=1, le=64, description="ONNX Runtime intra-op threads")
    providers: list[Provider] = Field(default_factory=_cpu_only, min_length=1, max_length=3,
                                      description="inference runtimes in order of preference (cpu, cuda, openvino, auto)")
    precision: Precision = Field(
        default="auto",
        description="OpenVINO arithmetic for a float model: auto (bfloat16 where fast) or f32 (the hub decides "
        "whether its INT8 copy is loaded instead)",
    )
    heartbeat_s: float = Field(default=1.0, ge=0.1, le=30.0, description="idle heartbeat interval")
    auto_choice: Path | None = Field(
        default=None,
        description="a file the workers of one pool share: with the `auto` runtime, the first one times the "
        "runtimes and writes its choice there, the others take it",
    )
    hub_silence_s: float = Field(
        default=10.0, ge=0.5, le=600.0, description="no word from the hub this long: say hello again (hub restarted)"
    )
    name: str = Field(default="worker", max_length=64, description="name shown in the hub's logs")
