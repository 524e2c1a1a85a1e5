"""Make `import torchvision` work where its compiled ops do not match the installed torch.

Here the CPU build of torch 2.13 sits beside a torchvision whose C++ extension fails to load, and
torchvision's import then dies registering fake kernels for `torchvision::nms`/`qnms`, ops that
were never defined. Ultralytics imports torchvision for training and validation (data
augmentation, NMS), so `YOLO(...).train/val` cannot start. This module defines the two ops with a
pure-torch CPU NMS before torchvision is imported. Import it first, in the process that trains
(the tests run that in a subprocess; a city fine-tuning on a machine with a matching torchvision
needs none of this). A no-op when torchvision imports fine on its own.
"""

from __future__ import annotations

import importlib.util
import sys


def _nms(boxes, scores, iou_threshold):  # type: ignore[no-untyped-def]
    import torch

    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    order = scores.argsort(descending=True)
    suppressed = torch.zeros(boxes.shape[0], dtype=torch.bool, device=boxes.device)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        w = (torch.minimum(x2[i], x2) - torch.maximum(x1[i], x1)).clamp(min=0)
        h = (torch.minimum(y2[i], y2) - torch.maximum(y1[i], y1)).clamp(min=0)
        inter = w * h
        suppressed |= inter / (areas[i] + areas - inter + 1e-9) > iou_threshold
    return torch.tensor(keep, dtype=torch.int64, device=boxes.device)


def install() -> bool:
    """Define the missing ops if torchvision cannot import by itself; True when the shim was needed."""
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        import torchvision  # noqa: F401
        return False  # a torchvision that matches its torch: nothing to do
    except RuntimeError:
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]  # the half-imported package is imported again below
    import torch

    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.impl("nms", _nms, "CPU")
    _LIBS.append(lib)  # a Library unregisters its ops when collected
    import torchvision.extension

    torchvision.extension._has_ops = lambda: True  # its Python NMS wrapper checks this first
    return True


_LIBS: list[object] = []
