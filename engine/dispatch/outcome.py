"""What a write answers, and what a committed transition tells the rest of the process."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import msgspec

from signoff.engine.views import RunView


@dataclass(frozen=True)
class Outcome:
    """The run after a write: its view as JSON (encoded once per transition), whether the write
    created the run, and whether it is the stored answer to a repeated idempotency key."""

    run_id: str
    version: int
    body: bytes
    created: bool = False
    replayed: bool = False

    def view(self) -> RunView:
        return msgspec.json.decode(self.body, type=RunView)


@dataclass(frozen=True)
class Committed:
    """A committed transition, for the feed and the workers: `entry` is its history entry as
    JSON, ready to be an SSE frame's data."""

    run_id: str
    definition: str
    event: str
    seq: int
    entry: bytes
    enqueued_jobs: bool
    # What it wrote besides the run and its entry: jobs and timers (kind, state, due) and
    # notification types (a dry run answers with these).
    jobs: tuple[tuple[str, str, datetime], ...] = ()
    notifications: tuple[str, ...] = ()
    # Stays in states that this transition ended: (state, seconds), for /metrics.
    stays: tuple[tuple[str, float], ...] = ()
