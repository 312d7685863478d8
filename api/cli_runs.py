"""`signoff runs …` and `signoff watch`: the command line over SignoffClient (api/client.py).

They talk to a running server: `--url` (SIGNOFF_URL, default http://127.0.0.1:8000) and
`--token` (SIGNOFF_TOKEN). Single runs print as JSON; lists and the live view as tables.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import msgspec
from rich.console import Console
from rich.live import Live
from rich.progress import Progress
from rich.table import Table

from api.client import SignoffClient
from engine.views import HistoryEntry, RunView

DEFAULT_URL = "http://127.0.0.1:8000"
_STATUS = Console(stderr=True)  # progress and refusals; results go to stdout


def add_commands(commands: Any) -> None:
    """Register `runs` and `watch` on the top-level parser's subcommands."""
    conn = _connection()
    runs = commands.add_parser("runs", help="create, inspect, approve and reject runs")
    actions = runs.add_subparsers(dest="action", required=True)

    create = actions.add_parser("create", parents=[conn], help="create runs (prints each as JSON)")
    create.add_argument("definition")
    create.add_argument("--input", default="{}", help="the run's input, as JSON")
    create.add_argument("--ref-id")
    create.add_argument("--ref-type")
    create.add_argument("--count", type=int, default=1, help="create this many (progress bar)")
    create.add_argument("--process", action="store_true", help="also send `process` to each")

    get = actions.add_parser("get", parents=[conn], help="one run, as JSON")
    get.add_argument("run_id")
    get.add_argument("--history", action="store_true", help="its history instead")

    listing = actions.add_parser("list", parents=[conn], help="runs, newest first, as a table")
    for name in ("definition", "state", "lifecycle", "ref-id", "ref-type"):
        listing.add_argument(f"--{name}")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (all pages)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")

    for event in ("approve", "reject"):
        decide = actions.add_parser(
            event, parents=[conn], help=f"{event} runs (several ids: progress bar)"
        )
        decide.add_argument("run_ids", nargs="+", metavar="run_id")
        decide.add_argument("--reason", required=event == "reject")
        decide.add_argument("--region", help="the approval region (purchase_order: legal, finance)")

    watch = commands.add_parser(
        "watch", parents=[conn], help="a live table of runs as their transitions land"
    )
    watch.add_argument("--definition", help="only runs of this definition")
    watch.add_argument("--rows", type=int, default=20, help="most recent runs shown")


def _connection() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(
        "--url", default=os.environ.get("SIGNOFF_URL", DEFAULT_URL), help="the server"
    )
    parser.add_argument(
        "--token", default=os.environ.get("SIGNOFF_TOKEN"), help="bearer token (SIGNOFF_TOKEN)"
    )
    return parser


async def run(args: argparse.Namespace, console: Console | None = None) -> int:
    if console is None:
        console = Console()
        if not console.is_terminal:  # piped: whole ids and states, not an 80-column cut
            console = Console(width=200)
    async with SignoffClient(args.url, args.token) as client:
        if args.command == "watch":
            await _watch(client, console, args.definition, args.rows)
            return 0
        if args.action == "create":
            return await _create(client, console, args)
        if args.action == "get":
            if args.history:
                for entry in await client.history(args.run_id):
                    _print_json(entry)
            else:
                _print_json(await client.get(args.run_id))
            return 0
        if args.action == "list":
            return await _list(client, console, args)
        return await _decide(client, console, args)


async def _create(client: SignoffClient, console: Console, args: argparse.Namespace) -> int:
    try:
        data = json.loads(args.input)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--input is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("--input must be a JSON object")
    with Progress(console=_STATUS, disable=args.count < 2, transient=True) as progress:
        task = progress.add_task("creating", total=args.count)
        for _ in range(args.count):
            run = await client.create(
                args.definition, input=data, ref_id=args.ref_id, ref_type=args.ref_type
            )
            if args.process:
                run = await client.process(run.id)
            _print_json(run)
            progress.advance(task)
    return 0


async def _list(client: SignoffClient, console: Console, args: argparse.Namespace) -> int:
    filters = {
        "definition": args.definition,
        "state": args.state,
        "lifecycle": args.lifecycle,
        "ref_id": args.ref_id,
        "ref_type": args.ref_type,
    }
    runs: list[RunView] = []
    async for run in client.all(**filters, limit=min(args.limit, 200)):
        runs.append(run)
        if len(runs) >= args.limit:
            break
    if args.json:
        for run in runs:
            _print_json(run)
    else:
        console.print(_table(runs))
    return 0


async def _decide(client: SignoffClient, console: Console, args: argparse.Namespace) -> int:
    failed = 0
    with Progress(console=_STATUS, disable=len(args.run_ids) < 2, transient=True) as progress:
        task = progress.add_task(args.action, total=len(args.run_ids))
        for run_id in args.run_ids:
            try:
                if args.action == "approve":
                    view = await client.approve(run_id, reason=args.reason, region=args.region)
                else:
                    view = await client.reject(run_id, reason=args.reason, region=args.region)
                _print_json(view)
            except Exception as exc:  # report each refusal, go on with the others
                failed += 1
                _STATUS.print(f"[red]{run_id}: {exc}[/red]", highlight=False)
            progress.advance(task)
    return 1 if failed else 0


async def _watch(
    client: SignoffClient, console: Console, definition: str | None, rows: int
) -> None:
    page = await client.list(definition=definition, limit=rows)
    shown: dict[str, RunView] = {run.id: run for run in reversed(page.items)}
    with Live(_table(list(shown.values())[::-1]), console=console, auto_refresh=False) as live:
        async for entry in client.follow(definition=definition):
            _apply(shown, entry, rows)
            live.update(_table(list(shown.values())[::-1]), refresh=True)


def _apply(shown: dict[str, RunView], entry: HistoryEntry, rows: int) -> None:
    shown.pop(entry.run_id, None)
    shown[entry.run_id] = entry.run  # most recently changed last
    while len(shown) > rows:
        shown.pop(next(iter(shown)))


def _table(runs: Sequence[RunView]) -> Table:
    table = Table("id", "definition", "state", "lifecycle", "version", "updated", box=None)
    for run in runs:
        table.add_row(
            run.id,
            run.definition,
            run.state,
            run.lifecycle,
            str(run.version),
            run.updated_at.strftime("%H:%M:%S"),
        )
    return table


def _print_json(value: Any) -> None:
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")
    sys.stdout.flush()
