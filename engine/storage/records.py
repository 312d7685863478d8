"""What crosses into the store: a transition to write, an idempotency key, a stored outcome."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from signoff.engine.model.run_model import JobRequest
from signoff.engine.storage.statements import Row
from signoff.engine.tasks.notify import Notification


@dataclass(frozen=True)
class IdempotencyKey:
    """A client's key, scoped to the actor and the route, with a hash of the request body."""

    key: str
    actor: str
    route: str
    request_hash: str


@dataclass(frozen=True)
class StoredOutcome:
    """What a key's first use answered: whether it created a run, and the run view's JSON."""

    created: bool
    body: bytes


@dataclass(frozen=True)
class TransitionWrite:
    """Everything one transition stores; `before` is the run row as locked (None: creating).

    `view` is what the history row stores of the run view: its compact JSON, the parts no
    other column holds (signoff.engine.storage.stored_view).
    """

    after: Row
    before: Row | None
    now: datetime
    actor: str
    event: str
    data: dict[str, Any]
    reason: str | None
    business_from: list[str]
    lifecycle_from: list[str]
    view: bytes
    cancel_all: bool
    cancel_states: Sequence[str]
    keep_job: int | None
    requests: Sequence[JobRequest]
    max_attempts: Sequence[int]  # of each request's job
    # The run's inbox rows, replacing its old ones (None: unchanged; `listed`: it may have
    # some), and its notifications, made on demand: the store asks for them, inside the
    # transaction, only when a subscription may want them.
    inbox: Sequence[Row] | None = None
    listed: bool = False
    notify: Callable[[], Sequence[Notification]] = tuple
    # The audit digest of the history entry's content (signoff.engine.audit.chain), and the
    # stats counters the transition adds, (definition, kind, key, day, bucket, n): stored
    # with its history entry and folded into the stats later.
    digest: str = ""
    counts: Sequence[tuple[str, str, str, str, int, int]] = ()
