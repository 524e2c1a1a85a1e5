"""The hub ↔ worker ZeroMQ protocol (ROUTER in the hub, DEALER in each worker).

Every message is multipart: a command frame, then a JSON frame, then (JOB only) the raw pixels.

    worker → hub  HELLO   {pid, host, name}              I am here, tell me the model
    hub → worker  CONFIG  {model, imgsz, conf, int8, batch}  load this model (by name and input size; int8: its
                                                     INT8 copy); run up to `batch` waiting frames at once
    worker → hub  READY   {model, imgsz, providers, dynamic, int8, batch}  give me frames (batch: the most it
                                                     runs at once, 1 where the model's batch size is fixed)
    worker → hub  FAIL    {reason}                       cannot serve this hub (then exits)
    hub → worker  JOB     {job_id, camera_id, ts, shape, dtype[, imgsz]} + BGR bytes
    worker → hub  RESULT  {job_id, detections, timings}  (also means: room for another one; timings.batch:
                                                     how many frames went through the model with this one)
    worker → hub  ERROR   {job_id, reason}               this frame failed; ready for the next one
    worker → hub  PING    {}                             idle heartbeat; hub answers PONG
    hub → worker  RESET   {}                             I do not know you (hub restarted): say HELLO
    worker → hub  BYE     {}                             leaving

The hub sends a worker up to `analytics.jobs_per_worker` x batch JOBs before their answers: the next
ones wait in the worker's socket while it runs some, so it never idles on the hub's round trip. A
worker takes the JOBs already waiting, up to its batch (it never waits for more), runs frames of
the same input shape through the model together, and answers each JOB in the order it came. A
hub or worker of an older release leaves `batch` out: 1.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from fusionhub.analytics.errors import WorkerProtocolError

HELLO = b"HELLO"
CONFIG = b"CONFIG"
READY = b"READY"
FAIL = b"FAIL"
JOB = b"JOB"
RESULT = b"RESULT"
ERROR = b"ERROR"
PING = b"PING"
PONG = b"PONG"
RESET = b"RESET"
BYE = b"BYE"

MAX_BATCH = 16  # the most frames a worker runs through the model at once, whatever a hub asks
MAX_FRAME_PIXELS = 4096 * 4096  # a sampled frame is small; anything bigger is a bug or an attack


def dump(body: dict[str, Any]) -> bytes:
    """JSON frame of a message."""
    return json.dumps(body, separators=(",", ":")).encode()


def load(frame: bytes | memoryview) -> dict[str, Any]:
    """Parse a JSON frame; raises WorkerProtocolError on anything but a JSON object."""
    try:
        body = json.loads(bytes(frame))
    except ValueError as exc:
        raise WorkerProtocolError(f"bad JSON frame: {exc}") from exc
    if not isinstance(body, dict):
        raise WorkerProtocolError("JSON frame is not an object")
    return body


def job_header(job_id: int, camera_id: int, ts: float, frame: np.ndarray, *, imgsz: int | None = None) -> bytes:
    """The JSON header of a frame job; `imgsz` asks for another input size than the model's default."""
    body: dict[str, Any] = {"job_id": job_id, "camera_id": camera_id, "ts": ts, "shape": list(frame.shape), "dtype": str(frame.dtype)}
    if imgsz is not None:
        body["imgsz"] = imgsz
    return dump(body)


def frame_from(header: dict[str, Any], pixels: bytes | memoryview) -> np.ndarray:
    """The BGR frame a JOB carries, checked against its header (no copy)."""
    try:
        shape = tuple(int(n) for n in header["shape"])
        dtype = np.dtype(str(header["dtype"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise WorkerProtocolError(f"bad job header: {exc}") from exc
    if dtype != np.uint8 or len(shape) != 3 or shape[2] != 3 or not 0 < shape[0] * shape[1] <= MAX_FRAME_PIXELS:
        raise WorkerProtocolError(f"unsupported frame {shape} {dtype}")
    if len(pixels) != shape[0] * shape[1] * 3:
        raise WorkerProtocolError(f"frame has {len(pixels)} bytes, header says {shape}")
    return np.frombuffer(pixels, dtype=np.uint8).reshape(shape)


def batch_size(value: Any) -> int:
    """A batch size from a message (CONFIG, READY, RESULT's timings), within 1..MAX_BATCH; 1 when it is
    missing (an older release) or not a whole number."""
    return min(max(value, 1), MAX_BATCH) if isinstance(value, int) and not isinstance(value, bool) else 1
