"""The `signoff` command: serve, worker, migrate, diagrams."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import uvloop
from prometheus_client import start_http_server

from api.app import create_app
from api.diagrams import write_all
from api.metrics import Metrics
from api.security import RedactTokens
from api.server import server
from engine.database import Database
from engine.migrate import upgrade
from engine.runtime import Runtime
from engine.settings import Settings
from machines.registry import build_registry

log = logging.getLogger("signoff")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="signoff", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="HTTP API with an embedded worker")
    serve.add_argument("--host", help="bind address (SIGNOFF_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (SIGNOFF_PORT, default 8000)")
    serve.add_argument("--workers", type=int, help="embedded workers; 0 serves the API only")

    worker = commands.add_parser("worker", help="run jobs and timers only (scale-out)")
    worker.add_argument("--concurrency", type=int, help="jobs run at once (default 8)")
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="serve Prometheus metrics on this port (default: none)",
    )

    commands.add_parser("migrate", help="create or upgrade the database schema")

    diagrams = commands.add_parser("diagrams", help="write every chart as .svg, .dot and .mmd")
    diagrams.add_argument("--out", default="diagrams", help="directory (default: diagrams)")

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "serve":
            settings = Settings.from_env(host=args.host, port=args.port, workers=args.workers)
            return _serve(settings)
        if args.command == "worker":
            settings = Settings.from_env(concurrency=args.concurrency, workers=1)
            return uvloop.run(_worker(settings, args.metrics_port))
        if args.command == "diagrams":
            for path in write_all(build_registry(), Path(args.out)):
                print(path)
            return 0
        return uvloop.run(_migrate(Settings.from_env()))
    except ValueError as exc:
        print(f"signoff: {exc}", file=sys.stderr)
        return 2


def _runtime(settings: Settings) -> Runtime:
    return Runtime(settings, build_registry(settings.failure_rate), Metrics())


def _serve(settings: Settings) -> int:
    if not settings.tokens:
        if settings.host not in LOOPBACK and not settings.allow_open:
            raise ValueError(
                f"refusing to serve without SIGNOFF_TOKENS on {settings.host}: anyone who can "
                "reach it could approve anything. Set tokens, bind 127.0.0.1, or set "
                "SIGNOFF_ALLOW_OPEN=1."
            )
        log.warning("running open: no SIGNOFF_TOKENS are set, every caller has every role")
    runtime = _runtime(settings)
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    log.info("database %s, %d embedded worker(s)", _redact(settings.database_url), settings.workers)
    server(
        create_app(runtime),
        runtime,
        host=settings.host,
        port=settings.port,
        log_level="info",
        proxy_headers=False,
    ).run()
    return 0


async def _worker(settings: Settings, metrics_port: int = 0) -> int:
    runtime = _runtime(settings)
    await runtime.start()
    if metrics_port:
        assert isinstance(runtime.observer, Metrics)
        start_http_server(metrics_port, addr=settings.host, registry=runtime.observer.registry)
    log.info(
        "worker %s running (concurrency %d) on %s",
        runtime.workers[0].owner,
        settings.concurrency,
        _redact(settings.database_url),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: finishing in-flight jobs (or releasing them after 10 s)")
    await runtime.stop()
    return 0


async def _migrate(settings: Settings) -> int:
    db = Database(settings.database_url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()
    log.info("schema is up to date on %s", _redact(settings.database_url))
    return 0


def _redact(url: str) -> str:
    with contextlib.suppress(Exception):
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    return url


if __name__ == "__main__":
    sys.exit(main())
