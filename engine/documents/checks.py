"""Why a chart document may not run: every reason, found before anything is built or stored.

On the chart as read (python-statemachine's neutral form): no executable content (a document
declares; Signoff's runtime acts, from the `signoff` section), no eventless transitions (a loop of
them would never settle), guards only as `expressions` allows. On the chart as built: what the
section names exists, every state is reachable and can still finish, every wait state has a
group to decide it and a decision to take, jobs are of kinds that exist.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from statemachine import HistoryState, StateChart
from statemachine.io.model import ExecutableContent, State, StateMachineDefinition, Transition

from signoff.engine.charts import snapshots
from signoff.engine.documents.http_job import host_allowed
from signoff.engine.documents.section import ANY_APPROVER, Section, Task, seconds
from signoff.engine.model import expressions, triggers

MAX_STATES = 500
MAX_TRANSITIONS = 2_000
BUILT_IN_JOBS = ("http", "delay")


def walk(states: Mapping[str, State]) -> Iterator[State]:
    for state in states.values():
        yield state
        yield from walk(state.states)


def read_problems(ir: StateMachineDefinition) -> list[str]:
    """What the chart as read may not hold."""
    found: list[str] = []
    if ir.datamodel is not None and (ir.datamodel.data or ir.datamodel.scripts):
        found.append("a datamodel is not supported: a run keeps its data in `context`")
    states = list(walk(ir.states))
    transitions = [t for s in states for t in s.transitions]
    if len(states) > MAX_STATES or len(transitions) > MAX_TRANSITIONS:
        found.append(f"at most {MAX_STATES} states and {MAX_TRANSITIONS} transitions")
    for state in states:
        where = f"state {state.id!r}"
        if _acts(*state.onentry, *state.onexit) or state.enter_refs or state.exit_refs:
            found.append(
                f"{where}: enter/exit actions are not supported; declare jobs and timers in "
                "the signoff section"
            )
        if state.invocations:
            found.append(f"{where}: invoke is not supported")
        if state.donedata is not None:
            found.append(f"{where}: donedata is not supported")
        for transition in state.transitions:
            found += _transition_problems(where, transition)
    return found


def _transition_problems(where: str, t: Transition) -> list[str]:
    found: list[str] = []
    label = f"{where}, transition {t.event or '(eventless)'} → {t.target}"
    if not t.event:
        found.append(f"{label}: every transition needs an event (eventless ones may loop)")
    if _acts(t.on, t.before, t.after) or t.on_refs or t.before_refs or t.after_refs:
        found.append(f"{label}: transition actions are not supported")
    for guard in _guards(t.cond) + _guards(t.unless):
        for problem in expressions.problems(guard):
            found.append(f"{label}: the guard {guard!r} {problem}")
    return found


def _acts(*contents: ExecutableContent | None) -> bool:
    """Whether any of these blocks holds an action (readers leave empty blocks too)."""
    return any(c is not None and c.actions for c in contents)


def _guards(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def built_problems(
    chart: type[StateChart[Any]],
    section: Section,
    job_kinds: frozenset[str],
    allowed_hosts: Sequence[str] = (),
) -> list[str]:
    """What the built chart and its section must agree on."""
    found: list[str] = []
    states = {k: v for k, v in chart.states_map.items() if not isinstance(v, HistoryState)}
    events = set(snapshots.event_names(chart))

    def known(what: str, names: Any) -> None:
        for name in names:
            if name not in states:
                found.append(f"{what} names the state {name!r}, which the chart does not have")

    known("kinds", section.kinds)
    known("deciders", section.deciders)
    known("jobs", section.jobs)
    known("timers", section.timers)
    known("tasks", section.tasks)
    known("slas", section.slas)
    for event in section.events:
        if event not in events:
            found.append(f"events names the event {event!r}, which the chart does not have")
    for state_id, task in section.tasks.items():
        found += _task_problems(state_id, task, section)
    for what, names in (
        ("decisions", section.decisions),
        ("reason_required", section.reason_required),
    ):
        for event in names:
            if event not in events:
                found.append(f"{what} names the event {event!r}, which the chart does not have")
    finals = [s for s in states.values() if s.final and s.parent is None]
    if not finals:
        found.append("the chart has no final state: no run could ever finish")
    for state_id, kind in section.kinds.items():
        if kind == "wait" and state_id in states:
            found += _wait_problems(chart, state_id, section)
    for state_id, job in section.jobs.items():
        found += _job_problems(state_id, job, section, events, job_kinds)
        if job.kind == "http" and job.url and not host_allowed(job.url, allowed_hosts):
            found.append(
                f"job in {state_id!r}: the host of {job.url} is not in "
                f"SIGNOFF_HTTP_ALLOWED_HOSTS ({', '.join(allowed_hosts)})"
            )
    for state_id, timers in section.timers.items():
        for timer in timers:
            if (timer.after is None) == (timer.deadline is None):
                found.append(f"timer in {state_id!r}: give `after` or `deadline`, one of them")
            elif timer.after is not None and seconds(timer.after) is None:
                found.append(f"timer in {state_id!r}: {timer.after!r} is not a duration (3d, 4h)")
            if timer.event not in events:
                found.append(f"timer in {state_id!r}: the chart has no event {timer.event!r}")
    for state_id, sla in section.slas.items():
        if section.kinds.get(state_id) != "wait":
            found.append(f"slas names {state_id!r}, which is not a wait state")
        if seconds(sla) is None:
            found.append(f"sla of {state_id!r}: {sla!r} is not a duration (3d, 4h)")
    found += _external_problems(section, events)
    found += _reach_problems(chart, states)
    return found


def _external_problems(section: Section, events: set[str]) -> list[str]:
    """Triggers and receives: conditions in the guard language over `data`; each received
    event the chart has, and neither a decision (a person's) nor a job's or timer's."""
    found = [
        p for t in section.triggers for p in triggers.Trigger(t.event, t.when, t.input).problems()
    ]
    internal = {e for j in section.jobs.values() for e in (j.success, j.failure, j.event) if e}
    internal |= {t.event for ts in section.timers.values() for t in ts}
    for state_id, names in section.receives.items():
        if section.kinds.get(state_id) != "wait":
            found.append(f"receives names {state_id!r}, which is not a wait state")
        for name, receive in names.items():
            where = f"{state_id!r} receives {name!r} as {receive.event!r}"
            if receive.event not in events:
                found.append(f"{where}, which the chart does not have")
            elif receive.event in internal or receive.event in section.decisions:
                found.append(f"{where}, which is a decision or a job's or timer's event")
    return found


def _task_problems(state_id: str, task: Task, section: Section) -> list[str]:
    found = []
    if section.kinds.get(state_id) != "wait":
        found.append(f"tasks names {state_id!r}, which is not a wait state")
    for what in ("due", "remind_after", "escalate_after"):
        value = getattr(task, what)
        if value is not None and seconds(value) is None:
            found.append(f"task in {state_id!r}: {what} {value!r} is not a duration (3d, 4h)")
    if (task.escalate_after is None) != (task.escalate_to is None):
        found.append(f"task in {state_id!r}: escalate_after and escalate_to go together")
    if task.escalate_to == ANY_APPROVER or ANY_APPROVER in task.groups:
        found.append(f"task in {state_id!r}: name groups; every approver is the default")
    return found


def _wait_problems(chart: type[StateChart[Any]], state_id: str, section: Section) -> list[str]:
    found: list[str] = []
    if state_id in section.receives:
        return found  # it waits for an external event, not (only) for a person
    task = section.tasks.get(state_id)
    if state_id not in section.deciders and not (task and (task.groups or task.users)):
        found.append(
            f"wait state {state_id!r} has nobody to decide: name its group in deciders "
            '(or "*" for any approver)'
        )
    state = chart.states_map[state_id]
    out = {str(e.id) for t in state.transitions for e in t.events}
    if not out & set(section.decisions) and state_id not in section.timers:
        found.append(f"wait state {state_id!r} takes no decision ({', '.join(section.decisions)})")
    return found


def _job_problems(
    state_id: str, job: Any, section: Section, events: set[str], job_kinds: frozenset[str]
) -> list[str]:
    where = f"job in {state_id!r}"
    found = []
    if section.kinds.get(state_id) != "work":
        found.append(f"{where}: a job runs in a work state; say `{state_id}: work` in kinds")
    if job.kind not in BUILT_IN_JOBS and job.kind not in job_kinds:
        known = ", ".join([*BUILT_IN_JOBS, *sorted(job_kinds)])
        found.append(f"{where}: unknown job kind {job.kind!r} (known: {known})")
    if job.kind == "http" and None in (job.url, job.success, job.failure):
        found.append(f"{where}: an http job needs url, success and failure")
    if job.kind == "delay" and (job.event is None or seconds(job.after or "") is None):
        found.append(f"{where}: a delay needs `after` (a duration: 2h) and `event`")
    for event in (job.success, job.failure, job.event):
        if event is not None and event not in events:
            found.append(f"{where}: the chart has no event {event!r}")
    return found


def _reach_problems(chart: type[StateChart[Any]], states: dict[str, Any]) -> list[str]:
    """States the chart cannot enter, and states from which no run can finish (structurally:
    guards are not evaluated)."""

    def ancestors(state: Any) -> list[Any]:
        chain = []
        while state.parent is not None:
            state = state.parent
            chain.append(state)
        return chain

    edges: dict[str, set[str]] = {k: set() for k in states}
    for sid, state in states.items():
        for owner in [state, *ancestors(state)]:
            for t in owner.transitions:
                for target in t.targets:
                    edges[sid].add(str(target.id))
        for child in state.states:  # entering a compound or parallel state enters its children
            if child.initial or state.parallel:
                edges[sid].add(str(child.id))
        if state.parent is not None and state.final:
            edges[sid].add(str(state.parent.id))  # done: its parent's transitions follow
    start = {str(s.id) for s in states.values() if s.initial and s.parent is None}
    seen, todo = set(start), list(start)
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    found = [
        f"state {s!r} cannot be reached from the initial state" for s in states if s not in seen
    ]
    goal = {sid for sid, s in states.items() if s.final and s.parent is None}
    finishing = set(goal)
    changed = True
    while changed:
        changed = False
        for sid in states:
            if sid not in finishing and edges[sid] & finishing:
                finishing.add(sid)
                changed = True
    for sid in seen:
        state = states[sid]
        if sid not in finishing and not state.states:
            found.append(
                f"state {sid!r} has no way to finish: no path leads from it to a final state"
            )
    return found
