"""`signoff runs …` and `signoff watch`: the command line over SignoffClient (signoff/client.py).

They talk to a running server: `--url` (SIGNOFF_URL, default http://127.0.0.1:8000) and
`--token` (SIGNOFF_TOKEN). Single runs print as JSON; lists and the live view as tables, whose
ids are never cut: a table is as wide as its cells, and a narrow live view drops columns instead.
Notices and refusals go to stderr, one line each, unwrapped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import httpx
import msgspec
from rich.console import Console
from rich.live import Live
from rich.measure import Measurement
from rich.progress import Progress
from rich.table import Table

from signoff.cli import audit as cli_audit
from signoff.cli import bulk as cli_bulk
from signoff.cli import definitions as cli_definitions
from signoff.cli import events as cli_events
from signoff.cli import tasks as cli_tasks
from signoff.cli import webhooks as cli_webhooks
from signoff.client import SignoffClient
from signoff.engine import HistoryEntry, RunView

DEFAULT_URL = "http://127.0.0.1:8000"
PAGE = 200  # the server's largest page
# Progress, notices and refusals; results go to stdout. soft_wrap: a message is one line, however
# narrow the terminal (or 80 columns, rich's width for a pipe), so it can be grepped.
_STATUS = Console(stderr=True, soft_wrap=True, highlight=False)
COLUMNS = ("id", "definition", "state", "lifecycle", "ref_type", "ref_id", "version", "updated")
# Which columns a live view too narrow for all of them drops first; `id` always stays, whole.
_DROP_ORDER = ("ref_type", "ref_id", "version", "definition", "updated", "lifecycle", "state")


def add_commands(commands: Any) -> None:
    """Register `runs` (and `runs bulk`), `watch`, `definitions`, `webhooks` and `tasks` on
    the top-level parser's subcommands."""
    conn = _connection()
    cli_definitions.add_commands(commands, conn)
    cli_webhooks.add_commands(commands, conn)
    cli_tasks.add_commands(commands, conn)
    cli_events.add_commands(commands, conn)
    cli_audit.add_commands(commands, conn)
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

    listing = actions.add_parser(
        "list", parents=[conn], help="runs, newest first, as a table (stderr says if more exist)"
    )
    for name in ("definition", "state", "lifecycle", "ref-id", "ref-type"):
        listing.add_argument(f"--{name}")
    size = listing.add_mutually_exclusive_group()
    size.add_argument(
        "--limit", type=_positive, default=50, help="at most this many runs (default 50)"
    )
    size.add_argument("--all", action="store_true", help="every matching run, page after page")
    listing.add_argument("--cursor", help="continue after an earlier listing (its notice says)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")

    for event in ("approve", "reject"):
        decide = actions.add_parser(
            event, parents=[conn], help=f"{event} runs (several ids: progress bar)"
        )
        decide.add_argument("run_ids", nargs="+", metavar="run_id")
        decide.add_argument("--reason", required=event == "reject")
        decide.add_argument("--region", help="the approval region (purchase_order: legal, finance)")

    replay = actions.add_parser(
        "replay", parents=[conn], help="new runs with these runs' input and ref (prints each)"
    )
    replay.add_argument("run_ids", nargs="+", metavar="run_id")
    replay.add_argument(
        "--same-version", action="store_true", help="on the original's version, not the newest"
    )
    cli_bulk.add_commands(actions, conn)

    watch = commands.add_parser(
        "watch",
        parents=[conn],
        help="a live table of runs as their transitions land; piped, one line per transition",
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


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


async def run(args: argparse.Namespace, console: Console | None = None) -> int:
    try:
        return await _run(args, console or Console())
    except BrokenPipeError:  # `signoff watch | head -3`: the reader has had enough
        # Stdout goes to /dev/null, so that the interpreter's last flush does not fail too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


async def _run(args: argparse.Namespace, console: Console) -> int:
    try:
        client = SignoffClient(args.url, args.token)
    except httpx.InvalidURL as exc:  # a usage error (exit 2), not a traceback
        raise ValueError(f"--url is not a URL ({exc}): {args.url}") from exc
    async with client:
        if args.command == "definitions":
            return await cli_definitions.run(client, args)
        if args.command == "webhooks":
            return await cli_webhooks.run(client, args)
        if args.command == "tasks":
            return await cli_tasks.run(client, args, console)
        if args.command == "events":
            return await cli_events.run(client, args)
        if args.command == "audit":
            return await cli_audit.run(client, args)
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
        if args.action == "bulk":
            return await cli_bulk.run(client, args, _STATUS)
        return await _decide(client, console, args)


async def _create(client: SignoffClient, console: Console, args: argparse.Namespace) -> int:
    try:
        data = json.loads(args.input)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--input is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("--input must be a JSON object")
    with _progress(args.count) as progress:
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
    wanted = None if args.all else args.limit
    cursor = args.cursor
    runs: list[RunView] = []
    shown = 0
    while True:
        size = PAGE if wanted is None else min(wanted - shown, PAGE)
        page = await client.list(**filters, limit=size, cursor=cursor)
        if args.json:  # streamed: `--all --json` holds no more than a page
            for run in page.items:
                _print_json(run)
        else:
            runs.extend(page.items)
        shown += len(page.items)
        cursor = page.next_cursor
        if cursor is None or shown == wanted:
            break
    if not args.json:
        _print_whole(console, _table(runs))
    if cursor is not None:
        _STATUS.print(
            f"signoff: more runs exist than these {shown}: add --cursor {cursor} for the next "
            "page, or use a larger --limit, or --all",
            style="yellow",
        )
    return 0


def _progress(total: int) -> Progress:
    # Only on a terminal: written to a pipe or a log, a bar is noise and leaves a blank line.
    return Progress(console=_STATUS, disable=total < 2 or not _STATUS.is_terminal, transient=True)


async def _decide(client: SignoffClient, console: Console, args: argparse.Namespace) -> int:
    failed = 0
    with _progress(len(args.run_ids)) as progress:
        task = progress.add_task(args.action, total=len(args.run_ids))
        for run_id in args.run_ids:
            try:
                if args.action == "replay":
                    view = await client.replay(run_id, same_version=args.same_version)
                elif args.action == "approve":
                    view = await client.approve(run_id, reason=args.reason, region=args.region)
                else:
                    view = await client.reject(run_id, reason=args.reason, region=args.region)
                _print_json(view)
            except Exception as exc:  # report each refusal, go on with the others
                failed += 1
                _STATUS.print(f"signoff: {run_id}: {exc}", style="red", markup=False)
            progress.advance(task)
    return 1 if failed else 0


async def _watch(
    client: SignoffClient, console: Console, definition: str | None, rows: int
) -> None:
    if not console.is_terminal:  # piped or logged: a line per transition, as it lands
        async for entry in client.follow(definition=definition):
            console.file.write(_line(entry) + "\n")
            console.file.flush()
        return
    page = await client.list(definition=definition, limit=rows)
    shown: dict[str, RunView] = {run.id: run for run in reversed(page.items)}
    with Live(_fitting(console, shown), console=console, auto_refresh=False) as live:
        async for entry in client.follow(definition=definition):
            _apply(shown, entry, rows)
            live.update(_fitting(console, shown), refresh=True)


def _apply(shown: dict[str, RunView], entry: HistoryEntry, rows: int) -> None:
    shown.pop(entry.run_id, None)
    shown[entry.run_id] = entry.run  # most recently changed last
    while len(shown) > rows:
        shown.pop(next(iter(shown)))


def _line(entry: HistoryEntry) -> str:
    """seq, time, run id, definition, event, business state, lifecycle: space-separated."""
    run = entry.run
    at = entry.at.isoformat(timespec="seconds")
    return f"{entry.seq} {at} {run.id} {run.definition} {entry.event} {run.state} {run.lifecycle}"


def _table(runs: Iterable[RunView], columns: Sequence[str] = COLUMNS) -> Table:
    table = Table(box=None)
    for name in columns:
        table.add_column(name, no_wrap=True)
    for run in runs:
        cells = {
            "id": run.id,
            "definition": run.definition,
            "state": run.state,
            "lifecycle": run.lifecycle,
            "ref_type": run.ref_type or "",
            "ref_id": run.ref_id or "",
            "version": str(run.version),
            "updated": run.updated_at.strftime("%H:%M:%S"),
        }
        table.add_row(*(cells[name] for name in columns))
    return table


def _natural_width(console: Console, table: Table) -> int:
    # Measured against an unbounded width: rich would otherwise squeeze columns to the
    # console's width (80 for a pipe), cutting ids or folding them over several lines.
    return Measurement.get(console, console.options.update_width(1 << 20), table).maximum


def _print_whole(console: Console, table: Table) -> None:
    """Print `table` as wide as its cells: a narrow terminal wraps the lines, a pipe keeps them."""
    table.width = _natural_width(console, table)
    console.print(table, crop=False)


def _fitting(console: Console, shown: dict[str, RunView]) -> Table:
    """The live view's table, newest change first, in as many columns as the terminal holds.

    A live display must fit the terminal (lines the terminal wraps break its redrawing), so a
    narrow one loses columns, least useful first, rather than rich squeezing every cell.
    """
    runs = list(shown.values())[::-1]
    columns = list(COLUMNS)
    for name in _DROP_ORDER:
        table = _table(runs, columns)
        if _natural_width(console, table) <= console.width:
            return table
        columns.remove(name)
    table = _table(runs, columns)
    table.width = _natural_width(console, table)  # the id alone, whole, is wider still
    return table


def _print_json(value: Any) -> None:
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")
    sys.stdout.flush()
