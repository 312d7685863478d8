"""Durable delays: a state that, once entered, sends an event after a while ("wait 3d").

One concept for code and documents: `Definition(delays={"cooling_off": Delay(3 * 86400,
"cooled")})`, and a document's `timers: {cooling_off: [{after: 3d, event: cooled}]}` (or a
`delay` job) compile to the same. Entering the state asks for a timer job row in the
transition's transaction; leaving it cancels the row in the transaction that leaves, so the
event fires at most once, after restarts too, from whichever worker claims the row.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from signoff.engine.model.run_model import TIMER_KIND, JobRequest


@dataclass(frozen=True)
class Delay:
    """While the run stays in the state: send `event` `after_s` seconds after it entered."""

    after_s: float
    event: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.after_s) and self.after_s > 0):
            raise ValueError(f"a delay's after_s must be a positive number, not {self.after_s}")


Delays = Mapping[str, Delay | Sequence[Delay]]


def of(delays: Delays, state: str) -> tuple[Delay, ...]:
    """The delays `state` declares (one, or a list)."""
    found = delays.get(state, ())
    return (found,) if isinstance(found, Delay) else tuple(found)


def requests(delays: Delays, before: Collection[str], after: Sequence[str]) -> list[JobRequest]:
    """The timers a transition from configuration `before` to `after` asks for: the delays of
    each state it entered. A state it stays in (a self-transition too) keeps its timer."""
    return [
        JobRequest(TIMER_KIND, state, {"event": d.event}, delay_s=d.after_s)
        for state in after
        if state not in before
        for d in of(delays, state)
    ]
