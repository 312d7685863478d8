"""`signoff audit verify FILE…` (or `--url`) and `signoff audit export`: the hash-chained history.

verify checks an export offline, its pages in the order given (or fetched from a server page by
page), and names the first seq that does not match (exit 1); otherwise it prints how many entries
it checked, the head (last seq and its hash, to keep elsewhere and compare next time) and where
the chain starts. export writes the server's export to stdout or `--out`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from signoff.client import SignoffClient
from signoff.engine.audit.formats import EndLine, read
from signoff.engine.audit.verify import Checker, Verdict

PAGE = 10_000  # entries per request when verify fetches from a server


def add_commands(commands: Any, connection: argparse.ArgumentParser) -> None:
    parser = commands.add_parser("audit", help="export and verify the hash-chained history")
    actions = parser.add_subparsers(dest="action", required=True)
    verify = actions.add_parser(
        "verify",
        parents=[connection],
        help="check an export's hash chain offline (files, or --url to fetch it); "
        "names the first seq that does not match",
    )
    verify.add_argument(
        "files", nargs="*", metavar="FILE", help="export pages (NDJSON or CSV), in order"
    )
    verify.add_argument(
        "--since-seq", type=int, default=0, help="with --url: only the entries after this seq"
    )
    verify.add_argument("--page-size", type=int, default=PAGE, help="with --url: per request")
    export = actions.add_parser(
        "export", parents=[connection], help="write the export (NDJSON or CSV) to stdout"
    )
    export.add_argument("--since-seq", type=int, default=0, help="only the entries after this")
    export.add_argument("--limit", type=int, help="at most this many entries (one page)")
    export.add_argument("--format", choices=("ndjson", "csv"), default="ndjson")
    export.add_argument("--out", type=Path, help="write here instead of stdout")


async def run(client: SignoffClient, args: argparse.Namespace) -> int:
    if args.action == "export":
        return await _export(client, args)
    checker = Checker()
    if args.files:
        for name in args.files:
            with _open(name) as lines:
                if not checker.feed(read(lines, name), name):
                    break
    else:
        await _fetch(client, checker, args.since_seq, args.page_size)
    return report(checker.verdict())


def report(verdict: Verdict, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print what verify found; the exit status: 0 every entry matched, 1 not."""
    out, err = out or sys.stdout, err or sys.stderr
    if not verdict.ok:
        where = "" if verdict.first_bad is None else f" at seq {verdict.first_bad}"
        print(f"signoff: the audit chain breaks{where}: {verdict.problem}", file=err)
        print(f"({verdict.checked} entries before it matched)", file=err)
        return 1
    pages = f" in {verdict.pages} pages" if verdict.pages > 1 else ""
    print(f"ok: {verdict.checked} chained entries checked{pages}", file=out)
    if verdict.last_hash is not None:
        print(f"head: seq {verdict.last_seq} hash {verdict.last_hash}", file=out)
    else:
        print(f"head: seq {verdict.last_seq}, no chained entry yet", file=out)
    print(_start(verdict), file=out)
    if verdict.last_purged is not None:
        gap = verdict.last_purged
        print(
            f"{verdict.purged} purged range(s) passed over; the last: the "
            f"entries after seq {gap.after_seq} up to seq {gap.last_seq}, whose hash "
            f"{gap.last_hash} seq {gap.next_seq} links to, taken on trust: the purge's export "
            "holds them",
            file=out,
        )
    if verdict.trusted is not None:
        print(
            f"the first entry links to {verdict.trusted}, taken on trust: it should be the "
            "head of the export before this one",
            file=out,
        )
    return 0


def _start(verdict: Verdict) -> str:
    if verdict.started_seq is None:
        return "where the chain starts is not said (the export has no chain line)"
    if verdict.started_seq == 0:
        return "the chain starts at the first entry"
    older = f"; {verdict.unchained} of them here" if verdict.unchained else ""
    return (
        f"the chain starts after seq {verdict.started_seq}: entries up to it were stored "
        f"before migration 0007 and carry no hash{older}"
    )


class _open:
    """A file's lines, or stdin's for `-`; a file that cannot be read is a usage error."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.file: TextIO | None = None

    def __enter__(self) -> Iterator[str]:
        if self.name == "-":
            return iter(sys.stdin)
        try:
            self.file = open(self.name, encoding="utf-8", newline="")
        except OSError as exc:
            raise ValueError(f"cannot read {self.name}: {exc.strerror}") from None
        return iter(self.file)

    def __exit__(self, *_: object) -> None:
        if self.file is not None:
            self.file.close()


async def _fetch(client: SignoffClient, checker: Checker, since_seq: int, size: int) -> None:
    """Every page from `since_seq` on, each checked as it streams in."""
    if size < 1:
        raise ValueError("--page-size must be at least 1")
    while True:
        # One page (at most `size` entries) in memory at a time.
        page = [line async for line in client.audit_lines(since_seq=since_seq, limit=size)]
        if not checker.feed(page, f"the page after seq {since_seq}"):
            return
        end = page[-1] if page else None
        if not isinstance(end, EndLine) or not end.more or end.last_seq is None:
            return
        since_seq = end.last_seq


async def _export(client: SignoffClient, args: argparse.Namespace) -> int:
    chunks = client.audit_export(since_seq=args.since_seq, limit=args.limit, format=args.format)
    if args.out is None:
        async for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()
        return 0
    with args.out.open("wb") as out:
        async for chunk in chunks:
            out.write(chunk)
    return 0
