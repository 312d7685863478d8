"""Bulk actions by filter: cancel, retry, replay, pause, resume or migrate every matching run.

Planning reads the matching runs with the versions they have then. Each run is then its own
transaction through the dispatcher, with If-Match set to that version, so a run that moved
meanwhile is refused (412) and reported skipped, never forced; a run the action does not apply
to (resuming a run that is not paused) is skipped with the refusal. Under an Idempotency-Key
the plan is stored with the key, and each run's action carries a key derived from it: a repeat
(or a retry after a crash midway) acts on the same runs, answers what was done with the stored
outcomes, reports the same skips, and finishes the rest.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import msgspec
from sqlalchemy import Select, func, select

from signoff.engine.dispatch.dispatcher import Dispatcher
from signoff.engine.dispatch.outcome import Outcome
from signoff.engine.dispatch.replay import replay
from signoff.engine.errors import (
    ConflictError,
    DefinitionNotFoundError,
    EngineError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    PreconditionFailedError,
    WriteConflictError,
)
from signoff.engine.model.lifecycle import FINISHED
from signoff.engine.storage.records import IdempotencyKey, StoredOutcome
from signoff.engine.storage.schema import RUNS

log = logging.getLogger("signoff.bulk")

MAX_RUNS = 10_000  # a plan is stored whole with its key; wider filters are split by time
PREVIEW_IDS = 20


class BulkAction(StrEnum):
    CANCEL = "cancel"
    RETRY = "retry"
    REPLAY = "replay"
    PAUSE = "pause"
    RESUME = "resume"
    MIGRATE = "migrate"


@dataclass(frozen=True)
class BulkFilter:
    """Which runs: every given criterion must hold (`created_after` inclusive)."""

    definition: str | None = None
    state: str | None = None
    lifecycle: str | None = None
    ref_type: str | None = None
    ref_id: str | None = None
    created_before: datetime | None = None
    created_after: datetime | None = None


@dataclass(frozen=True)
class BulkOrder:
    """An action for the runs `where` matches; `to_version` is migrate's target,
    `same_version` keeps a replay on the original's version, `reason` goes into history."""

    action: BulkAction
    where: BulkFilter
    to_version: int | None = None
    same_version: bool = False
    reason: str | None = None


class BulkPreview(msgspec.Struct, frozen=True, kw_only=True):
    """A dry run: how many runs match now (the first ids, oldest first); nothing changed."""

    dry_run: bool
    action: str
    matched: int
    run_ids: list[str]


class BulkStarted(msgspec.Struct, frozen=True, kw_only=True, tag="start", tag_field="type"):
    """The first line: the action and how many runs it takes (`repeat`: the plan is the one
    stored with the Idempotency-Key)."""

    action: str
    matched: int
    repeat: bool


class BulkRunResult(msgspec.Struct, frozen=True, kw_only=True, tag="run", tag_field="type"):
    """What became of one run: `done` (its new `version`; a replay's `new_run_id`),
    `skipped` (refused, `reason` and `problem` say why; the run unchanged) or `failed` (the
    server could not act now; a repeat with the key tries again)."""

    run_id: str
    outcome: Literal["done", "skipped", "failed"]
    version: int | None = None
    new_run_id: str | None = None
    reason: str | None = None
    problem: dict[str, Any] | None = None


class BulkSummary(msgspec.Struct, frozen=True, kw_only=True, tag="summary", tag_field="type"):
    done: int
    skipped: int
    failed: int


BulkLine = BulkStarted | BulkRunResult | BulkSummary


@dataclass(frozen=True)
class BulkPlan:
    runs: list[tuple[str, int]]  # (run id, version when matched), oldest first
    repeat: bool = False


class _StoredPlan(msgspec.Struct, frozen=True):
    runs: list[tuple[str, int]]


@dataclass(frozen=True)
class BulkCaller:
    actor: str
    roles: frozenset[str] | None = None
    groups: frozenset[str] | None = None


