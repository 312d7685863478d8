"""The model a business chart runs on: its configuration, context, input and job intents."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

TIMER_KIND = "timer"


class JobRequest(msgspec.Struct, frozen=True):
    """A job (or, with a delay and an event, a timer) that a state asked for on entry."""

    kind: str
    state: str
    payload: dict[str, Any] = {}
    delay_s: float = 0.0


class RunModel:
    """Charts record intent here and never perform I/O; the dispatcher writes the intents as
    job rows in the same transaction as the transition."""

    def __init__(self, state: Any, context: dict[str, Any], input: Mapping[str, Any]) -> None:
        self.state = state
        self.context = context
        self.input = input
        self.requests: list[JobRequest] = []

    def request_job(self, kind: str, state: str, **payload: Any) -> None:
        self.requests.append(JobRequest(kind=kind, state=state, payload=payload))

    def request_timer(self, event: str, state: str, delay_s: float) -> None:
        self.requests.append(
            JobRequest(kind=TIMER_KIND, state=state, payload={"event": event}, delay_s=delay_s)
        )
