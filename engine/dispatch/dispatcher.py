"""One event = one transaction: the only code path that changes a run."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec
from statemachine.exceptions import TransitionNotAllowed

from signoff.engine.charts import snapshots
from signoff.engine.charts.run_charts import RunCharts
from signoff.engine.dispatch import deciders, schemas, task_actions
from signoff.engine.dispatch.outcome import Committed, Outcome
from signoff.engine.dispatch.task_actions import Caller, Target
from signoff.engine.dispatch.write import Step, write
from signoff.engine.errors import (
    DefinitionNotLoadedError,
    EventNotAllowedError,
    InternalEventError,
    InvalidEventDataError,
    InvalidInputError,
    MigrationTargetError,
    PreconditionFailedError,
    RemovedStateError,
    RunCancelledError,
    RunNotFoundError,
    RunPausedError,
    SeparationOfDutiesError,
    SnapshotError,
    StaleVersionError,
    UnknownEventError,
    WriteConflictError,
)
from signoff.engine.ids import uuid7
from signoff.engine.model import delays
from signoff.engine.model.definition import Definition
from signoff.engine.model.lifecycle import CONTROL_EVENTS, LifecycleState
from signoff.engine.model.registry import Registry
from signoff.engine.model.tasks import TASK_EVENTS, TIMED_TASK_EVENTS
from signoff.engine.observer import Observer
from signoff.engine.storage.jobs import Lease
from signoff.engine.storage.records import IdempotencyKey, StoredOutcome
from signoff.engine.storage.statements import Row, Tx
from signoff.engine.storage.store import Store
from signoff.engine.tasks import task
from signoff.engine.tasks.notify import LinkMaker
from signoff.engine.tasks.task import Task
from signoff.engine.tracing import Tracer

log = logging.getLogger("signoff.dispatcher")
_ENCODER = msgspec.json.Encoder()

# A transaction's body: what it answers, and (unless it only replayed) what it committed.
_Body = Callable[[Tx, datetime], Awaitable[tuple[Outcome, Committed]]]


# Tries of an optimistic transition before the one that locks the run (see _transact).
OPTIMISTIC_TRIES = 2


def utcnow() -> datetime:
    return datetime.now(UTC)


class Dispatcher:
    """Creates runs and applies events, each in one transaction with its history and jobs."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        *,
        max_attempts: int = 5,
        separation_of_duties: bool = False,
        max_input_bytes: int = 32 * 1024,
        observer: Observer | None = None,
        clock: Callable[[], datetime] = utcnow,
        tracer: Tracer | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.max_attempts = max_attempts
        self.separation_of_duties = separation_of_duties
        self.max_input_bytes = max_input_bytes
        self.observer = observer or Observer()
        self.clock = clock
        self.tracer = tracer or Tracer()
        # Called after each commit; one that raises is logged and counted, never the caller's
        # problem: the transition is committed whatever a listener does.
        self.listeners: list[Callable[[Committed], None]] = []
        # Makes a task's approval links for its notifications (None: no links).
        self.links: LinkMaker | None = None

    async def create(
        self,
        definition: str,
        *,
        actor: str,
        input: Mapping[str, Any] | None = None,
        ref_id: str | None = None,
        ref_type: str | None = None,
        idem: IdempotencyKey | None = None,
        version: int | None = None,
        replay_of: str | None = None,
    ) -> Outcome:
        """Start a run of `definition` in its initial state (version 1, one history entry):
        on its newest version, or on `version`; `replay_of` names the run it replays."""
        spec = (
            self.registry.get(definition)
            if version is None
            else self.registry.version(definition, version)
        )
        data = dict(input or {})
        self._check_size("input", data)
        _validate_input(spec, data)
        return await self._transact(
            idem,
            lambda tx, now: self._create(tx, now, spec, actor, data, ref_id, ref_type, replay_of),
            # Without a key to record, creating is one statement on PostgreSQL, atomic
            # without a transaction block around it.
            single=idem is None,
            event="create",
        )

    async def dispatch(
        self,
        run_id: str,
        event: str,
        *,
        actor: str,
        data: Mapping[str, Any] | None = None,
        reason: str | None = None,
        if_match: Sequence[int] | None = None,
        idem: IdempotencyKey | None = None,
        lease: Lease | None = None,
        internal: bool = False,
        roles: frozenset[str] | None = None,
        groups: frozenset[str] | None = None,
    ) -> Outcome:
        """Apply `event` to a run. `internal` lets workers and timers send internal events;
        `roles` and `groups` are the caller's (None: not limited; see deciders.check)."""
        if data:
            self._check_size("data", data)
        request = dict(data or {})
        # Without a key to record or a lease to settle, the transition's only write is the
        # statement that stores it: see _transact's `optimistic`.
        optimistic = idem is None and lease is None
        return await self._transact(
            idem,
            lambda tx, now: self._apply(
                tx,
                now,
                run_id,
                event,
                actor,
                request,
                reason,
                if_match,
                lease,
                internal,
                roles,
                groups,
            ),
            optimistic=optimistic,
            event=event,
            run_id=run_id,
        )

    async def dry_run(
        self,
        run_id: str,
        event: str,
        *,
        actor: str,
        data: Mapping[str, Any] | None = None,
        reason: str | None = None,
        if_match: Sequence[int] | None = None,
        roles: frozenset[str] | None = None,
        groups: frozenset[str] | None = None,
        slot: str | None = None,
    ) -> tuple[Outcome, Committed]:
        """What `event` would do, decided by the very code that does it: the event is applied
        and written in a transaction that is then rolled back. A task event people send
        (`task.claim`, …) is tried on the task in `slot`."""
        if data:
            self._check_size("data", data)
        request = dict(data or {})
        try:
            async with self.store.write() as tx:
                if event in TASK_EVENTS - TIMED_TASK_EVENTS:
                    caller = Caller(actor, roles or frozenset(), groups)
                    body = self._task_body(event, caller, slot, None, reason, if_match, run_id)
                    tried = await body(tx, self.clock())
                else:
                    tried = await self._apply(
                        tx, self.clock(), run_id, event, actor, request, reason, if_match,
                        None, False, roles, groups,
                    )  # fmt: skip
                raise _RolledBack(tried)
        except _RolledBack as done:
            return done.tried

    async def act(
        self,
        run_id: str,
        event: str,
        *,
        actor: str,
        slot: str | None = None,
        target: Target | None = None,
        reason: str | None = None,
        if_match: Sequence[int] | None = None,
        idem: IdempotencyKey | None = None,
        roles: frozenset[str] | None = None,
        groups: frozenset[str] | None = None,
    ) -> Outcome:
        """A person's task event (signoff.engine.model.tasks): claim, release, reassign or
        delegate the task in `slot` (None: the run's only open task), to `target`."""
        if event not in TASK_EVENTS - TIMED_TASK_EVENTS:
            raise InvalidEventDataError(f"{event!r} is not a task event people send.")
        caller = Caller(actor, roles or frozenset(), groups)
        return await self._transact(
            idem,
            self._task_body(event, caller, slot, target, reason, if_match, run_id),
            optimistic=idem is None,
            event=event,
            run_id=run_id,
        )

    def _task_body(
        self,
        event: str,
        caller: Caller,
        slot: str | None,
        target: Target | None,
        reason: str | None,
        if_match: Sequence[int] | None,
        run_id: str,
    ) -> _Body:
        async def body(tx: Tx, now: datetime) -> tuple[Outcome, Committed]:
            row = await self.store.lock_run(tx, run_id)
            if row is None:
                raise RunNotFoundError(run_id)
            spec = self.spec_of(row)
            tasks = task.load(row["tasks"])
            return await self._act(
                tx, now, row, spec, tasks, event, caller, slot, target, reason, if_match
            )

        return body

    async def migrate(
        self,
        run_id: str,
        to_version: int,
        *,
        actor: str,
        if_match: Sequence[int] | None = None,
        idem: IdempotencyKey | None = None,
    ) -> Outcome:
        """Move a run to a newer version of its definition: each version's `migrate` maps the
        stored configuration and context on the way; the run keeps its place otherwise. Written
        as a `migrate` history entry. RemovedStateError if the run sits in a state the target
        version no longer has (it then stays where it is)."""
        return await self._transact(
            idem,
            lambda tx, now: self._migrate(tx, now, run_id, to_version, actor, if_match),
            event="migrate",
            run_id=run_id,
        )

    async def _migrate(
        self,
        tx: Tx,
        now: datetime,
        run_id: str,
        to_version: int,
        actor: str,
        if_match: Sequence[int] | None,
    ) -> tuple[Outcome, Committed]:
        row = await self.store.lock_run(tx, run_id)
        if row is None:
            raise RunNotFoundError(run_id)
        if if_match is not None and row["version"] not in if_match:
            raise PreconditionFailedError(if_match, row["version"])
        source = self.spec_of(row)
        target = self.registry.version(source.name, to_version)
        if target.version <= source.version:
            raise MigrationTargetError(
                f"Run {run_id} is on {source.name} v{source.version}; it can only move to a "
                "newer version."
            )
        configuration, context = list(row["configuration"]), dict(row["context"])
        for step in self.registry.versions(source.name):
            if source.version < step.version <= target.version:
                if step.migrate is not None:
                    configuration, context = step.migrate(configuration, context)
                gone = [s for s in configuration if s not in step.chart.states_map]
                if gone:
                    raise RemovedStateError(run_id, step.name, step.version, gone)
        states = target.chart.states_map
        history = {
            k: v
            for k, v in row["business_history"].items()
            if k in states and all(s in states for s in v)
        }
        moved = {**row, "configuration": sorted(configuration), "business_history": history}
        moved["context"] = context
        charts = RunCharts.restore(target, self.registry.lifecycle, moved, row["input"])
        before = {
            **row,
            "definition_version": target.version,
            "definition_hash": target.structural_hash,
        }
        data = {"from_version": source.version, "to_version": target.version}
        return await self._write(tx, Step(now, charts, before, "migrate", actor, data, None))

    async def stored(self, idem: IdempotencyKey) -> Outcome | None:
        """What the first request with this key answered, if it was recorded (a repeat may
        need to know before it reads anything else: a replay, a bulk action)."""
        async with self.store.write() as tx:
            stored = await self.store.find_outcome(tx, idem)
        return None if stored is None else _replayed(stored)

    def _check_size(self, what: str, value: Mapping[str, Any]) -> None:
        size = len(_ENCODER.encode(value))
        if size > self.max_input_bytes:
            raise InvalidInputError(
                f"The {what} is {size} bytes of JSON; the limit is {self.max_input_bytes}."
            )

    async def _transact(
        self,
        idem: IdempotencyKey | None,
        body: _Body,
        *,
        single: bool = False,
        optimistic: bool = False,
        event: str,
        run_id: str | None = None,
    ) -> Outcome:
        """Run `body` in a write transaction. `optimistic`: its one write is the statement
        that stores the transition, so it may run without a transaction block (`single`): on
        PostgreSQL the run is then read without a lock, and the statement writes nothing if
        the run's version moved on meanwhile; the body is then tried again on the new state,
        the last time in a transaction that locks the run (two round trips instead of four)."""
        for tries in range(OPTIMISTIC_TRIES if optimistic else 0, -1, -1):
            try:
                return await self._transact_once(idem, body, single or tries > 0, event, run_id)
            except StaleVersionError:
                if tries == 0:
                    raise
        raise AssertionError("unreachable")

    async def _transact_once(
        self,
        idem: IdempotencyKey | None,
        body: _Body,
        single: bool,
        event: str,
        run_id: str | None,
    ) -> Outcome:
        for attempt in (1, 2):
            try:
                return await self._once(idem, body, single, event, run_id)
            except WriteConflictError:
                # Two requests with one Idempotency-Key raced on PostgreSQL: the loser's
                # transaction rolled back; the second pass finds and replays the winner's.
                if idem is None or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _once(
        self,
        idem: IdempotencyKey | None,
        body: _Body,
        single: bool,
        event: str,
        run_id: str | None,
    ) -> Outcome:
        started = time.perf_counter()
        now = self.clock()
        with self.tracer.transition(event, run_id) as span:
            async with self.store.write(single=single) as tx:
                if idem is not None:
                    stored = await self.store.find_outcome(tx, idem)
                    if stored is not None:
                        return _replayed(stored)
                outcome, committed = await body(tx, now)
                if idem is not None:
                    answer = StoredOutcome(outcome.created, outcome.body)
                    await self.store.record_outcome(tx, idem, answer, now)
            span.committed(committed.definition, committed.run_id, committed.entry)
        self.observer.transition(
            committed.definition, committed.event, time.perf_counter() - started
        )
        for listener in self.listeners:
            try:
                listener(committed)
            except Exception:
                log.exception("a commit listener failed on run %s", committed.run_id)
                self.observer.listener_failure()
        return outcome

    async def _create(
        self,
        tx: Tx,
        now: datetime,
        spec: Definition,
        actor: str,
        data: dict[str, Any],
        ref_id: str | None,
        ref_type: str | None,
        replay_of: str | None = None,
    ) -> tuple[Outcome, Committed]:
        charts = RunCharts.restore(spec, self.registry.lifecycle, None, data)
        derived = charts.derived_lifecycle_event()
        if derived is not None:  # a chart that starts in a wait (or work) state
            charts.send_lifecycle(derived)
        row = {
            "id": uuid7(),
            "definition": spec.name,
            "definition_version": spec.version,
            "definition_hash": spec.structural_hash,
            "ref_id": ref_id,
            "ref_type": ref_type,
            "input": data,
            "created_by": actor,
            "created_at": now,
            "version": 0,
            "replay_of": replay_of,
            "entered": {},
        }
        step = Step(now, charts, row, "create", actor, {}, None, new=True)
        return await self._write(tx, step)

    async def _apply(
        self,
        tx: Tx,
        now: datetime,
        run_id: str,
        event: str,
        actor: str,
        data: dict[str, Any],
        reason: str | None,
        if_match: Sequence[int] | None,
        lease: Lease | None,
        internal: bool,
        roles: frozenset[str] | None,
        groups: frozenset[str] | None,
    ) -> tuple[Outcome, Committed]:
        # The run row is always locked before any of its job rows, so no two transactions
        # can wait on each other.
        row = await self.store.lock_run(tx, run_id)
        if row is None:
            raise RunNotFoundError(run_id)
        if lease is not None:
            await self.store.settle_job(tx, lease, now)
        spec = self.spec_of(row)
        tasks = task.load(row["tasks"])
        if event in TASK_EVENTS:  # a timer's remind or escalate (people use `act`)
            if not internal:
                raise InternalEventError(event)
            slot = data.get("slot")
            caller = Caller(actor, None, None)
            return await self._act(tx, now, row, spec, tasks, event, caller, slot, None, None)
        # What is wrong with the request itself is said before what is stale about it.
        if event not in CONTROL_EVENTS:
            if not snapshots.declares(spec.chart, event):
                raise UnknownEventError(event, _public_events(spec))
            if event in spec.internal_events and not internal:
                raise InternalEventError(event)
            schemas.check_event_data(spec, event, data)
        deciders.check(spec, event, data, actor, roles, groups, row["configuration"], tasks)
        if if_match is not None and row["version"] not in if_match:
            raise PreconditionFailedError(if_match, row["version"])
        charts = RunCharts.restore(spec, self.registry.lifecycle, row, row["input"])
        if event in CONTROL_EVENTS:
            try:
                charts.send_lifecycle(event)
            except TransitionNotAllowed as exc:
                state = list(charts.lifecycle.configuration)
                raise EventNotAllowedError(run_id, event, state, charts.allowed_events()) from exc
        else:
            if row["lifecycle"] == LifecycleState.PAUSED:
                raise RunPausedError(charts.allowed_events())
            if row["lifecycle"] == LifecycleState.CANCELLED:
                raise RunCancelledError()
            if (
                self.separation_of_duties
                and event in spec.approval_events
                and actor == row["created_by"]
            ):
                raise SeparationOfDutiesError()
            at = now.isoformat().replace("+00:00", "Z")
            try:
                charts.business.send(event, data=data, reason=reason, actor=actor, at=at)
            except TransitionNotAllowed as exc:
                state = snapshots.configuration(charts.business)
                raise EventNotAllowedError(run_id, event, state, charts.allowed_events()) from exc
            except (LookupError, TypeError, ValueError, ArithmeticError) as exc:
                if spec.source == "code":
                    raise  # a bug in a code chart: it fails loudly and the transaction rolls back
                # A document's guard could not read this event's data (a missing key, a
                # string compared with a number): the sender's data, not a server fault.
                raise InvalidEventDataError(
                    f"{spec.name}'s guards cannot evaluate {event!r} with this data: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            derived = charts.derived_lifecycle_event()
            if derived is not None:
                charts.send_lifecycle(derived)
        keep = lease.job_id if lease else None
        recorded = _on_behalf(spec, tasks, event, actor, data)
        step = Step(
            now, charts, row, event, actor, recorded, reason, keep_job=keep, open_tasks=tasks
        )
        return await self._write(tx, step)

    async def _act(
        self,
        tx: Tx,
        now: datetime,
        row: Row,
        spec: Definition,
        tasks: list[Task],
        event: str,
        caller: Caller,
        slot: Any,
        target: Target | None,
        reason: str | None,
        if_match: Sequence[int] | None = None,
    ) -> tuple[Outcome, Committed]:
        """A task event: claim, release, reassign, delegate, or a timer's remind / escalate."""
        if row["lifecycle"] == LifecycleState.PAUSED:
            raise RunPausedError([])
        if slot is not None and not isinstance(slot, str):
            raise InvalidEventDataError("`slot` names the task: a string.")
        declared = next((spec.tasks.get(t.state) for t in tasks if t.slot == slot), None)
        action = task_actions.act(
            tasks,
            event,
            slot,
            caller,
            run_id=row["id"],
            created_by=row["created_by"],
            separation_of_duties=self.separation_of_duties,
            target=target,
            escalate_to=declared.escalate_to if declared else None,
        )
        if if_match is not None and row["version"] not in if_match:
            raise PreconditionFailedError(if_match, row["version"])
        charts = RunCharts.restore(spec, self.registry.lifecycle, row, row["input"])
        step = Step(
            now, charts, row, event, caller.actor, action.data, reason,
            tasks=action.plan, acted_on=action.task,
        )  # fmt: skip
        return await self._write(tx, step)

    def attempts_for(self, kind: str) -> int:
        """How many attempts a job of `kind` gets: its own retry policy's, else the default."""
        job = self.registry.jobs.get(kind)
        if job is not None and job.retry is not None:
            return job.retry.max_attempts
        return self.max_attempts

    def spec_of(self, row: Row) -> Definition:
        """The definition version the run is on; refuses a run whose definition (version) this
        process has not loaded, and a chart changed under that version."""
        spec = self.registry.find(row["definition"], row["definition_version"])
        if spec is None:
            raise DefinitionNotLoadedError(row["id"], row["definition"], row["definition_version"])
        stored = row.get("definition_hash")
        if stored is not None and stored != spec.structural_hash:
            raise SnapshotError(
                f"Run {row['id']} was stored by {spec.name} v{spec.version} with chart structure "
                f"{stored}, but the registered v{spec.version} has {spec.structural_hash}: the "
                "chart changed without a new version. Register the changed chart as a new "
                "version (keeping the old one beside it), then migrate runs if needed."
            )
        return spec

    async def _write(self, tx: Tx, step: Step) -> tuple[Outcome, Committed]:
        # The delays of the states the transition entered become timers in its transaction.
        spec, charts = step.charts.definition, step.charts
        if spec.delays:
            before = () if step.new else step.before["configuration"]
            after = snapshots.configuration(charts.business)
            charts.model.requests.extend(delays.requests(spec.delays, before, after))
        return await write(self.store, tx, step, self.attempts_for, self.links)


def _replayed(stored: StoredOutcome) -> Outcome:
    head = _HEAD.decode(stored.body)
    return Outcome(head.id, head.version, stored.body, created=stored.created, replayed=True)


# Not an error: how a dry run leaves its transaction, carrying what it would have written.
class _RolledBack(Exception):
    def __init__(self, tried: tuple[Outcome, Committed]) -> None:
        super().__init__("dry run")
        self.tried = tried


class _Head(msgspec.Struct):
    id: str
    version: int


_HEAD = msgspec.json.Decoder(_Head)


def _on_behalf(
    spec: Definition, tasks: list[Task], event: str, actor: str, data: dict[str, Any]
) -> dict[str, Any]:
    """A decision's data as recorded: with `acting_for` when a delegate decides."""
    if event not in spec.decision_events:
        return data
    region = data.get("region")
    for t in tasks:
        if t.assignee == actor and t.acting_for and (not spec.regions or t.slot == region):
            return {**data, "acting_for": t.acting_for}
    return data


def _public_events(spec: Definition) -> list[str]:
    events = snapshots.event_names(spec.chart)
    return [e for e in events if e not in spec.internal_events] + list(CONTROL_EVENTS)


def _validate_input(spec: Definition, data: dict[str, Any]) -> None:
    if spec.input_schema is not None:
        problem = schemas.first_problem(spec.input_schema, data)
        if problem is not None:
            raise InvalidInputError(f"Invalid input for {spec.name!r}: {problem}")
    if spec.input_type is None:
        return
    try:
        msgspec.convert(data, spec.input_type)
    except msgspec.ValidationError as exc:
        raise InvalidInputError(f"Invalid input for {spec.name!r}: {exc}") from exc
