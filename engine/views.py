"""What leaves the engine: the run view and history entries, as frozen msgspec Structs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec


class RunView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    definition: str
    definition_version: int
    version: int
    ref_id: str | None
    ref_type: str | None
    input: dict[str, Any]
    state: str
    configuration: list[str]
    lifecycle: str
    context: dict[str, Any]
    allowed_events: list[str]
    created_at: datetime
    updated_at: datetime


class Change(msgspec.Struct, frozen=True, kw_only=True, rename={"from_": "from"}):
    from_: list[str]
    to: list[str]


class _Transition(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    run_id: str
    at: datetime
    actor: str
    event: str
    data: dict[str, Any]
    reason: str | None
    business: Change
    lifecycle: Change


class HistoryEntry(_Transition, frozen=True, kw_only=True):
    run: RunView


class EntryJson(_Transition, frozen=True, kw_only=True):
    """A HistoryEntry as written once per transition: the same JSON, but `run` is the run
    view's bytes as encoded for the response, embedded without a second encoding."""

    run: msgspec.Raw


class RunPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[RunView]
    next_cursor: str | None


class HistoryPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[HistoryEntry]


def run_view(row: Mapping[str, Any], allowed: list[str]) -> RunView:
    """The run view of a `runs` row's column values."""
    return RunView(
        id=row["id"],
        definition=row["definition"],
        definition_version=row["definition_version"],
        version=row["version"],
        ref_id=row["ref_id"],
        ref_type=row["ref_type"],
        input=row["input"],
        state=row["state"],
        configuration=list(row["configuration"]),
        lifecycle=row["lifecycle"],
        context=row["context"],
        allowed_events=allowed,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def history_entry(row: Any) -> HistoryEntry:
    return HistoryEntry(
        seq=row.seq,
        run_id=row.run_id,
        at=row.at,
        actor=row.actor,
        event=row.event,
        data=row.data,
        reason=row.reason,
        business=Change(from_=row.business_from, to=row.business_to),
        lifecycle=Change(from_=row.lifecycle_from, to=row.lifecycle_to),
        run=msgspec.convert(row.run, RunView),
    )
