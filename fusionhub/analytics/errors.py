"""Errors of the analytics package: one base class, narrow subclasses."""

from __future__ import annotations


class AnalyticsError(Exception):
    """Base class of every error the analytics package raises on purpose."""


class ModelFetchError(AnalyticsError):
    """The model weights could not be obtained from any source."""


class ModelIntegrityError(ModelFetchError):
    """A downloaded or cached weights file does not have the expected SHA-256."""


class ModelExportError(AnalyticsError):
    """Exporting the weights to ONNX failed."""


class ModelNotFoundError(AnalyticsError):
    """The ONNX model (or its sidecar) is missing or unreadable; run `fusionhub models fetch`."""


class ModelMismatchError(AnalyticsError):
    """A worker's model is not the one the hub expects (name or input size)."""


class DetectorError(AnalyticsError):
    """The detector could not be built or could not run on a frame."""


class EvidenceError(AnalyticsError):
    """The evidence picture could not be encoded or written."""


class ZoneError(AnalyticsError, ValueError):
    """A zone definition is unusable (polygon out of range, degenerate, too few points)."""


class WorkerProtocolError(AnalyticsError):
    """A peer sent a ZeroMQ message this side does not understand."""
