"""The `signoff` command: serve, worker, migrate, purge (signoff/cli/purge.py), diagrams; runs
and watch (signoff/cli/runs.py)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import uvloop

from signoff.api.app import create_app
from signoff.api.auth import Tokens
from signoff.api.links import Signer
from signoff.api.metrics import Metrics, serve_worker_metrics
from signoff.api.security import RedactTokens
from signoff.api.server import server
from signoff.apps import load_registry
from signoff.cli import purge as cli_purge
from signoff.cli import runs as cli_runs
from signoff.cli.definitions import FORMATS as DOCUMENT_FORMATS
from signoff.cli.processes import run_forked
from signoff.client import ApiError
from signoff.engine import (
    DocumentRejectedError,
    EngineError,
    Registry,
    Runtime,
    Settings,
    Store,
    check_reachable,
    compile_document,
    drawing,
    generated_paths,
    migrate_runs,
    upgrade,
)

log = logging.getLogger("signoff")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="signoff", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="HTTP API with an embedded worker")
    serve.add_argument("--host", help="bind address (SIGNOFF_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (SIGNOFF_PORT, default 8000)")
    serve.add_argument("--workers", type=int, help="embedded workers; 0 serves the API only")
    serve.add_argument(
        "--processes",
        type=int,
        help="server processes sharing the port, each with its own workers (default 1)",
    )

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

    move = commands.add_parser(
        "migrate-runs", help="move a definition's unfinished runs to a newer version"
    )
    move.add_argument("name", help="the definition")
    move.add_argument("--to", type=int, required=True, help="the version to move them to")

    paths = commands.add_parser("paths", help="print the generated test paths of a chart")
    paths.add_argument(
        "name", help="a definition's name, `lifecycle`, or a chart document's file (.yaml, …)"
    )

    for command in (serve, worker, diagrams, move, paths):
        command.add_argument(
            "--app",
            metavar="MODULE:ATTR",
            help="your definitions: a Registry, a Pack, or a factory taking the Settings "
            "(SIGNOFF_APP; default: every installed pack)",
        )

    cli_runs.add_commands(commands)
    cli_purge.add_command(commands)

    args = parser.parse_args(argv)
    if args.command in ("runs", "watch", "definitions", "webhooks", "tasks", "events", "audit"):
        try:
            return uvloop.run(cli_runs.run(args))
        except ApiError as exc:
            print(f"signoff: {exc.message}", file=sys.stderr)
            return 1
        except ValueError as exc:
            print(f"signoff: {exc}", file=sys.stderr)
            return 2
        except httpx.TransportError as exc:
            print(f"signoff: cannot reach {args.url}: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        app = getattr(args, "app", None)
        if args.command == "serve":
            settings = Settings.from_env(
                host=args.host,
                port=args.port,
                workers=args.workers,
                processes=args.processes,
                app=app,
            )
            return _serve(settings)
        if args.command == "worker":
            settings = Settings.from_env(concurrency=args.concurrency, workers=1, app=app)
            return uvloop.run(_worker(settings, args.metrics_port))
        if args.command == "migrate-runs":
            settings = Settings.from_env(workers=0, app=app)
            return uvloop.run(_migrate_runs(settings, args.name, args.to))
        if args.command == "purge":
            return uvloop.run(cli_purge.run(args, Settings.from_env(workers=0)))
        if args.command == "paths":
            return _paths(load_registry(Settings.from_env(app=app)), args.name)
        if args.command == "diagrams":
            registry = load_registry(Settings.from_env(app=app))
            for path in drawing.write_all(registry, Path(args.out)):
                print(path)
            return 0
        return uvloop.run(_migrate(Settings.from_env()))
    except ValueError as exc:
        print(f"signoff: {exc}", file=sys.stderr)
        return 2
    except generated_paths.ChartNotTestableError as exc:
        print(f"signoff: {exc.message}", file=sys.stderr)
        return 1


async def _migrate_runs(settings: Settings, name: str, to: int) -> int:
    from rich.progress import Progress

    await check_reachable(settings.database_url)
    runtime = _runtime(settings)
    await runtime.start()
    try:
        with Progress(transient=True) as progress:
            task = progress.add_task(f"moving {name} runs to v{to}")

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            report = await migrate_runs(runtime.dispatcher, name, to, progress=advance)
    except EngineError as exc:
        raise ValueError(exc.message) from exc
    finally:
        await runtime.stop()
    print(f"moved {len(report.migrated)} run(s) of {name} to version {to}")
    for run_id, states in report.stuck.items():
        print(f"stays: {run_id} is in {', '.join(states)}, which version {to} removed")
    return 1 if report.stuck else 0


def _paths(registry: Registry, name: str) -> int:
    examples: Mapping[str, Sequence[Mapping[str, Any]]] = {}
    inputs: Sequence[Mapping[str, Any]] = ({},)
    document = Path(name)
    if name == "lifecycle":
        chart = registry.lifecycle
    elif document.suffix.lower() in DOCUMENT_FORMATS and document.is_file():
        try:
            compiled = compile_document(
                document.read_text(),
                DOCUMENT_FORMATS[document.suffix.lower()],
                job_kinds=frozenset(registry.jobs) | {"http"},
                max_bytes=10 * 1024 * 1024,
            )
        except DocumentRejectedError as exc:
            raise ValueError("; ".join(exc.reasons)) from exc
        spec = compiled.definition
        chart, examples, inputs = spec.chart, spec.examples, spec.example_inputs
    else:
        try:
            spec = registry.get(name)
        except EngineError as exc:
            raise ValueError(exc.message) from exc
        chart, examples, inputs = spec.chart, spec.examples, spec.example_inputs
    walk = generated_paths.walk(chart, examples, inputs)
    for path in walk.paths:
        print(path.describe(walk.start))
    generated_paths.check(chart, walk)
    return 0


def _runtime(settings: Settings) -> Runtime:
    metrics = Metrics()
    runtime = Runtime(settings, load_registry(settings), metrics)
    metrics.watch(runtime.dispatcher)
    tokens = Tokens(settings.tokens)
    if not tokens.open:  # a worker's notifications (reminders, escalations) carry links too
        runtime.dispatcher.links = Signer(tokens, settings).links
    return runtime


def _serve(settings: Settings) -> int:
    tokens = Tokens(settings.tokens)  # a malformed list stops here, before anything starts
    if tokens.open and settings.host not in LOOPBACK and not settings.allow_open:
        raise ValueError(
            f"refusing to serve without SIGNOFF_TOKENS on {settings.host}: anyone who can "
            "reach it could approve anything. Set tokens, bind 127.0.0.1, or set "
            "SIGNOFF_ALLOW_OPEN=1."
        )
    # The port and the database are checked before migrations and workers start.
    sock = _bind(settings.host, settings.port)
    uvloop.run(check_reachable(settings.database_url))
    if tokens.open:
        log.warning("running open: no SIGNOFF_TOKENS are set, every caller has every role")
    if settings.processes > 1:
        # Migrated once, here: the processes would otherwise race to create the schema (on
        # SQLite two of them would both apply the first migration). Each then finds it current.
        uvloop.run(_migrate(settings))
        return run_forked(settings.processes, lambda: _serve_on(settings, sock))
    return _serve_on(settings, sock)


def _serve_on(settings: Settings, sock: socket.socket) -> int:
    runtime = _runtime(settings)
    _log_definitions(runtime.registry)
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    log.info("database %s, %d embedded worker(s)", _redact(settings.database_url), settings.workers)
    server(
        create_app(runtime),
        runtime,
        host=settings.host,
        port=settings.port,
        log_level="info",
        proxy_headers=False,
    ).run(sockets=[sock])
    return 0


def _log_definitions(registry: Registry) -> None:
    names = ", ".join(f"{d.name} v{d.version}" for d in registry.definitions.values())
    log.info("definitions: %s; job handlers: %s", names, ", ".join(registry.jobs) or "none")


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now so that a port in use is reported before anything
    else starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ValueError(
                f"port {port} on {host} is already in use (another signoff serve?): stop it, "
                "or choose another port with --port or SIGNOFF_PORT"
            ) from None
        raise ValueError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


async def _worker(settings: Settings, metrics_port: int = 0) -> int:
    tokens = Tokens(settings.tokens)  # the same configuration as the API's, checked alike
    await check_reachable(settings.database_url)
    runtime = _runtime(settings)
    _log_definitions(runtime.registry)
    await runtime.start()
    if metrics_port:
        assert isinstance(runtime.observer, Metrics)
        serve_worker_metrics(
            runtime.observer.registry,
            settings.host,
            metrics_port,
            tokens,
            public=settings.metrics_public,
        )
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
    await check_reachable(settings.database_url)
    store = Store.open(settings.database_url)
    try:
        await upgrade(store)
    finally:
        await store.dispose()
    log.info("schema is up to date on %s", _redact(settings.database_url))
    return 0


def _redact(url: str) -> str:
    with contextlib.suppress(Exception):
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    return url


if __name__ == "__main__":
    sys.exit(main())
