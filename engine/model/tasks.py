"""What a wait state declares about its task: who may take it, when it is due, reminders and
escalation. The runtime keeps the task (signoff.engine.tasks); the chart never sees it."""

from __future__ import annotations

from dataclasses import dataclass

# Events the runtime sends about a run's tasks: history entries of their own, never a chart's.
TASK_EVENT_PREFIX = "task."
CLAIM = "task.claim"
RELEASE = "task.release"
REASSIGN = "task.reassign"
DELEGATE = "task.delegate"
REMIND = "task.remind"
ESCALATE = "task.escalate"
TASK_EVENTS = frozenset({CLAIM, RELEASE, REASSIGN, DELEGATE, REMIND, ESCALATE})
# Sent by timers only.
TIMED_TASK_EVENTS = frozenset({REMIND, ESCALATE})


@dataclass(frozen=True)
class WaitTask:
    """A wait state's task. `groups` and `users` name its candidates (who may claim and decide
    it; none: the state's deciding group, else any approver). After `due_after_s` it is
    overdue; after `remind_after_s` its candidates are reminded once; after
    `escalate_after_s` it passes to `escalate_to` (a group), unclaimed."""

    groups: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    due_after_s: float | None = None
    remind_after_s: float | None = None
    escalate_after_s: float | None = None
    escalate_to: str | None = None

    def __post_init__(self) -> None:
        if (self.escalate_after_s is None) != (self.escalate_to is None):
            raise ValueError("a task escalates after a time and to a group: name both")
        for value in (self.due_after_s, self.remind_after_s, self.escalate_after_s):
            if value is not None and value <= 0:
                raise ValueError("a task's durations must be positive")
