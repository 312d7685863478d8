"""Writing one transition: the run's new row, its history entry and jobs, encoded once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from signoff.engine.audit import chain
from signoff.engine.charts import snapshots
from signoff.engine.charts.run_charts import RunCharts
from signoff.engine.dispatch.outcome import Committed, Outcome
from signoff.engine.errors import StaleVersionError
from signoff.engine.stats import census
from signoff.engine.stats.counts import count
from signoff.engine.storage import stored_view
from signoff.engine.storage.records import TransitionWrite
from signoff.engine.storage.statements import Row, Tx
from signoff.engine.storage.store import Store
from signoff.engine.tasks import inbox, task
from signoff.engine.tasks.notify import Happened, LinkMaker, kinds, notifications
from signoff.engine.tasks.plan import TaskPlan, plan
from signoff.engine.tasks.task import Task
from signoff.engine.tracing import carried, stamp
from signoff.engine.views import Change, EntryJson, run_view

_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True)
class Step:
    """A transition the charts have made: `before` is the run row as locked (for a new run,
    its creation columns), `keep_job` the job whose outcome it applies."""

    now: datetime
    charts: RunCharts
    before: Row
    event: str
    actor: str
    data: dict[str, Any]
    reason: str | None
    new: bool = False
    keep_job: int | None = None
    # A task event's own plan for the run's tasks, and the task it changed (else the tasks
    # follow the chart: signoff.engine.tasks.plan).
    tasks: TaskPlan | None = None
    acted_on: Task | None = None
    # The run's tasks as read with `before` (None: read them from it here).
    open_tasks: list[Task] | None = None


async def write(
    store: Store,
    tx: Tx,
    step: Step,
    max_attempts: Callable[[str], int],
    links: LinkMaker | None = None,
) -> tuple[Outcome, Committed]:
    """Store a transition the charts have made, with its tasks and notifications; what it
    answers and what it committed. `max_attempts` says how many attempts a job of each kind
    gets; `links` makes a task's approval links for its notifications."""
    now, charts, before, new = step.now, step.charts, step.before, step.new
    event, actor, data, reason = step.event, step.actor, step.data, step.reason
    business_to = snapshots.configuration(charts.business)
    lifecycle_to = list(charts.lifecycle.configuration)
    final = charts.lifecycle.final
    tasks_before = task.load(before.get("tasks")) if step.open_tasks is None else step.open_tasks
    tasks = step.tasks or plan(
        charts.definition,
        tasks_before,
        business_to,
        ended=final,
        event=event,
        actor=actor,
        data=data,
        now=now,
    )
    business_from = [] if new else list(before["configuration"])
    lifecycle_from = [] if new else list(before["lifecycle_configuration"])
    counted = count(
        charts.definition,
        before.get("entered") or {},
        business_from,
        business_to,
        now,
        event=event,
        actor=actor,
        finished=charts.lifecycle_state if final else None,
    )
    after = {
        **before,
        "version": before["version"] + 1,
        "state": snapshots.top_state(charts.business),
        "configuration": business_to,
        "business_history": snapshots.history_values(charts.business),
        "lifecycle": charts.lifecycle_state,
        "lifecycle_configuration": lifecycle_to,
        "lifecycle_history": charts.lifecycle.history_values,
        "context": charts.model.context,
        "updated_at": now,
        "tasks": task.dump(tasks.tasks),
        "entered": counted.entered,
    }
    # Encoded once: these bytes are the response and, inside the entry, the SSE frame; the
    # history row keeps the compact part that changes (signoff.engine.storage.stored_view).
    view = run_view(after, charts.allowed_events())
    body = _ENCODER.encode(view)
    requests = () if final else [*charts.model.requests, *tasks.timers]
    if requests and carried.current.get() is not None:  # traced: the jobs carry its context
        requests = [msgspec.structs.replace(r, payload=stamp(r.payload)) for r in requests]
    happened = Happened(
        charts.definition,
        after,
        event,
        actor,
        now,
        (business_from, business_to),
        (lifecycle_from, lifecycle_to),
        body,
        tasks,
        step.acted_on,
    )
    told = kinds(happened)
    # The inbox rows change with the tasks, and with whether the run can be decided now.
    synced = tasks.tasks != tasks_before or before.get("lifecycle") != after["lifecycle"]
    stored = await store.store_transition(
        tx,
        TransitionWrite(
            after=after,
            before=None if new else before,
            now=now,
            actor=actor,
            event=event,
            data=data,
            reason=reason,
            business_from=business_from,
            lifecycle_from=lifecycle_from,
            view=stored_view.compact(view),
            cancel_all=final,
            cancel_states=sorted(set(business_from) - set(business_to)),
            keep_job=step.keep_job,
            requests=requests,
            max_attempts=[r.max_attempts or max_attempts(r.kind) for r in requests],
            inbox=inbox.rows(after, tasks.tasks) if synced else None,
            listed=bool(tasks_before),
            notify=lambda: notifications(happened, links),
            digest=chain.digest(
                after["id"],
                after["version"],
                now,
                actor,
                event,
                data,
                reason,
                (business_from, business_to),
                (lifecycle_from, lifecycle_to),
            ),
            counts=[
                *counted.rows(),
                *census.moved(
                    after["definition"],
                    None if new else (before["state"], before["lifecycle"]),
                    (after["state"], after["lifecycle"]),
                ),
            ],
        ),
    )
    if stored is None:
        raise StaleVersionError()
    seq = stored.seq
    entry = EntryJson(
        seq=seq,
        run_id=after["id"],
        at=now,
        actor=actor,
        event=event,
        data=data,
        reason=reason,
        business=Change(from_=business_from, to=business_to),
        lifecycle=Change(from_=lifecycle_from, to=lifecycle_to),
        run=msgspec.Raw(body),
    )
    outcome = Outcome(after["id"], after["version"], body, created=new)
    committed = Committed(
        after["id"],
        after["definition"],
        event,
        seq,
        _ENCODER.encode(entry),
        enqueued_jobs=bool(requests) or stored.deliveries > 0,
        jobs=tuple((r.kind, r.state, r.due(now)) for r in requests),
        notifications=tuple(kind for kind, _ in told),
        stays=tuple((s.state, s.seconds) for s in counted.stays),
    )
    charts.release()  # nothing below can fail: a rollback now would mean a commit error
    return outcome, committed
