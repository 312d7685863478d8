"""Checking an exported chain offline: every entry's hash recomputed from its content and the
hash before it, across the pages of an export in order, naming the first seq that does not match.

What a check cannot see by itself: entries removed from the end, or a chain rewritten from some
entry on with every later hash recomputed. Both change the head hash, so compare the head with
one kept elsewhere (an earlier export's, or one written down); the first entry of an export that
starts after `since_seq` links to an entry the export does not hold, which is taken on trust
(`Verdict.trusted`) and should be the head of the export before it.

A `purged` line (`signoff purge` deleted the entries before the next one) says which hash the
next entry links to, as the purge recorded it: that link is taken on trust too (the purge's own
export holds the purged entries, and its entry `last_seq` should have that hash), and the next
entry must be the one the line names. A changed kept entry still fails its own hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from signoff.engine.audit.chain import GENESIS, entry_digest, link
from signoff.engine.audit.formats import ChainLine, EndLine, Line, PurgedLine


@dataclass(frozen=True)
class Verdict:
    """What a check found: `problem` is empty when every entry matched; else `first_bad`
    names the first seq that does not (None when no entry is to blame: a page cut short).
    `checked` entries matched before it; `unchained` entries predate the chain (no hash)."""

    checked: int
    first_bad: int | None = None
    problem: str = ""
    unchained: int = 0
    last_seq: int | None = None
    last_hash: str | None = None
    started_seq: int | None = None  # where the chain starts, when the export says
    trusted: str | None = None  # the hash the first entry links to, taken on trust
    pages: int = 0
    purged: int = 0  # purged ranges passed over (`purged` lines)
    last_purged: PurgedLine | None = None  # the last of them

    @property
    def ok(self) -> bool:
        return not self.problem


class _Broken(Exception):
    def __init__(self, seq: int | None, problem: str) -> None:
        self.seq, self.problem = seq, problem


class Checker:
    """Feeds an export's lines, page after page, to the check; `verdict()` says how it went.
    Memory stays flat: it keeps the last entry's seq and hash, not the entries."""

    def __init__(self) -> None:
        self.checked = self.unchained = self.pages = 0
        self.started: int | None = None
        self.prev: str | None = None  # the hash the next chained entry must link to
        self.last_seq: int | None = None
        self.position: int | None = None  # the last seq the pages so far cover
        self.trusted: str | None = None
        self._page: ChainLine | None = None
        self._page_entries = 0
        self._page_last: int | None = None
        self._page_head: str | None = None
        self._gap: str = ""  # the page does not follow the previous: blamed on its first entry
        self.purged = 0
        self.last_purged: PurgedLine | None = None
        self._next: int | None = None  # the seq a `purged` line said comes next
        self._broken: _Broken | None = None

    def feed(self, lines: Iterable[Line], where: str = "the export") -> bool:
        """Check one page (a file, or a response); False once something did not match."""
        if self._broken is not None:
            return False
        try:
            self._feed(lines, where)
        except _Broken as broken:
            self._broken = broken
            return False
        return True

    def verdict(self) -> Verdict:
        broken = self._broken
        return Verdict(
            self.checked,
            None if broken is None else broken.seq,
            "" if broken is None else broken.problem,
            self.unchained,
            self.position if broken is None else self.last_seq,
            self.prev,
            self.started,
            self.trusted,
            self.pages,
            self.purged,
            self.last_purged,
        )

    def _feed(self, lines: Iterable[Line], where: str) -> None:
        self.pages += 1
        self._page = None
        ended = False
        for line in lines:
            if ended:
                raise _Broken(None, f"{where} goes on after its end line")
            if isinstance(line, ChainLine):
                if self._page is not None or self._page_entries:
                    raise _Broken(None, f"{where} has a chain line after its start")
                self._start(line, where)
            elif isinstance(line, EndLine):
                self._end(line, where)
                ended = True
            elif isinstance(line, PurgedLine):
                self._purged(line, where)
            else:
                self._entry(line)
        if self._page is not None and not ended:
            raise _Broken(None, f"{where} has no end line: it was cut short")
        if self._gap:  # a page without entries that does not follow the previous
            raise _Broken(None, self._gap)
        if self._next is not None:
            raise _Broken(self._next, f"{where} ends after a purged range, before its next entry")
        self._page_entries = 0

    def _start(self, line: ChainLine, where: str) -> None:
        if self.started is not None and line.started_seq != self.started:
            raise _Broken(
                None,
                f"{where} says the chain starts after seq {line.started_seq}; "
                f"an earlier page said after seq {self.started}",
            )
        if self.position is not None and line.since_seq != self.position:
            self._gap = (
                f"{where} holds the entries after seq {line.since_seq}, but the page before "
                f"it ended at seq {self.position}: it does not follow"
            )
        self.started = line.started_seq
        self._page = line
        self._page_last, self._page_head = None, None
        if self.position is None:
            self.position = line.since_seq

    def _end(self, line: EndLine, where: str) -> None:
        if self._page is None:
            return  # pages without a chain line cannot be told complete or not
        said = (line.entries, line.last_seq, line.head)
        held = (self._page_entries, self._page_last, self._page_head)
        if said != held:
            raise _Broken(
                None,
                f"{where}'s end line says {said[0]} entries up to seq {said[1]} (hash "
                f"{said[2]}), but it holds {held[0]} up to seq {held[1]} (hash {held[2]})",
            )

    def _purged(self, line: PurgedLine, where: str) -> None:
        # The range must start where the entries so far end (or before this page began).
        before = self._page_last if self._page_last is not None else self.position
        starts = line.after_seq or 0
        if self._next is not None or (
            before is not None and (starts > before or (self._page_last and starts != before))
        ):
            raise _Broken(
                line.next_seq,
                f"{where} says the entries after seq {line.after_seq} were purged, "
                f"but its entries so far end at seq {before}",
            )
        if not line.last_seq < line.next_seq:
            raise _Broken(line.next_seq, f"{where} has a purged range that ends after its next")
        self.prev = line.last_hash
        self._next = line.next_seq
        self.purged += 1
        self.last_purged = line

    def _entry(self, entry: Mapping[str, Any]) -> None:
        seq = int(entry["seq"])
        if self._gap:
            raise _Broken(seq, self._gap)
        if self._next is not None and seq != self._next:
            raise _Broken(seq, f"a purged range said seq {self._next} comes next, not seq {seq}")
        self._next = None
        page = self._page
        if self.position is not None and seq <= self.position:
            raise _Broken(seq, f"seq {seq} comes after seq {self.position}, out of order")
        self.position = self._page_last = seq
        self._page_entries += 1
        self._page_head = hashed = entry.get("hash")
        if self.started is not None and seq <= self.started:
            if hashed is not None:
                raise _Broken(seq, f"it has a hash, but the chain starts after seq {self.started}")
            self.unchained += 1
            return
        if hashed is None:
            if self.started is not None:
                raise _Broken(seq, f"it has no hash, but the chain starts after seq {self.started}")
            if self.prev is not None:
                raise _Broken(seq, "it has no hash, inside the chain")
            self.unchained += 1
            return
        claimed = entry.get("prev_hash")
        expected = self.prev
        if expected is None and page is not None and page.since_seq <= page.started_seq:
            expected = GENESIS  # the export holds the chain's start: its first entry links here
        if expected is None:
            if claimed is None:
                raise _Broken(seq, "it has no prev_hash to link to")
            self.trusted = claimed
        elif claimed != expected:
            what = "the chain's start" if expected == GENESIS else "the previous entry's hash"
            raise _Broken(seq, f"its prev_hash is not {what}")
        if link(claimed, seq, entry_digest(entry)) != hashed:
            raise _Broken(seq, "its hash does not match its content")
        self.prev = hashed
        self.last_seq = seq
        self.checked += 1


def verify(entries: Iterable[Mapping[str, Any]]) -> Verdict:
    """Check entries (or an export's lines) in seq order, as one page."""
    checker = Checker()
    checker.feed(entries)  # type: ignore[arg-type]
    return checker.verdict()