class Bulk:
    """Plans and runs bulk actions; `describe` renders a refusal as its problem body."""

    def __init__(
        self, dispatcher: Dispatcher, describe: Callable[[EngineError], dict[str, Any]]
    ) -> None:
        self.dispatcher = dispatcher
        self.describe = describe

    def check(self, order: BulkOrder) -> None:
        """Refuse an order that cannot be carried out as asked, before anything is read."""
        where, action = order.where, order.action
        if all(v is None for v in vars(where).values()):
            raise InvalidRequestError("A bulk action needs a filter: at least one criterion.")
        before, after = where.created_before, where.created_after
        if before is not None and after is not None and after >= before:
            raise InvalidRequestError("created_after must be before created_before.")
        if (order.to_version is not None) != (action is BulkAction.MIGRATE):
            raise InvalidRequestError("to_version is migrate's target, and migrate needs it.")
        if order.same_version and action is not BulkAction.REPLAY:
            raise InvalidRequestError("same_version applies to replay only.")
        if action is BulkAction.MIGRATE:
            if where.definition is None:
                raise InvalidRequestError("migrate needs the definition in its filter.")
            assert order.to_version is not None
            registry = self.dispatcher.registry
            if not registry.versions(where.definition):
                raise DefinitionNotFoundError(where.definition)
            if registry.find(where.definition, order.to_version) is None:
                raise InvalidRequestError(
                    f"{where.definition} has no version {order.to_version} loaded here."
                )

    async def preview(self, order: BulkOrder) -> BulkPreview:
        self.check(order)
        query = _matching(order)
        count = select(func.count()).select_from(query.subquery())
        async with self.dispatcher.store.read() as conn:
            matched = (await conn.execute(count)).scalar_one()
            first = (await conn.execute(query.limit(PREVIEW_IDS))).all()
        return BulkPreview(
            dry_run=True, action=order.action, matched=matched, run_ids=[r.id for r in first]
        )

    async def plan(self, order: BulkOrder, now: datetime, idem: IdempotencyKey | None) -> BulkPlan:
        """The runs to act on: those matching now, or the ones stored with `idem`."""
        self.check(order)
        store = self.dispatcher.store
        if idem is not None:
            async with store.write() as tx:
                stored = await store.find_outcome(tx, idem)
            if stored is not None:
                return BulkPlan(_PLAN.decode(stored.body).runs, repeat=True)
        async with store.read() as conn:
            rows = (await conn.execute(_matching(order).limit(MAX_RUNS + 1))).all()
        if len(rows) > MAX_RUNS:
            raise InvalidRequestError(
                f"More than {MAX_RUNS} runs match; a bulk action takes at most {MAX_RUNS}: "
                "narrow the filter (created_before, created_after)."
            )
        plan = BulkPlan([(r.id, r.version) for r in rows])
        if idem is None:
            return plan
        body = msgspec.json.encode(_StoredPlan(plan.runs))
        try:
            async with store.write() as tx:
                stored = await store.find_outcome(tx, idem)
                if stored is None:
                    await store.record_outcome(tx, idem, StoredOutcome(False, body), now)
        except WriteConflictError:  # a concurrent first use stored its plan first
            stored = await _find(self.dispatcher, idem)
        if stored is not None:
            return BulkPlan(_PLAN.decode(stored.body).runs, repeat=True)
        return plan

    async def run(
        self, order: BulkOrder, plan: BulkPlan, caller: BulkCaller, idem: IdempotencyKey | None
    ) -> AsyncIterator[BulkLine]:
        """Act on each planned run in its own transaction, yielding its result as it lands."""
        yield BulkStarted(action=order.action, matched=len(plan.runs), repeat=plan.repeat)
        tally = {"done": 0, "skipped": 0, "failed": 0}
        for run_id, version in plan.runs:
            result = await self._one(order, plan, caller, idem, run_id, version)
            tally[result.outcome] += 1
            yield result
        yield BulkSummary(**tally)

    async def _one(
        self,
        order: BulkOrder,
        plan: BulkPlan,
        caller: BulkCaller,
        idem: IdempotencyKey | None,
        run_id: str,
        version: int,
    ) -> BulkRunResult:
        acted = None if idem is None else _derived(idem, run_id, "bulk")
        skipped = None if idem is None else _derived(idem, run_id, "bulk skipped")
        if plan.repeat and skipped is not None:
            stored = await _find(self.dispatcher, skipped)
            if stored is not None:
                return _RESULT.decode(stored.body)
        try:
            outcome = await self._act(order, caller, run_id, version, acted)
        except (NotFoundError, InvalidRequestError, ForbiddenError, ConflictError) as exc:
            if isinstance(exc, WriteConflictError):
                return self._failed(run_id, exc)
            reason = exc.message
            if isinstance(exc, PreconditionFailedError):
                reason = f"changed meanwhile: matched at version {version}, now {exc.actual}"
            result = BulkRunResult(
                run_id=run_id, outcome="skipped", reason=reason, problem=self.describe(exc)
            )
            if skipped is not None:
                await self._remember(skipped, result)
            return result
        except EngineError as exc:  # storage unavailable, a chart changed under its version
            return self._failed(run_id, exc)
        except Exception as exc:
            log.exception("bulk %s failed on run %s", order.action, run_id)
            return BulkRunResult(
                run_id=run_id, outcome="failed", reason=f"{type(exc).__name__}: the server failed"
            )
        if order.action is BulkAction.REPLAY:
            return BulkRunResult(
                run_id=run_id, outcome="done", new_run_id=outcome.run_id, version=outcome.version
            )
        return BulkRunResult(run_id=run_id, outcome="done", version=outcome.version)

    async def _act(
        self,
        order: BulkOrder,
        caller: BulkCaller,
        run_id: str,
        version: int,
        idem: IdempotencyKey | None,
    ) -> Outcome:
        d, match = self.dispatcher, [version]
        if order.action is BulkAction.REPLAY:
            return await replay(
                d, run_id, actor=caller.actor, same_version=order.same_version,
                if_match=match, idem=idem,
            )  # fmt: skip
        if order.action is BulkAction.MIGRATE:
            assert order.to_version is not None
            return await d.migrate(
                run_id, order.to_version, actor=caller.actor, if_match=match, idem=idem
            )
        return await d.dispatch(
            run_id, order.action, actor=caller.actor, reason=order.reason, if_match=match,
            idem=idem, roles=caller.roles, groups=caller.groups,
        )  # fmt: skip

    def _failed(self, run_id: str, exc: EngineError) -> BulkRunResult:
        return BulkRunResult(
            run_id=run_id, outcome="failed", reason=exc.message, problem=self.describe(exc)
        )

    async def _remember(self, key: IdempotencyKey, result: BulkRunResult) -> None:
        """Keep a skip, so that a repeat reports it as it was (a refusal commits nothing)."""
        store = self.dispatcher.store
        body = msgspec.json.encode(result)
        try:
            async with store.write() as tx:
                if await store.find_outcome(tx, key) is None:
                    await store.record_outcome(
                        tx, key, StoredOutcome(False, body), self.dispatcher.clock()
                    )
        except EngineError:
            # A concurrent repeat stored it first, or storage failed: the skip is reported
            # now either way, and a repeat finds the run's state refuses it again.
            log.warning("could not keep bulk skip of run %s", result.run_id, exc_info=True)


