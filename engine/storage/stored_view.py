"""The run view a history entry stores, compact, and the full view rebuilt from it.

A history row stores only what neither the entry's own columns nor the run's `runs` row hold:
`[definition_version, state, lifecycle, context, allowed_events, tasks]`, a JSON array (a row
written before issue 17 holds the whole view, a JSON object; both read back). The rest comes
from the entry (`id` is its run_id, `version`, `configuration` its business_to, `updated_at`
its time) and from the run's creation columns, which no transition changes (definition,
ref_id, ref_type, input, created_at, replay_of); `definition_loaded` is true in every view the
engine writes. The rebuilt view encodes to the bytes msgspec gave it at the transition (on
PostgreSQL, objects inside input, context and data come back in jsonb's key order, as they
did from a stored full view). So a compact row needs its run's row: the two are deleted
together.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec

from signoff.engine.views import RunView, TaskView

_ENCODER = msgspec.json.Encoder()
# The runs columns a rebuilt view takes: set when the run is created, never changed after.
CREATION = ("definition", "ref_id", "ref_type", "input", "created_at", "replay_of")
_Kept = tuple[int, str, str, msgspec.Raw, msgspec.Raw, msgspec.Raw]


def compact(view: RunView) -> bytes:
    """What a history row stores of `view` (its JSON)."""
    kept = (
        view.definition_version,
        view.state,
        view.lifecycle,
        view.context,
        view.allowed_events,
        view.tasks,
    )
    return _ENCODER.encode(kept)


def rebuild(entry: Mapping[Any, Any], run: Mapping[Any, Any]) -> RunView:
    """The run view of a history row (`run` its decoded column, with run_id, version,
    business_to and at), given the run's creation columns (`run`)."""
    stored = entry["run"]
    if isinstance(stored, dict):  # a full view, stored before issue 17
        return msgspec.convert(stored, RunView)
    version, state, lifecycle, context, allowed, tasks = stored
    return RunView(
        id=entry["run_id"],
        definition=run["definition"],
        definition_version=version,
        version=entry["version"],
        ref_id=run["ref_id"],
        ref_type=run["ref_type"],
        input=run["input"],
        state=state,
        configuration=list(entry["business_to"]),
        lifecycle=lifecycle,
        context=context,
        allowed_events=allowed,
        created_at=run["created_at"],
        updated_at=entry["at"],
        tasks=msgspec.convert(tasks, list[TaskView]),
        replay_of=run["replay_of"],
    )


class _Change(msgspec.Struct, frozen=True, kw_only=True, rename={"from_": "from"}):
    from_: msgspec.Raw
    to: msgspec.Raw


class _View(msgspec.Struct, frozen=True, kw_only=True):
    """RunView's fields in RunView's order, its JSON values as stored."""

    id: str
    definition: str
    definition_version: int
    version: int
    ref_id: str | None
    ref_type: str | None
    input: msgspec.Raw
    state: str
    configuration: msgspec.Raw
    lifecycle: str
    context: msgspec.Raw
    allowed_events: msgspec.Raw
    created_at: datetime
    updated_at: datetime
    definition_loaded: bool
    tasks: msgspec.Raw
    replay_of: str | None


class _Entry(msgspec.Struct, frozen=True, kw_only=True):
    """EntryJson's fields in its order, its JSON values as stored."""

    seq: int
    run_id: str
    at: datetime
    actor: str
    event: str
    data: msgspec.Raw
    reason: str | None
    business: _Change
    lifecycle: _Change
    run: msgspec.Raw


class Framer:
    """Builds a history entry's JSON (as the feed sends it) straight from the stored column
    text, without decoding the JSON columns: on SQLite that text is msgspec's own encoding,
    on PostgreSQL jsonb's, made compact here (same values, jsonb's key order)."""

    def __init__(self, postgres: bool) -> None:
        self.postgres = postgres

    def _json(self, text: str) -> msgspec.Raw:
        if self.postgres:
            return msgspec.Raw(msgspec.json.format(text.encode(), indent=-1))
        return msgspec.Raw(text)

    def entry(self, row: Mapping[Any, Any]) -> bytes:
        """The entry's JSON: `row` holds the history columns (JSON ones as text) and the
        run's creation columns (input as text)."""
        j = self._json
        return _ENCODER.encode(
            _Entry(
                seq=row["seq"],
                run_id=row["run_id"],
                at=row["at"],
                actor=row["actor"],
                event=row["event"],
                data=j(row["data"]),
                reason=row["reason"],
                business=_Change(from_=j(row["business_from"]), to=j(row["business_to"])),
                lifecycle=_Change(from_=j(row["lifecycle_from"]), to=j(row["lifecycle_to"])),
                run=self.view(row),
            )
        )

    def view(self, row: Mapping[Any, Any]) -> msgspec.Raw:
        stored = self._json(row["run"])
        if bytes(stored)[:1] == b"{":  # a full view, stored before issue 17
            return msgspec.Raw(_ENCODER.encode(msgspec.json.decode(stored, type=RunView)))
        version, state, lifecycle, context, allowed, tasks = msgspec.json.decode(stored, type=_Kept)
        if self.postgres and bytes(tasks) != b"[]":  # jsonb reordered the tasks' keys
            tasks = msgspec.Raw(_ENCODER.encode(msgspec.json.decode(tasks, type=list[TaskView])))
        view = _View(
            id=row["run_id"],
            definition=row["definition"],
            definition_version=version,
            version=row["version"],
            ref_id=row["ref_id"],
            ref_type=row["ref_type"],
            input=self._json(row["input"]),
            state=state,
            configuration=self._json(row["business_to"]),
            lifecycle=lifecycle,
            context=context,
            allowed_events=allowed,
            created_at=row["created_at"],
            updated_at=row["at"],
            definition_loaded=True,
            tasks=tasks,
            replay_of=row["replay_of"],
        )
        return msgspec.Raw(_ENCODER.encode(view))
