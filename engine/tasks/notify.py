"""Who is told what about a transition: its notifications, written in its transaction and fanned
out to webhook subscriptions there (the transactional outbox)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from signoff.engine.ids import uuid7
from signoff.engine.model import tasks as task_events
from signoff.engine.model.definition import Definition
from signoff.engine.tasks.plan import TaskPlan
from signoff.engine.tasks.task import Task

# What a task event is called in a notification.
_TYPES = {
    task_events.CLAIM: "task.claimed",
    task_events.RELEASE: "task.released",
    task_events.REASSIGN: "task.reassigned",
    task_events.DELEGATE: "task.delegated",
    task_events.REMIND: "task.reminder",
    task_events.ESCALATE: "task.escalated",
}
# Types whose message carries approval links for the people who may decide the task.
LINKED = frozenset({"task.created", "task.reminder", "task.escalated", "task.reassigned"})

# Approval links for a task: (definition, run row, task) → [{actor, event, url, expires_at}].
LinkMaker = Callable[[Definition, dict[str, Any], Task], list[dict[str, Any]]]


@dataclass(frozen=True)
class Notification:
    """One notification: `id` is its webhook-id, the same on every attempt and subscription."""

    type: str
    id: str
    message: dict[str, Any]


@dataclass(frozen=True)
class Happened:
    """A committed-to-be transition, as notifications describe it."""

    spec: Definition
    run: dict[str, Any]  # the run row after it
    event: str
    actor: str
    at: datetime
    business: tuple[list[str], list[str]]
    lifecycle: tuple[list[str], list[str]]
    view: bytes
    tasks: TaskPlan
    acted_on: Task | None = None  # the task a task event changed


def kinds(h: Happened) -> list[tuple[str, Task | None]]:
    """What the transition tells, and about which task: `transition` for a chart or lifecycle
    event (or the task event's own type), then one per task it opened or closed."""
    found: list[tuple[str, Task | None]] = []
    if h.event in _TYPES:
        found.append((_TYPES[h.event], h.acted_on))
    else:
        found.append(("transition", None))
    found += [("task.created", t) for t in h.tasks.opened]
    closing = "task.decided" if h.event in h.spec.decision_events else "task.closed"
    found += [(closing, t) for t in h.tasks.closed]
    return found


def notifications(h: Happened, links: LinkMaker | None) -> list[Notification]:
    """The transition's notifications, messages and links made (only when someone
    subscribes: the store asks for them inside the transaction)."""
    return [_notification(h, kind, task, links) for kind, task in kinds(h)]


def _notification(
    h: Happened, kind: str, task: Task | None, links: LinkMaker | None
) -> Notification:
    run = h.run
    data: dict[str, Any] = {
        "run_id": run["id"],
        "definition": run["definition"],
        "definition_version": run["definition_version"],
        "version": run["version"],
        "event": h.event,
        "actor": h.actor,
        "at": h.at,
        "business": {"from": h.business[0], "to": h.business[1]},
        "lifecycle": {"from": h.lifecycle[0], "to": h.lifecycle[1]},
    }
    if task is not None:
        data["task"] = msgspec.to_builtins(task)
        if links is not None and kind in LINKED:
            data["links"] = links(h.spec, run, task)
    data["run"] = msgspec.Raw(h.view)
    message = {"type": kind, "timestamp": h.at, "data": data}
    return Notification(kind, f"msg_{uuid7()}", message)