_PLAN = msgspec.json.Decoder(_StoredPlan)
_RESULT = msgspec.json.Decoder(BulkRunResult)


def _derived(idem: IdempotencyKey, run_id: str, route: str) -> IdempotencyKey:
    """One run's key within a keyed bulk request (the client's key may be 255 characters)."""
    digest = hashlib.sha256(idem.key.encode()).hexdigest()[:32]
    return replace(idem, key=f"bulk:{digest}:{run_id}", route=route)


async def _find(dispatcher: Dispatcher, idem: IdempotencyKey) -> StoredOutcome | None:
    async with dispatcher.store.write() as tx:
        return await dispatcher.store.find_outcome(tx, idem)


def _matching(order: BulkOrder) -> Select[Any]:
    where = order.where
    query = select(RUNS.c.id, RUNS.c.version).order_by(RUNS.c.id)
    for column in ("definition", "state", "lifecycle", "ref_type", "ref_id"):
        value = getattr(where, column)
        if value is not None:
            query = query.where(RUNS.c[column] == value)
    if where.created_before is not None:
        query = query.where(RUNS.c.created_at < where.created_before)
    if where.created_after is not None:
        query = query.where(RUNS.c.created_at >= where.created_after)
    if order.action is BulkAction.MIGRATE:  # as `signoff migrate-runs`: older, unfinished
        assert order.to_version is not None
        query = query.where(
            RUNS.c.definition_version < order.to_version,
            RUNS.c.lifecycle.not_in(sorted(FINISHED)),
        )
    return query
