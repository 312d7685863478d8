"""What one transition adds to the stats counters (table `stat_counts`), decided in Python and
written by the store in the transition's own transaction.

Counters, each per definition and key (a state, an approver, a final lifecycle state) and per
UTC day the thing happened:
- `entered`: runs that entered the state;
- `stay`, per duration bucket (signoff.engine.stats.buckets): stays in the state that ended;
- `breach`: stays longer than the state's declared SLA;
- `decide`, per bucket: decisions by the approver, and how long the run had waited for them;
- `finished`: runs that ended in that lifecycle state;
- `now` (no day): runs in the state now (+1 on entry, -1 on leaving).
A run's entry time into each state it is in is kept on the run (`runs.entered`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from signoff.engine.model.definition import Definition, StateKind
from signoff.engine.stats.buckets import bucket

NO_BUCKET = -1
# Actors that are the runtime, not people: their events are not decisions.
_RUNTIME_ACTORS = frozenset({"timer", "worker", "system"})

Key = tuple[str, str, str, str, int]  # definition, kind, key, day, bucket


@dataclass(frozen=True)
class Stay:
    """A stay in a state that ended with this transition."""

    state: str
    seconds: float


@dataclass
class Counted:
    """A transition's counters: `entered` is the run's new entry-time map."""

    entered: dict[str, str]
    increments: dict[Key, int] = field(default_factory=dict)
    stays: list[Stay] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str, str, str, int, int]]:
        return [(*k, n) for k, n in self.increments.items() if n]


def count(
    spec: Definition,
    entered: Mapping[str, str],
    before: Sequence[str],
    after: Sequence[str],
    now: datetime,
    *,
    event: str,
    actor: str,
    finished: str | None,
) -> Counted:
    """The counters of a transition from configuration `before` to `after` at `now`; `entered`
    is the run's entry-time map before it, `finished` the lifecycle state a run ends in."""
    if finished is None and before == after and event not in spec.decision_events:
        return Counted(dict(entered))  # nothing entered, left or decided: nothing to count
    name, day = spec.name, now.date().isoformat()
    inc: Counter[Key] = Counter()
    came = [s for s in after if s not in before]
    # A run that ends leaves every state it was in (a cancelled run's wait ends too); the
    # states it ends in count as entered, and it is in none of them `now`.
    left = [s for s in before if finished is not None or s not in after]
    stays: list[Stay] = []
    for state in left:
        inc[(name, "now", state, "", NO_BUCKET)] -= 1
        since = entered.get(state)
        if since is None:  # entered before stats were kept
            continue
        seconds = max(0.0, (now - datetime.fromisoformat(since)).total_seconds())
        stays.append(Stay(state, seconds))
        inc[(name, "stay", state, day, bucket(seconds))] += 1
        sla = spec.slas.get(state)
        if sla is not None and seconds > sla:
            inc[(name, "breach", state, day, NO_BUCKET)] += 1
    for state in came:
        inc[(name, "entered", state, day, NO_BUCKET)] += 1
        if finished is None:
            inc[(name, "now", state, "", NO_BUCKET)] += 1
    if event in spec.decision_events and actor not in _RUNTIME_ACTORS:
        waits = [s for s in before if spec.kinds.get(s) is StateKind.WAIT]
        waited = [entered[s] for s in waits if s in entered]
        if waited:
            seconds = max(0.0, (now - datetime.fromisoformat(min(waited))).total_seconds())
            inc[(name, "decide", actor, day, bucket(seconds))] += 1
    if finished is not None:
        inc[(name, "finished", finished, day, NO_BUCKET)] += 1
        kept: dict[str, str] = {}
    else:
        kept = {s: t for s, t in entered.items() if s in after}
        kept.update({s: now.isoformat() for s in came})
    return Counted(kept, dict(inc), stays)
