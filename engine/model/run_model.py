"""The model a business chart runs on: its configuration, context, input and job intents."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import msgspec

TIMER_KIND = "timer"


class JobRequest(msgspec.Struct, frozen=True):
    """A job (or, with a delay and an event, a timer) that a state asked for on entry."""

    kind: str
    state: str
    payload: dict[str, Any] = {}
    delay_s: float = 0.0
    # When it falls due (else `delay_s` after the transition), and how many attempts it gets
    # (else its kind's, signoff.engine.dispatch.Dispatcher.attempts_for).
    at: datetime | None = None
    max_attempts: int | None = None

    def due(self, now: datetime) -> datetime:
        return self.at if self.at is not None else now + timedelta(seconds=self.delay_s)


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


def model_for(
    chart: type, state: Any, context: dict[str, Any], input: Mapping[str, Any]
) -> RunModel:
    """The model an instance of `chart` runs on: RunModel, or the subclass the chart names as
    its `model_type` (a document's chart: signoff.engine.documents.behaviour)."""
    model_type: type[RunModel] = getattr(chart, "model_type", RunModel)
    return model_type(state, context, input)
