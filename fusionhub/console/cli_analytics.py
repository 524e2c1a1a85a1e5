"""`fusionhub analytics export-dataset` (reviewed flags as a training dataset),
`fusionhub models import` (a fine-tuned model in, loaded by config) and `fusionhub models quantize`
(its INT8 copy)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fusionhub.console.config import HubConfig, load_config


def parse_since(text: str | None, timezone: str) -> float | None:
    """`--since`: epoch seconds, or an ISO date/time in the hub's time zone (e.g. 2025-03-01)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--since {text!r}: use 2025-03-01, 2025-03-01T08:00 or epoch seconds") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(timezone))
    return when.timestamp()


async def _samples(config: HubConfig, since: float | None, camera_id: int | None) -> list[dict[str, Any]]:
    from fusionhub.dispatch.db import create_engine, upgrade
    from fusionhub.dispatch.service import DispatchService

    url = config.resolved_database_url()
    await upgrade(url)
    engine = create_engine(url)
    try:
        service = DispatchService(engine, data_dir=config.data_dir)
        return await service.review_samples(since=since, camera_id=camera_id)
    finally:
        await engine.dispose()


def cmd_export_dataset(args: argparse.Namespace) -> int:
    from fusionhub.analytics.dataset import DatasetError, export_dataset

    config = load_config(args.config, data_dir=args.data_dir)
    try:
        since = parse_since(args.since, config.timezone)
    except argparse.ArgumentTypeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    samples = asyncio.run(_samples(config, since, args.camera))
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    try:
        report = export_dataset(config.data_dir, samples, args.out, val_fraction=args.val_fraction, classes=classes)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"dataset written to {report.out}: {report.images['train']} training and {report.images['val']} "
        f"validation pictures ({report.positives} confirmed, {report.negatives} dismissed as background); "
        f"classes {', '.join(report.classes)}"
    )
    if report.skipped:
        print(f"left out: {json.dumps(dict(report.skipped))}")
    print(f"train with: yolo detect train data={report.out / 'data.yaml'} model=yolo26n.pt")
    return 0


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def add_parser(sub: Any) -> None:
    """Add the `analytics` command group to the CLI's subparsers."""
    group = sub.add_parser("analytics", help="learning from review").add_subparsers(
        dest="analytics_command", required=True
    )
    export = group.add_parser(
        "export-dataset", help="write confirmed/dismissed flags as an Ultralytics (YOLO) dataset"
    )
    export.add_argument("--out", type=Path, required=True, help="a new (or empty) directory")
    export.add_argument("--since", default=None, help="only flags raised since: 2025-03-01 (hub time zone) or epoch s")
    export.add_argument("--camera", type=int, default=None, help="only this camera id")
    export.add_argument("--val-fraction", type=_fraction, default=0.2, help="share of pictures for validation")
    export.add_argument("--classes", default=None, help="fixed class list, comma-separated (default: those found)")
    export.add_argument("--config", type=Path, default=None)
    export.add_argument("--data-dir", type=Path, default=None)
    export.set_defaults(func=cmd_export_dataset)


def cmd_models_import(args: argparse.Namespace) -> int:
    from fusionhub.analytics.errors import ModelExportError
    from fusionhub.analytics.modelimport import import_model

    config = load_config(args.config, data_dir=args.data_dir)
    try:
        files = import_model(args.weights, config.data_dir, args.name, imgsz=args.imgsz, progress=print)
    except ModelExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("load it with, in the hub's config:")
    print(f'[analytics]\nmodel = "{files.name}"\nimgsz = {files.imgsz}')
    print(f"# its classes: {', '.join(files.classes)}; map them in [analytics.rules.classes] (docs/ANALYTICS.md)")
    return 0


def cmd_models_quantize(args: argparse.Namespace) -> int:
    from fusionhub.analytics.errors import AnalyticsError
    from fusionhub.analytics.quantize import collect_pictures, default_pictures, quantize_model

    config = load_config(args.config, data_dir=args.data_dir)
    onnx = config.analytics.resolved_model_path(config.data_dir, int8=False)
    try:
        if args.images:
            pictures, sources = collect_pictures(args.images), [str(p) for p in args.images]
        else:
            pictures, sources = default_pictures(config.data_dir)
        print(f"calibration pictures: {len(pictures)} ({'; '.join(sources)})", flush=True)
        report = quantize_model(
            onnx, pictures, conf=config.analytics.conf, min_agreement=args.min_agreement, sources=sources,
            progress=lambda m: print(m, flush=True),
        )
    except AnalyticsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if report.calibrated_on < 50:
        print(f"note: calibrated on {report.calibrated_on} pictures; a few hundred frames from your own cameras "
              "(--images DIR, or flags the hub has raised) calibrate it better")
    print('load it with, in the hub\'s config:\n[analytics]\nprecision = "int8"')
    print(f"# remote workers need {report.onnx.name} and its .json in their model directory too")
    return 0


def add_models_import(models: Any) -> None:
    """Add `models import` to the CLI's `models` command group."""
    imp = models.add_parser("import", help="export fine-tuned Ultralytics weights for the hub to load by config")
    imp.add_argument("weights", type=Path, help="the .pt file training wrote (e.g. runs/detect/train/weights/best.pt)")
    imp.add_argument("--name", required=True, help="the model's name: analytics.model in the config")
    imp.add_argument("--imgsz", type=int, default=640, help="input size in pixels (multiple of 32)")
    imp.add_argument("--config", type=Path, default=None)
    imp.add_argument("--data-dir", type=Path, default=None)
    imp.set_defaults(func=cmd_models_import)

    quant = models.add_parser("quantize", help="write an INT8 copy of the model, calibrated on your pictures and "
                              "checked against the float model")
    quant.add_argument("--images", type=Path, nargs="+", default=None,
                       help="pictures or directories of them (default: frames of the hub's own flags, topped up "
                       "with the photos bundled with ultralytics)")
    quant.add_argument("--min-agreement", type=_fraction, default=0.9,
                       help="least share of the float model's objects the copy must find, and of its own objects "
                       "the float model must confirm, on held-out pictures (default 0.9)")
    quant.add_argument("--config", type=Path, default=None)
    quant.add_argument("--data-dir", type=Path, default=None)
    quant.set_defaults(func=cmd_models_quantize)
