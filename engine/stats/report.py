"""A definition's stats over a period, assembled from summed counters (signoff.engine.stats.counts):
time in each state, SLA breaches, decisions per approver, finished runs per day."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

import msgspec

from signoff.engine.stats.buckets import percentile
from signoff.engine.stats.period import Period


class StateStats(msgspec.Struct, frozen=True, kw_only=True):
    """One state: runs that entered it in the period and runs in it now; how long the stays
    that ended in the period lasted (seconds, from log-scale buckets: within 9 %); its SLA
    and the stays that broke it."""

    state: str
    kind: str | None
    entered: int
    now: int
    stays: int
    p50_s: float | None
    p90_s: float | None
    p99_s: float | None
    sla_s: float | None
    breaches: int


class ApproverStats(msgspec.Struct, frozen=True, kw_only=True):
    """One approver's decisions in the period, and how long runs had waited for them."""

    actor: str
    decisions: int
    p50_s: float | None
    p90_s: float | None


class DayStats(msgspec.Struct, frozen=True, kw_only=True):
    """Runs that finished on a UTC day, in all and per lifecycle state they ended in."""

    day: date
    finished: int
    outcomes: dict[str, int]


class Stats(msgspec.Struct, frozen=True, kw_only=True):
    definition: str
    since: date
    until: date
    states: list[StateStats]
    approvers: list[ApproverStats]
    days: list[DayStats]
    finished: dict[str, int]  # lifecycle state → runs that finished in it in the period


@dataclass(frozen=True)
class StateSpec:
    """A state as the report lists it: its id and what it means to the runtime."""

    id: str
    kind: str | None


# A summed counter: kind, key, day ("" unless kind is `finished`), bucket, n.
Row = tuple[str, str, str, int, int]


def assemble(
    definition: str,
    period: Period,
    states: Sequence[StateSpec],
    slas: Mapping[str, float],
    rows: Iterable[Row],
) -> Stats:
    """The report of counters summed over `period` (`now` counters are the present)."""
    plain: Counter[tuple[str, str]] = Counter()
    buckets: defaultdict[tuple[str, str], Counter[int]] = defaultdict(Counter)
    per_day: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for kind, key, day, bucket, n in rows:
        if kind in ("stay", "decide"):
            buckets[(kind, key)][bucket] += n
        elif kind == "finished":
            per_day[day][key] += n
        plain[(kind, key)] += n
    totals: Counter[str] = Counter()
    for outcomes in per_day.values():
        totals.update(outcomes)
    known = {s.id for s in states}
    counted = {key for (kind, key) in [*plain, *buckets] if kind in ("entered", "stay", "now")}
    listed = [*states, *(StateSpec(s, None) for s in sorted(counted - known))]
    return Stats(
        definition=definition,
        since=period.since,
        until=period.until,
        states=[_state(s, slas.get(s.id), plain, buckets[("stay", s.id)]) for s in listed],
        approvers=_approvers(buckets),
        days=[_day(d, per_day.get(d.isoformat(), Counter())) for d in period.days],
        finished={k: n for k, n in sorted(totals.items()) if n},
    )


def _state(
    spec: StateSpec, sla: float | None, plain: Counter[tuple[str, str]], stays: Counter[int]
) -> StateStats:
    return StateStats(
        state=spec.id,
        kind=spec.kind,
        entered=plain[("entered", spec.id)],
        now=max(0, plain[("now", spec.id)]),
        stays=sum(stays.values()),
        p50_s=_seconds(percentile(stays, 0.5)),
        p90_s=_seconds(percentile(stays, 0.9)),
        p99_s=_seconds(percentile(stays, 0.99)),
        sla_s=sla,
        breaches=plain[("breach", spec.id)],
    )


def _approvers(buckets: Mapping[tuple[str, str], Counter[int]]) -> list[ApproverStats]:
    found = [
        ApproverStats(
            actor=actor,
            decisions=sum(counts.values()),
            p50_s=_seconds(percentile(counts, 0.5)),
            p90_s=_seconds(percentile(counts, 0.9)),
        )
        for (kind, actor), counts in buckets.items()
        if kind == "decide" and counts.total()
    ]
    return sorted(found, key=lambda a: (-a.decisions, a.actor))


def _day(day: date, outcomes: Counter[str]) -> DayStats:
    kept = {k: n for k, n in sorted(outcomes.items()) if n}
    return DayStats(day=day, finished=sum(kept.values()), outcomes=kept)


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
