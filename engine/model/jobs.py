"""What a job handler is given, what it returns, and how it fails."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from signoff.engine.model.retry import RetryPolicy


class JobOutcome(msgspec.Struct, frozen=True):
    """The event a finished job sends to its run."""

    event: str
    data: dict[str, Any] = {}


@dataclass(frozen=True)
class JobContext:
    """What a job handler sees: the run it works for and its attempt number (1-based)."""

    run_id: str
    input: Mapping[str, Any]
    payload: Mapping[str, Any]
    attempt: int


JobHandler = Callable[[JobContext], Awaitable[JobOutcome]]


@dataclass(frozen=True)
class JobKind:
    """A job handler, the event it sends when its attempts are exhausted, and how it is run:
    its retries (None: the worker's, from SIGNOFF_MAX_ATTEMPTS and SIGNOFF_RETRY_*) and how
    long one attempt may take (None: the worker's, 300 s) before it counts as failed."""

    name: str
    handler: JobHandler
    failure_event: str
    retry: RetryPolicy | None = None
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError(f"job kind {self.name!r}: timeout_s must be above 0")


class TransientJobError(Exception):
    """The job failed in a way that may pass; it is retried with backoff."""


class PermanentJobError(Exception):
    """The job failed for good; its run gets the failure event at once."""
