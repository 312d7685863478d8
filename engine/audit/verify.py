"""Checking an exported chain: every entry's hash recomputed from its content and the hash
before it. Works on any run of consecutive entries (pages of an export, in order)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from signoff.engine.audit.chain import entry_digest, link


@dataclass(frozen=True)
class Verdict:
    """What a check found: `checked` entries; `first_bad` the first seq that does not match
    (None: all did), and why; `unchained` entries older than the chain (no hash)."""

    checked: int
    first_bad: int | None = None
    problem: str = ""
    unchained: int = 0
    last_seq: int | None = None
    last_hash: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad is None


def verify(entries: Iterable[Mapping[str, Any]]) -> Verdict:
    """Check entries in seq order: each carries `seq`, `hash` and `prev_hash` (the hash it
    links to) besides its content; the first entry's `prev_hash` is taken on trust, every
    later one must be the hash of the entry before it."""
    checked = unchained = 0
    prev: str | None = None
    last_seq: int | None = None
    for entry in entries:
        seq = int(entry["seq"])
        if last_seq is not None and seq <= last_seq:
            return Verdict(checked, seq, f"seq {seq} follows seq {last_seq}", unchained)
        if entry.get("hash") is None:
            if prev is not None:
                return Verdict(checked, seq, "an entry without a hash inside the chain", unchained)
            unchained += 1
            last_seq = seq
            continue
        claimed_prev = entry.get("prev_hash")
        if prev is not None and claimed_prev != prev:
            return Verdict(
                checked, seq, "its prev_hash is not the previous entry's hash", unchained
            )
        if claimed_prev is None:
            return Verdict(checked, seq, "no prev_hash to link to", unchained)
        if link(claimed_prev, seq, entry_digest(entry)) != entry["hash"]:
            return Verdict(checked, seq, "its hash does not match its content", unchained)
        prev = entry["hash"]
        last_seq = seq
        checked += 1
    return Verdict(checked, None, "", unchained, last_seq, prev)
