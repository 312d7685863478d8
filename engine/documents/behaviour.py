"""What a document's chart does at run time, generated from its `signoff` section.

The chart python-statemachine builds from a document only routes events. Signoff subclasses
it with the behaviour a code chart writes by hand: entering a state records the jobs and timers
the section declares; a decision is recorded in `context.decisions` (its state, the visit of
that state, the actor, the time, the reason) and a repeat approval in the same visit is
refused; a job's outcome lands in `context` (success: `context[<state>]`, failure:
`context.last_error`). Guards may name `approvals`: the distinct approvers of the current wait
state in this visit, the sender included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from statemachine import State, StateChart

from signoff.engine.documents.section import Section
from signoff.engine.errors import (
    DuplicateApprovalError,
    InvalidEventDataError,
    InvalidInputError,
)
from signoff.engine.model.run_model import TIMER_KIND, JobRequest, RunModel

APPROVE = "approve"


class DocumentModel(RunModel):
    """The model of a document's chart: a guard may name `approvals`."""

    def approvals(self, actor: str, source: State) -> int:
        return len(approvers(self.context, str(source.id)) | {actor})


def approvers(context: Mapping[str, Any], state: str) -> set[str]:
    """Who approved `state` in its current visit."""
    visit = context.get("visits", {}).get(state, 0)
    return {
        d["actor"]
        for d in context.get("decisions", [])
        if d["state"] == state and d["visit"] == visit and d["decision"] == APPROVE
    }


def plan(section: Section) -> dict[str, list[JobRequest | tuple[str, str]]]:
    """Per state, what entering it asks for: job requests, and deadlines read from the input
    at entry, as (event, input field). Delays (`after`, a `delay` job) are the definition's
    `delays` (signoff.engine.model.delays), which the dispatcher turns into timers."""
    steps: dict[str, list[JobRequest | tuple[str, str]]] = {}
    for state, job in section.jobs.items():
        if job.kind == "delay":
            continue
        if job.kind == "http":
            payload: dict[str, Any] = {
                "state": state,
                "url": job.url,
                "success": job.success,
                "failure_event": job.failure,
                "timeout_s": job.timeout_s,
                "secret": job.secret,
            }
            if job.retry is not None:
                payload["retry"] = {
                    "max_attempts": job.retry.max_attempts,
                    "backoff": str(job.retry.backoff),
                    "base_s": job.retry.base_s,
                    "cap_s": job.retry.cap_s,
                    "jitter": job.retry.jitter,
                }
            attempts = job.retry.max_attempts if job.retry else None
            request = JobRequest("http", state, payload, max_attempts=attempts)
        else:
            extra = {"failure_event": job.failure} if job.failure else {}
            request = JobRequest(job.kind, state, extra)
        steps.setdefault(state, []).append(request)
    for state, timers in section.timers.items():
        for timer in timers:
            if timer.after is None and timer.deadline is not None:
                steps.setdefault(state, []).append((timer.event, timer.deadline))
    return steps


def chart_class(
    loaded: type[StateChart[Any]],
    section: Section,
    internal_success: Sequence[str],
    internal_failure: Sequence[str],
) -> type[StateChart[Any]]:
    """`loaded` with the section's behaviour, refusing events it cannot take (→ 409)."""
    steps = plan(section)
    decisions = frozenset(section.decisions)
    waits = frozenset(s for s, k in section.kinds.items() if k == "wait")
    successes, failures = frozenset(internal_success), frozenset(internal_failure)
    needs_reason = frozenset(section.reason_required)

    def on_enter_state(self: StateChart[Any], state: State, **kw: Any) -> None:
        model: RunModel = self.model
        sid = str(state.id)
        if getattr(kw.get("source"), "id", None) == sid:
            return  # a self-transition stays: same visit, its jobs and timers go on
        if sid in waits:
            visits = dict(model.context.get("visits", {}))
            visits[sid] = visits.get(sid, 0) + 1
            model.context["visits"] = visits
        for step in steps.get(sid, ()):
            if isinstance(step, JobRequest):
                model.requests.append(step)
            else:
                event, field = step
                model.requests.append(_deadline(event, sid, model.input, field))

    def before_transition(self: StateChart[Any], event: Any, source: State, **kw: Any) -> None:
        name, actor = str(event), kw.get("actor")
        if name in needs_reason and not str(kw.get("reason") or "").strip():
            raise InvalidEventDataError(f"{name} needs a reason.")
        if name == APPROVE and actor in approvers(self.model.context, str(source.id)):
            raise DuplicateApprovalError(str(actor))

    def on_transition(self: StateChart[Any], event: Any, source: State, **kw: Any) -> None:
        context, name = self.model.context, str(event)
        data = kw.get("data") or {}
        if name in decisions:
            visit = context.get("visits", {}).get(str(source.id), 0)
            context["decisions"] = [
                *context.get("decisions", []),
                {
                    "decision": name,
                    "state": str(source.id),
                    "visit": visit,
                    "actor": kw.get("actor"),
                    "at": kw.get("at"),
                    "reason": kw.get("reason"),
                },
            ]
        elif name in successes:
            context[str(source.id)] = data
            context.pop("last_error", None)
        elif name in failures:
            context["last_error"] = str(data.get("error", "the job failed"))
            context["attempts"] = data.get("attempts")

    return type(
        loaded.__name__,
        (loaded,),
        {
            "allow_event_without_transition": False,  # an event the state refuses: 409
            "catch_errors_as_events": False,  # an error rolls the transition back
            "model_type": DocumentModel,
            "on_enter_state": on_enter_state,
            "before_transition": before_transition,
            "on_transition": on_transition,
        },
    )


def _deadline(event: str, state: str, input: Mapping[str, Any], field: str) -> JobRequest:
    value = input.get(field)
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(
            f"The input's {field!r} must be an RFC 3339 time (a deadline), not {value!r}."
        ) from None
    if at.tzinfo is None:
        raise InvalidInputError(f"The input's {field!r} needs a time zone (…Z or …+02:00).")
    return JobRequest(TIMER_KIND, state, {"event": event}, at=at)
