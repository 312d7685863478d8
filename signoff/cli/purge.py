"""`signoff purge --finished-before DATE`: export, then delete, the runs that finished before DATE.

It works on the database itself (SIGNOFF_DATABASE_URL), like `signoff migrate`, while the engine
keeps serving: a batch of runs per short transaction. With `--export FILE` the history entries
of the purged runs, and every entry between them (runs that stay interleave with them), are first
written to FILE as an audit export and checked; nothing is deleted unless FILE verifies. FILE is
never overwritten.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from signoff.engine.audit.formats import csv_header, csv_line, ndjson, read
from signoff.engine.audit.verify import Checker
from signoff.engine.settings import Settings
from signoff.engine.storage.audit import chain_start, export
from signoff.engine.storage.migrate import current, head
from signoff.engine.storage.purge import BATCH, Plan, Purged, plan, purge
from signoff.engine.storage.purge_records import purge_records
from signoff.engine.storage.reclaim import size, vacuum
from signoff.engine.storage.store import Store


def add_command(commands: Any) -> None:
    parser = commands.add_parser(
        "purge", help="export and delete the runs that finished before a date (retention)"
    )
    parser.add_argument(
        "--finished-before",
        required=True,
        metavar="DATE",
        help="runs completed or cancelled before this (2026-01-31, or a time with its offset; "
        "UTC unless it says)",
    )
    parser.add_argument(
        "--export", type=Path, metavar="FILE", help="first write their history here (.csv: CSV)"
    )
    parser.add_argument("--vacuum", action="store_true", help="give the space back afterwards")
    parser.add_argument("--batch", type=int, default=BATCH, help="runs per transaction")
    parser.add_argument("--dry-run", action="store_true", help="say what it would delete")


def parse_date(value: str) -> datetime:
    """A date (midnight UTC) or a time (UTC unless it has an offset)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"--finished-before {value!r} is not a date (2026-01-31) or a time "
            "(2026-01-31T12:00:00+01:00)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


async def run(args: argparse.Namespace, settings: Settings) -> int:
    before = parse_date(args.finished_before)
    if args.batch < 1:
        raise ValueError("--batch must be at least 1")
    if args.export is not None and args.export.exists():
        raise ValueError(f"{args.export} exists: an export is never overwritten")
    store = Store.open(settings.database_url, pool_size=2)
    try:
        if await current(store) != head():
            raise ValueError("the database's schema is not current: run `signoff migrate`")
        now = datetime.now(UTC)
        found = await plan(store, before, now, fold=not args.dry_run)
        _describe(found, args.dry_run)
        if args.dry_run or found.runs == 0:
            return 0
        if args.export is not None:
            await _export(store, found, args.export)
        done = await purge(store, found, now, batch=args.batch, progress=_progress)
        await purge_records(store, before, done)
        _summary(done)
        if args.vacuum:
            was = await size(store)
            await vacuum(store)
            print(f"vacuum: {_mb(was)} → {_mb(await size(store))}")
        return 0
    finally:
        await store.dispose()


def _describe(found: Plan, dry: bool) -> None:
    when = found.before.isoformat()
    if found.runs == 0:
        print(f"no run that finished before {when} is left to purge: nothing changed")
    else:
        verb = "would purge" if dry else "purging"
        print(
            f"{verb} {found.runs} run(s) finished before {when}: {found.entries} history "
            f"entries between seq {found.first_seq} and {found.last_seq}"
        )
    if found.held:
        print(
            f"kept for now: {found.held} finished run(s) with an entry after seq {found.upto} "
            "(the newest entry, or not yet in the stats)"
        )


async def _export(store: Store, found: Plan, path: Path) -> None:
    """Write the export of the purged range, then read it back and check it."""
    assert found.first_seq is not None and found.last_seq is not None
    start = await chain_start(store)
    lines = export(store, start, since_seq=found.first_seq - 1, until_seq=found.last_seq)
    as_csv = path.suffix.lower() == ".csv"
    with path.open("xb") as out:  # x: never over an existing file
        if as_csv:
            out.write(csv_header())
        async for line in lines:
            out.write(csv_line(line) if as_csv else ndjson(line))
        out.flush()
        os.fsync(out.fileno())
    checker = Checker()
    with path.open(encoding="utf-8", newline="") as written:
        checker.feed(read(written, str(path)), str(path))
    verdict = checker.verdict()
    if not verdict.ok:
        raise ValueError(f"the export {path} does not verify ({verdict.problem}): nothing deleted")
    print(
        f"exported seq {found.first_seq}..{found.last_seq} to {path}: it verifies "
        f"(head {verdict.last_hash})"
    )


async def _progress(done: Purged) -> None:
    print(f"\r{done.rows.get('runs', 0)} runs deleted", end="", file=sys.stderr, flush=True)


def _summary(done: Purged) -> None:
    print(file=sys.stderr)
    rows = ", ".join(f"{n} {table}" for table, n in done.rows.items())
    print(f"deleted: {rows}")
    print(f"in {done.batches} transaction(s), the longest {done.longest_s * 1000:.0f} ms")


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"
