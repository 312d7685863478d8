"""`signoff audit verify`'s check on its own (no database): what it accepts, and what it names."""

from __future__ import annotations

from typing import Any

import pytest

from signoff.engine.audit import ChainLine, Checker, EndLine, ExportFormatError, read, verify
from signoff.engine.audit.chain import GENESIS, entry_digest, link
from signoff.engine.audit.formats import csv_header, csv_line, ndjson


def _chain(count: int, *, started: int = 0, first: int = 1) -> list[dict[str, Any]]:
    """`count` entries from seq `first`; those up to `started` predate the chain (no hash)."""
    made: list[dict[str, Any]] = []
    prev: str | None = None
    for seq in range(first, first + count):
        entry: dict[str, Any] = {
            "seq": seq, "run_id": "r", "version": seq, "at": "2026-12-06T10:00:00.000000Z",
            "actor": "alice", "event": "pause", "data": {"n": seq}, "reason": None,
            "business": {"from": ["a"], "to": ["b"]},
            "lifecycle": {"from": ["running"], "to": ["paused"]},
            "prev_hash": None, "hash": None,
        }  # fmt: skip
        if seq > started:
            entry["prev_hash"] = prev = prev or GENESIS
            entry["hash"] = prev = link(prev, seq, entry_digest(entry))
        made.append(entry)
    return made


def _page(entries: list[dict[str, Any]], since: int, started: int = 0) -> list[Any]:
    last = entries[-1] if entries else None
    return [
        ChainLine(started_seq=started, started_at="2026-12-06T09:00:00.000000Z", since_seq=since),
        *entries,
        EndLine(
            entries=len(entries),
            last_seq=None if last is None else last["seq"],
            head=None if last is None else last["hash"],
            more=False,
        ),
    ]


def test_a_whole_chain_verifies_and_says_its_head() -> None:
    entries = _chain(5)
    checker = Checker()
    assert checker.feed(_page(entries, 0))
    verdict = checker.verdict()
    assert verdict.ok and verdict.checked == 5 and verdict.started_seq == 0
    assert (verdict.last_seq, verdict.last_hash) == (5, entries[-1]["hash"])
    assert verdict.trusted is None


def test_pages_follow_one_another() -> None:
    entries = _chain(6)
    checker = Checker()
    assert checker.feed(_page(entries[:3], 0)) and checker.feed(_page(entries[3:], 3))
    assert checker.verdict().checked == 6
    # An empty last page (the previous one was full) is fine; one that skips is not.
    assert checker.feed(_page([], 6))
    skipping = Checker()
    skipping.feed(_page(entries[:2], 0))
    assert not skipping.feed(_page(entries[3:], 3))
    assert skipping.verdict().first_bad == 4
    assert "does not follow" in skipping.verdict().problem


def test_the_start_of_the_chain_must_link_to_genesis() -> None:
    entries = _chain(3)
    forged_prev = "1" * 64
    entries[0] = {**entries[0], "prev_hash": forged_prev}
    entries[0]["hash"] = link(forged_prev, 1, entry_digest(entries[0]))
    verdict = verify(_page(entries, 0))
    assert (verdict.first_bad, verdict.problem) == (1, "its prev_hash is not the chain's start")
    # Without the chain line the start is not known, and the first link is taken on trust.
    assert verify(entries).trusted == forged_prev


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"hash": None}, "it has no hash, but the chain starts after seq 2"),
        ({"actor": "mallory"}, "its hash does not match its content"),
        ({"data": {"n": 4.5}}, "its hash does not match its content"),
        ({"business": {"from": ["a"], "to": ["z"]}}, "its hash does not match its content"),
        ({"seq": 2}, "seq 2 comes after seq 3, out of order"),
    ],
)
def test_the_first_entry_that_does_not_match_is_named(change: dict[str, Any], problem: str) -> None:
    entries = _chain(6, started=2)
    entries[3] = {**entries[3], **change}
    verdict = verify(_page(entries, 0, started=2))
    assert verdict.problem == problem
    assert verdict.first_bad == (2 if "seq" in change else 4)
    assert verdict.unchained == 2 and verdict.checked == 1


def test_a_page_whose_end_line_disagrees_or_is_missing_is_not_whole() -> None:
    entries = _chain(4)
    page = _page(entries, 0)
    assert "cut short" in verify(page[:-1]).problem
    dropped_last = [*page[:-2], page[-1]]  # the end line still names seq 4
    assert "end line says 4 entries" in verify(dropped_last).problem
    other_start = Checker()
    other_start.feed(_page(entries[:2], 0))
    other_start.feed(_page(entries[2:], 2, started=1))
    assert "an earlier page said after seq 0" in other_start.verdict().problem


def test_both_formats_read_back_what_was_written() -> None:
    entries = _chain(3, started=1)
    entries[2]["reason"] = ""  # not None: CSV keeps the difference (reason is JSON text there)
    page = _page(entries, 0, started=1)
    as_ndjson = [ndjson(line).decode() for line in page]
    as_csv = (csv_header() + b"".join(csv_line(line) for line in page)).decode()
    for lines in (as_ndjson, as_csv.splitlines(keepends=True)):
        assert list(read(lines)) == page


def test_lines_that_are_not_an_export_say_where() -> None:
    with pytest.raises(ExportFormatError, match=r"f\.ndjson, line 2: not JSON"):
        list(read(['{"type": "end", "entries": 0, "last_seq": null, "head": null, '
                   '"more": false}\n', "{oops\n"], "f.ndjson"))  # fmt: skip
    with pytest.raises(ExportFormatError, match="the export, line 1: the entry has no run_id"):
        list(read(['{"type": "entry", "seq": 1}\n']))
    with pytest.raises(ExportFormatError, match="the CSV columns are not"):
        list(read(["type,seq\n"]))
