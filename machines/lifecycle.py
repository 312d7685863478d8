"""The run lifecycle: generic infrastructure state shared by every definition."""

from __future__ import annotations

from typing import Any

from statemachine import HistoryState, State, StateChart


class Lifecycle(StateChart[Any]):
    """Queued → Running ⇄ Waiting → Completed | Errored, plus Paused and Cancelled.

    The engine sends `run`, `wait`, `complete` and `fail` from what the business chart entered;
    operators send `pause`, `resume` and `cancel`. `resume` returns through a history state to
    wherever the run was paused.
    """

    allow_event_without_transition = False
    catch_errors_as_events = False

    class active(State.Compound):
        queued = State(initial=True)
        running = State()
        waiting = State()
        errored = State()
        resume_point = HistoryState()
        resume_point.to(queued)

        run = queued.to(running) | waiting.to(running) | errored.to(running)
        wait = queued.to(waiting) | running.to(waiting) | errored.to(waiting)
        fail = queued.to(errored) | running.to(errored) | waiting.to(errored)

    paused = State()
    completed = State(final=True)
    cancelled = State(final=True)

    complete = active.to(completed)
    pause = active.to(paused)
    resume = paused.to(active.resume_point)
    cancel = active.to(cancelled) | paused.to(cancelled)
