"""The audit chain's arithmetic, shared by the write path, the export and `signoff audit verify`.

An entry's hash is `sha256(prev_hash "\\n" seq "\\n" digest)` in hex, where `digest` is the sha256
of the entry's content as canonical JSON (keys sorted, no spaces): run id, version, time,
actor, event, data, reason, and both machines' from/to configurations. The run view an entry
also stores is derived from those, and left out. The first hash after the chain starts links to
`GENESIS`. Changing any field of a stored entry, or removing or reordering entries, changes
every hash from there on, so a verifier that recomputes them names the first seq that differs.

Numbers are hashed by value, as JSON means them: a float with no fraction is hashed as the
integer it spells (`1e16`, `1.0` as `10000000000000000`, `1`), because PostgreSQL's jsonb keeps
a number's decimal value, not its spelling, and gives `1e16` back as an integer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec

GENESIS = "0" * 64
_CANONICAL = msgspec.json.Encoder(order="sorted")


def timestamp(at: datetime) -> str:
    """An entry's time as hashed and exported: UTC, microseconds, `Z`."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def digest(
    run_id: str,
    version: int,
    at: datetime | str,
    actor: str,
    event: str,
    data: Mapping[str, Any],
    reason: str | None,
    business: tuple[Sequence[str], Sequence[str]],
    lifecycle: tuple[Sequence[str], Sequence[str]],
) -> str:
    """The sha256 of an entry's content, canonical JSON (see the module's doc)."""
    content = {
        "run_id": run_id,
        "version": version,
        "at": at if isinstance(at, str) else timestamp(at),
        "actor": actor,
        "event": event,
        "data": canonical(data),
        "reason": reason,
        "business": [list(business[0]), list(business[1])],
        "lifecycle": [list(lifecycle[0]), list(lifecycle[1])],
    }
    return hashlib.sha256(_CANONICAL.encode(content)).hexdigest()


def canonical(value: Any) -> Any:
    """`value` with every integral float as the integer it spells (see the module's doc)."""
    if isinstance(value, float):
        # repr is the shortest spelling that reads back as this float, as msgspec writes it
        # and jsonb stores it: 1.5e300 is 15 followed by 299 zeros, not int(1.5e300).
        return int(Decimal(repr(value))) if value.is_integer() else value
    if isinstance(value, Mapping):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def link(prev: str, seq: int, content_digest: str) -> str:
    """An entry's hash: chained to the previous entry's hash, bound to its own seq."""
    return hashlib.sha256(f"{prev}\n{seq}\n{content_digest}".encode()).hexdigest()


def entry_digest(entry: Mapping[str, Any]) -> str:
    """The digest of an exported entry (the export's field names)."""
    return digest(
        entry["run_id"],
        entry["version"],
        entry["at"],
        entry["actor"],
        entry["event"],
        entry["data"] or {},
        entry["reason"],
        (entry["business"]["from"], entry["business"]["to"]),
        (entry["lifecycle"]["from"], entry["lifecycle"]["to"]),
    )
