"""The `fusionhub` command: demo, serve, worker, db upgrade, user add, models fetch|import|quantize, analytics export-dataset."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

from fusionhub.console import cli_analytics
from fusionhub.console.config import ConfigError, HubConfig, load_config
from fusionhub.memory import keep_freed_memory

log = logging.getLogger("fusionhub")


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("aioice", "aiortc", "asyncio", "aiohttp.access", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def run_hub(config: HubConfig, *, banner: str = "") -> None:
    """Serve until SIGINT/SIGTERM, then shut down cleanly."""
    from fusionhub.console.app import build_app

    keep_freed_memory()  # before the first camera: frames and packet rings reuse their pages
    app = build_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.http.host, config.http.port)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else config.http.port
    url = f"http://{config.http.host}:{port}/"
    print(f"FusionHub console: {url}   field page: {url}field", flush=True)
    if banner:
        print(banner, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        print("FusionHub stopping…", flush=True)
        await runner.cleanup()


def cmd_demo(args: argparse.Namespace) -> int:
    from fusionhub.analytics.models import fetch_model
    from fusionhub.console.demo import prepare_demo

    http = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    config = load_config(args.config, data_dir=args.data_dir, http=http or None)
    if config.http.host in ("127.0.0.1", "localhost") and config.media.ice_host_addresses is None:
        # a hub that only listens on loopback offers WebRTC on loopback too
        config.media.ice_host_addresses = ["127.0.0.1"]
    fetch_model(config.data_dir, imgsz=config.analytics.imgsz, progress=lambda m: print(m, flush=True))
    logins = asyncio.run(prepare_demo(config))
    lines = ["Demo logins (user / password):"]
    lines += [f"  {role:<10} {user:<10} {pw}" for role, (user, pw) in _login_rows(logins)]
    lines.append("The demo camera shows an empty road; a bus parks in the road zone and is flagged after 10 s.")
    asyncio.run(run_hub(config, banner="\n".join(lines)))
    return 0


def _login_rows(logins: dict[str, str]) -> list[tuple[str, tuple[str, str]]]:
    roles = {"admin": "admin", "commander": "commander", "duty": "duty", "field1": "field"}
    return [(roles[u], (u, pw)) for u, pw in logins.items()]


def cmd_serve(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    asyncio.run(run_hub(config))
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from fusionhub.analytics.worker import run_worker

    providers = [r.strip() for r in args.runtime.split(",") if r.strip()]
    return int(
        run_worker(
            args.connect, model_path=args.model, threads=args.threads, providers=providers,
            precision=args.precision, processes=args.processes,
        )
        or 0
    )


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from fusionhub.dispatch.db import upgrade

    config = load_config(args.config)
    asyncio.run(upgrade(config.resolved_database_url()))
    print("database is at the latest schema")
    return 0


def cmd_user_add(args: argparse.Namespace) -> int:
    from fusionhub.dispatch.db import create_engine, upgrade
    from fusionhub.dispatch.service import DispatchService

    config = load_config(args.config)
    password = os.environ.get("FUSIONHUB_PASSWORD") or getpass.getpass("password: ")
    if len(password) < 8:
        print("error: the password needs at least 8 characters", file=sys.stderr)
        return 2

    async def add() -> None:
        url = config.resolved_database_url()
        await upgrade(url)
        engine = create_engine(url)
        try:
            service = DispatchService(engine, data_dir=config.data_dir)
            await service.create_user(
                args.username, password, args.role, args.region, args.display_name or args.username,
                team_id=args.team_id,
            )
        finally:
            await engine.dispose()

    asyncio.run(add())
    print(f"user {args.username} added ({args.role}, region {args.region})")
    return 0


def cmd_models_fetch(args: argparse.Namespace) -> int:
    from fusionhub.analytics.models import fetch_model

    config = load_config(args.config, data_dir=args.data_dir)
    files = fetch_model(config.data_dir, imgsz=config.analytics.imgsz, progress=lambda m: print(m, flush=True))
    print(f"model ready: {files}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fusionhub", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run everything on embedded defaults with a demo camera")
    demo.add_argument("--config", type=Path, default=None, help="optional TOML config")
    demo.add_argument("--data-dir", type=Path, default=None, help="data directory (default ./var)")
    demo.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=None, help="port (default 8080)")
    demo.set_defaults(func=cmd_demo)

    serve = sub.add_parser("serve", help="run a hub from a config file")
    serve.add_argument("--config", type=Path, required=True)
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="an analytics worker for a (remote) hub")
    worker.add_argument("--connect", required=True, help="the hub's worker endpoint, e.g. tcp://hub:5560")
    worker.add_argument("--model", type=Path, default=None, help="ONNX model (default: the fetched one)")
    worker.add_argument("--threads", type=int, default=2, help="inference threads per process")
    worker.add_argument("--processes", type=int, default=1, choices=range(1, 65), metavar="N",
                        help="worker processes (each replaced when it dies); default 1")
    worker.add_argument("--runtime", default="cpu",
                        help="inference runtimes in order of preference, e.g. openvino,cpu or cuda,cpu; auto: CUDA where "
                        "usable, else the cheaper of cpu and openvino on this machine, timed at start by the pool's first process "
                        "and shared by the others (default cpu)")
    worker.add_argument("--precision", choices=("auto", "f32"), default="auto",
                        help="OpenVINO arithmetic: auto (bfloat16 where the CPU has it) or f32; whether the model's "
                        "INT8 copy runs instead, the hub decides (analytics.precision)")
    worker.set_defaults(func=cmd_worker)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(dest="db_command", required=True)
    up = db.add_parser("upgrade", help="migrate the database to the latest schema")
    up.add_argument("--config", type=Path, default=None)
    up.set_defaults(func=cmd_db_upgrade)

    user = sub.add_parser("user", help="users").add_subparsers(dest="user_command", required=True)
    add = user.add_parser("add", help="add a user (password from FUSIONHUB_PASSWORD or a prompt)")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=["admin", "commander", "duty", "field"])
    add.add_argument("--region", required=True)
    add.add_argument("--display-name", default=None)
    add.add_argument("--team-id", type=int, default=None)
    add.add_argument("--config", type=Path, default=None)
    add.set_defaults(func=cmd_user_add)

    models = sub.add_parser("models", help="detection models").add_subparsers(dest="models_command", required=True)
    fetch = models.add_parser("fetch", help="get the pretrained weights and export the runtime model")
    fetch.add_argument("--config", type=Path, default=None)
    fetch.add_argument("--data-dir", type=Path, default=None)
    fetch.set_defaults(func=cmd_models_fetch)
    cli_analytics.add_models_import(models)

    cli_analytics.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    _logging(args.verbose)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
