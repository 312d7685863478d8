"""The run lifecycle's vocabulary: the states and events the engine and the lifecycle chart share.

The chart (`signoff.machines.lifecycle`) is the behaviour; these names are the contract. The
registry refuses a lifecycle chart that lacks any of them.
"""

from __future__ import annotations

from enum import StrEnum


class LifecycleState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    ERRORED = "errored"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class LifecycleEvent(StrEnum):
    # Derived by the engine from what the business chart entered:
    RUN = "run"
    WAIT = "wait"
    COMPLETE = "complete"
    FAIL = "fail"
    # Sent by operators:
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"


CONTROL_EVENTS: tuple[str, ...] = (
    LifecycleEvent.PAUSE,
    LifecycleEvent.RESUME,
    LifecycleEvent.CANCEL,
)
# Runs that will never change again.
FINISHED = frozenset({LifecycleState.COMPLETED, LifecycleState.CANCELLED})
# Lifecycle states in which the business chart accepts no events.
FROZEN = frozenset({LifecycleState.PAUSED, *FINISHED})
# The lifecycle state each derived event leads to.
TARGET = {
    LifecycleEvent.RUN: LifecycleState.RUNNING,
    LifecycleEvent.WAIT: LifecycleState.WAITING,
    LifecycleEvent.COMPLETE: LifecycleState.COMPLETED,
    LifecycleEvent.FAIL: LifecycleState.ERRORED,
}
