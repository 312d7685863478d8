"""Time in state, SLAs, decisions and throughput, on SQLite and PostgreSQL: known transitions at
known times (the dispatcher's clock) give known counters, percentiles, breaches and days."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from signoff.engine import (
    DefinitionNotFoundError,
    DocumentRejectedError,
    Period,
    Runtime,
    Stats,
    compile_document,
    read_stats,
)
from signoff.engine.errors import InvalidPeriodError
from tests.helpers import drain

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: float) -> None:
        self.now = T0 + timedelta(seconds=seconds)


async def stats(rt: Runtime, since: str | None = None, until: str | None = "2026-03-10") -> Stats:
    period = Period.parse(since or "2026-03-01", until, T0)
    return await read_stats(rt.store, rt.registry, "approval", period)


def near(value: float | None, expected: float) -> bool:
    """Within the 9 % a log-scale bucket allows."""
    return value is not None and abs(value - expected) <= 0.09 * expected


async def three_decided(rt: Runtime) -> list[str]:
    """Three approval runs: created at T0, processed 10 minutes later; ann approves one after
    50 minutes and one after 26h50m (past the one-day SLA), bob rejects the third after
    47h50m, it comes back to waiting at once, and ops cancels it an hour later."""
    clock = Clock()
    d = rt.dispatcher
    d.clock = clock
    runs = [
        (await d.create("approval", actor="alice", input={"output": 0.9})).run_id for _ in "abc"
    ]
    clock.at(10 * MINUTE)
    for run_id in runs:
        await d.dispatch(run_id, "process", actor="ops")
    await drain(rt)  # the jobs' outcomes land at the dispatcher's time: 10 minutes
    clock.at(HOUR)
    await d.dispatch(runs[0], "approve", actor="ann")
    clock.at(DAY + 3 * HOUR)
    await d.dispatch(runs[1], "approve", actor="ann")
    clock.at(2 * DAY)
    await d.dispatch(runs[2], "reject", actor="bob", reason="again")
    await drain(rt)
    clock.at(2 * DAY + HOUR)
    await d.dispatch(runs[2], "cancel", actor="ops")
    return runs


async def test_known_transitions_give_known_stats(runtime: Runtime) -> None:
    await three_decided(runtime)
    got = await stats(runtime)
    states = {s.state: s for s in got.states}
    assert [s.state for s in got.states][:5] == [
        "unprocessed",
        "sending_to_queue",
        "waiting_for_approval",
        "finished",
        "error",
    ]
    unprocessed = states["unprocessed"]
    assert (unprocessed.entered, unprocessed.stays, unprocessed.now) == (3, 3, 0)
    assert near(unprocessed.p50_s, 10 * MINUTE) and near(unprocessed.p99_s, 10 * MINUTE)
    sending = states["sending_to_queue"]
    assert (sending.entered, sending.stays, sending.now) == (4, 4, 0)
    waiting = states["waiting_for_approval"]
    assert (waiting.entered, waiting.stays, waiting.now) == (4, 4, 0)
    # Stays: 50m, 1h (the cancelled one's second wait), 26h50m, 47h50m.
    assert near(waiting.p50_s, HOUR)
    assert near(waiting.p90_s, 47 * HOUR + 50 * MINUTE)
    assert near(waiting.p99_s, 47 * HOUR + 50 * MINUTE)
    assert (waiting.sla_s, waiting.breaches) == (DAY, 2)
    assert states["finished"].entered == 2 and states["finished"].sla_s is None
    assert states["error"].entered == 0 and states["error"].p50_s is None
    assert [(a.actor, a.decisions) for a in got.approvers] == [("ann", 2), ("bob", 1)]
    ann, bob = got.approvers
    assert near(ann.p50_s, 50 * MINUTE) and near(ann.p90_s, 26 * HOUR + 50 * MINUTE)
    assert near(bob.p50_s, 47 * HOUR + 50 * MINUTE)
    assert got.finished == {"cancelled": 1, "completed": 2}
    finished = {d.day: d.outcomes for d in got.days if d.finished}
    assert finished == {
        date(2026, 3, 2): {"completed": 1},
        date(2026, 3, 3): {"completed": 1},
        date(2026, 3, 4): {"cancelled": 1},
    }
    assert [d.day for d in got.days][0::9] == [date(2026, 3, 1), date(2026, 3, 10)]


async def test_since_and_until_count_whole_utc_days(runtime: Runtime) -> None:
    await three_decided(runtime)
    # 2026-03-03 in UTC, named by a time in another zone on either side of it.
    got = await stats(runtime, "2026-03-03T01:30:00+01:00", "2026-03-03T22:30:00-01:00")
    assert (got.since, got.until) == (date(2026, 3, 3), date(2026, 3, 3))
    waiting = next(s for s in got.states if s.state == "waiting_for_approval")
    assert (waiting.entered, waiting.stays, waiting.breaches) == (0, 1, 1)
    assert waiting.now == 0  # runs there now, whatever the period
    assert near(waiting.p50_s, 26 * HOUR + 50 * MINUTE)
    assert [(a.actor, a.decisions) for a in got.approvers] == [("ann", 1)]
    assert [(d.day, d.finished) for d in got.days] == [(date(2026, 3, 3), 1)]
    before = await stats(runtime, "2026-02-01", "2026-03-01")
    assert all(s.entered == s.stays == 0 for s in before.states)
    assert before.approvers == [] and before.finished == {}


async def test_runs_count_where_they_are_now_until_they_finish(runtime: Runtime) -> None:
    clock = Clock()
    d = runtime.dispatcher
    d.clock = clock
    runs = [(await d.create("approval", actor="alice", input={"output": 0.9})).run_id for _ in "ab"]
    await d.dispatch(runs[0], "process", actor="ops")
    await drain(runtime)
    states = {s.state: s.now for s in (await stats(runtime)).states}
    assert (states["unprocessed"], states["waiting_for_approval"]) == (1, 1)
    clock.at(HOUR)
    await d.dispatch(runs[0], "approve", actor="ann")
    await d.dispatch(runs[1], "cancel", actor="ops")
    assert all(s.now == 0 for s in (await stats(runtime)).states)


async def test_a_dry_run_counts_nothing(runtime: Runtime) -> None:
    clock = Clock()
    d = runtime.dispatcher
    d.clock = clock
    run_id = (await d.create("approval", actor="alice", input={"output": 0.9})).run_id
    await d.dispatch(run_id, "process", actor="ops")
    await drain(runtime)
    before = await stats(runtime)
    rows = await stat_rows(runtime)
    clock.at(2 * DAY)
    await d.dry_run(run_id, "approve", actor="ann")
    await d.dry_run(run_id, "cancel", actor="ops")
    assert await stats(runtime) == before
    assert await stat_rows(runtime) == rows


async def test_an_unknown_definition_or_period_is_refused(runtime: Runtime) -> None:
    period = Period.parse(None, None, T0)
    assert (period.since, period.until) == (date(2026, 2, 1), date(2026, 3, 2))
    # A date-time is its UTC day: 01:30 at +02:00 is still the day before in UTC.
    late = Period.parse("2026-03-03T01:30:00+02:00", "2026-03-03", T0)
    assert late.since == date(2026, 3, 2)
    with pytest.raises(DefinitionNotFoundError):
        await read_stats(runtime.store, runtime.registry, "nope", period)
    for since, until in [
        ("2026-02-30", None),
        ("yesterday", None),
        ("2026-03-01T10:00:00", None),  # no offset: which day is it?
        ("2026-03-05", "2026-03-04"),
        ("2000-01-01", "2026-01-01"),  # over ten years
    ]:
        with pytest.raises(InvalidPeriodError):
            Period.parse(since, until, T0)


async def stat_rows(rt: Runtime) -> list[tuple[object, ...]]:
    async with rt.store.engine.connect() as conn:
        rows = await conn.execute(text("SELECT * FROM stat_counts ORDER BY 1, 2, 3, 4, 5"))
        return [tuple(r) for r in rows]


SLA_DOCUMENT = """
name: expense
signoff:
  kinds: {review: wait, paid: success, refused: failure}
  deciders: {review: "*"}
  slas: {review: 2d}
states:
  review:
    initial: true
    transitions:
      - {event: approve, target: paid}
      - {event: reject, target: refused}
  paid: {final: true}
  refused: {final: true}
"""


def test_a_document_declares_slas_on_wait_states() -> None:
    compiled = compile_document(SLA_DOCUMENT, "yaml")
    assert compiled.definition.slas == {"review": 2 * DAY}
    for bad, reason in [
        ("{paid: 2d}", "slas names 'paid', which is not a wait state"),
        ("{review: soon}", "sla of 'review': 'soon' is not a duration (3d, 4h)"),
        ("{review: 0s}", "sla of 'review': '0s' is not a duration (3d, 4h)"),
        ("{nowhere: 1h}", "slas names the state 'nowhere', which the chart does not have"),
    ]:
        with pytest.raises(DocumentRejectedError) as refused:
            compile_document(SLA_DOCUMENT.replace("{review: 2d}", bad), "yaml")
        assert reason in refused.value.reasons
