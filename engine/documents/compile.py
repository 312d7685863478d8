"""A chart document → a Definition: read, checked, built with `statemachine.io.load`
(`trusted=False`, always), and given the behaviour its `signoff` section declares."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
from statemachine.io import load

from signoff.engine.documents import behaviour, checks
from signoff.engine.documents.parse import Parsed, parse
from signoff.engine.documents.section import ANY_APPROVER, Section, Task, seconds
from signoff.engine.errors import DocumentRejectedError
from signoff.engine.model import triggers
from signoff.engine.model.definition import Definition, StateKind
from signoff.engine.model.delays import Delay
from signoff.engine.model.tasks import WaitTask

DEFAULT_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class Compiled:
    name: str
    format: str
    hash: str  # sha256 of the document's text: its identity across versions
    definition: Definition


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def compile_document(
    text: str,
    fmt: str,
    *,
    version: int = 1,
    job_kinds: frozenset[str] = frozenset(),
    max_bytes: int = DEFAULT_MAX_BYTES,
    allowed_hosts: Sequence[str] = (),
) -> Compiled:
    """The definition a document declares, as version `version`; DocumentRejectedError lists
    every reason it cannot run. `job_kinds` are the kinds loaded packs provide; `allowed_hosts`
    the hosts its http jobs may call (none: any)."""
    parsed = parse(text, fmt, max_bytes)
    reasons = checks.read_problems(parsed.ir)
    reasons += _schema_problems(parsed.section)
    if reasons:
        raise DocumentRejectedError(reasons)
    try:
        loaded = load(parsed.chart_text, format=parsed.chart_format, trusted=False)
    except Exception as exc:
        raise DocumentRejectedError([f"the chart cannot be built: {exc}"]) from None
    reasons = checks.built_problems(loaded, parsed.section, job_kinds, allowed_hosts)
    if reasons:
        raise DocumentRejectedError(reasons)
    return Compiled(parsed.name, fmt, digest(text), _definition(parsed, loaded, version))


def _schema_problems(section: Section) -> list[str]:
    schemas = [("input_schema", section.input_schema)]
    schemas += [(f"events.{e}.data", ev.data) for e, ev in section.events.items()]
    return [p for where, schema in schemas if schema is not None for p in _schema(where, schema)]


def _schema(where: str, schema: dict[str, Any]) -> list[str]:
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return [f"{where} is not a JSON Schema: {exc.message}"]
    # A reference outside the schema would make checking a value fetch it from elsewhere.
    outside = sorted({ref for ref in _refs(schema) if not ref.startswith("#")})
    if outside:
        return [f"{where} may refer only within itself, not to {', '.join(outside)}"]
    return []


def _refs(node: Any) -> list[str]:
    """Every `$ref` in a JSON value (its depth is bounded by the document's)."""
    if isinstance(node, dict):
        found = [str(v) for k, v in node.items() if k in ("$ref", "$dynamicRef")]
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def _definition(parsed: Parsed, loaded: Any, version: int) -> Definition:
    section = parsed.section
    successes = [j.success for j in section.jobs.values() if j.success]
    failures = [j.failure for j in section.jobs.values() if j.failure]
    timed = [j.event for j in section.jobs.values() if j.event]
    timed += [t.event for ts in section.timers.values() for t in ts]
    chart = behaviour.chart_class(loaded, section, successes, failures)
    decisions = frozenset(section.decisions)
    return Definition(
        name=parsed.name,
        version=version,
        chart=chart,
        kinds={state: StateKind(kind) for state, kind in section.kinds.items()},
        internal_events=frozenset([*successes, *failures, *timed]),
        description=parsed.description,
        approval_events=decisions & {behaviour.APPROVE},
        decision_events=decisions,
        deciders={s: g for s, g in section.deciders.items() if g != ANY_APPROVER},
        examples=section.examples,
        example_inputs=section.example_inputs or ({},),
        input_schema=section.input_schema,
        source=parsed.format,
        tasks={state: _task(t) for state, t in section.tasks.items()},
        event_schemas={e: ev.data for e, ev in section.events.items() if ev.data is not None},
        delays=_delays(section),
        slas={state: seconds(sla) or 0.0 for state, sla in section.slas.items()},
        triggers=[triggers.Trigger(t.event, t.when, t.input) for t in section.triggers],
        receives={
            state: {name: triggers.Receive(r.event, r.correlate) for name, r in names.items()}
            for state, names in section.receives.items()
        },
    )


def _delays(section: Section) -> dict[str, list[Delay]]:
    """A document's delays: its `after` timers and its `delay` jobs (checked: each has a
    duration and an event)."""
    found: dict[str, list[Delay]] = {}
    timed: list[tuple[str, str | None, str | None]]
    timed = [(s, t.after, t.event) for s, ts in section.timers.items() for t in ts]
    timed += [(s, j.after, j.event) for s, j in section.jobs.items() if j.kind == "delay"]
    for state, after, event in timed:
        if after is not None and event is not None:
            found.setdefault(state, []).append(Delay(seconds(after) or 0.0, event))
    return found


def _task(task: Task) -> WaitTask:
    def after(text: str | None) -> float | None:
        return None if text is None else seconds(text)

    return WaitTask(
        groups=tuple(task.groups),
        users=tuple(task.users),
        due_after_s=after(task.due),
        remind_after_s=after(task.remind_after),
        escalate_after_s=after(task.escalate_after),
        escalate_to=task.escalate_to,
    )
