"""`signoff runs bulk ACTION --definition …`: count first, confirm, then act with a progress bar.

A line of JSON per run goes to stdout as its result lands (`done`, `skipped` with the reason,
`failed`), the summary last; the count, the key and the bar go to stderr. The request carries an
Idempotency-Key (`--key`, else a new one, printed): the same command with the same key finishes
an interrupted run and does nothing twice.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from typing import Any

import msgspec
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from signoff.client import SignoffClient
from signoff.engine import BulkAction, BulkRunResult, BulkStarted, BulkSummary

FILTERS = (
    "definition", "state", "lifecycle", "ref-type", "ref-id", "created-before", "created-after",
)  # fmt: skip


def add_commands(actions: Any, conn: argparse.ArgumentParser) -> None:
    """Register `runs bulk` on the `runs` subcommands."""
    bulk = actions.add_parser(
        "bulk",
        parents=[conn],
        help="cancel, retry, replay, pause, resume or migrate every run a filter matches",
    )
    actions_ = [a.value for a in BulkAction]
    bulk.add_argument("bulk_action", metavar="ACTION", choices=actions_, help=", ".join(actions_))
    for name in FILTERS:
        bulk.add_argument(f"--{name}", help="RFC 3339 time" if "created" in name else None)
    bulk.add_argument("--to-version", type=int, help="migrate: the target version (admin)")
    bulk.add_argument("--same-version", action="store_true", help="replay on the runs' version")
    bulk.add_argument("--reason", help="recorded in each run's history")
    bulk.add_argument("--dry-run", action="store_true", help="only say how many runs match")
    bulk.add_argument("--yes", action="store_true", help="act without asking")
    bulk.add_argument("--key", help="Idempotency-Key: repeat a run with its key to finish it")


async def run(client: SignoffClient, args: argparse.Namespace, status: Console) -> int:
    where = {name.replace("-", "_"): getattr(args, name.replace("-", "_")) for name in FILTERS}
    preview = await client.bulk_preview(args.bulk_action, **where)
    status.print(f"{preview.matched} run(s) match: {args.bulk_action}", markup=False)
    if args.dry_run:
        _print_json(preview)
        return 0
    if preview.matched == 0:
        return 0
    if not args.yes and not _confirmed(status, args.bulk_action, preview.matched):
        status.print("signoff: nothing done (add --yes to act without asking)", style="yellow")
        return 1
    key = args.key or str(uuid.uuid4())
    status.print(f"key {key} (the same command with --key {key} finishes it)", markup=False)
    lines = client.bulk(
        args.bulk_action,
        to_version=args.to_version,
        same_version=args.same_version,
        reason=args.reason,
        idempotency_key=key,
        **where,
    )
    summary = None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    # Results printed to a terminal go above the bar; to a pipe or a file, they go there.
    with Progress(
        *columns,
        console=status,
        disable=not status.is_terminal,
        redirect_stdout=sys.stdout.isatty(),
    ) as progress:
        bar = progress.add_task(args.bulk_action, total=preview.matched)
        async for line in lines:
            if isinstance(line, BulkStarted):
                progress.update(bar, total=line.matched)
            elif isinstance(line, BulkRunResult):
                _print_json(line)
                progress.advance(bar)
                if line.outcome != "done":
                    status.print(f"{line.run_id}: {line.outcome}: {line.reason}", markup=False)
            elif isinstance(line, BulkSummary):
                summary = line
    if summary is None:
        status.print("signoff: the server stopped before the end; repeat with --key", style="red")
        return 1
    print(f"done {summary.done}, skipped {summary.skipped}, failed {summary.failed}")
    return 1 if summary.failed else 0


def _confirmed(status: Console, action: str, matched: int) -> bool:
    if not sys.stdin.isatty():
        return False
    answer = status.input(f"{action} {matched} run(s)? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _print_json(value: Any) -> None:
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")
    sys.stdout.flush()
