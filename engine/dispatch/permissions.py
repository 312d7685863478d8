""" "Why can't I?": every event of a run, allowed or not for this caller, with each reason.

`allowed` is what a dry run of the event says (signoff.engine.dispatch.Dispatcher.dry_run: the
real code path, rolled back), so it can never disagree with sending the event. The reasons are
the same checks the dispatcher makes, each asked on its own so that every one that fails is
listed, not only the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from signoff.engine.charts import snapshots
from signoff.engine.charts.run_charts import allowed_events
from signoff.engine.dispatch import deciders
from signoff.engine.dispatch.dispatcher import Dispatcher
from signoff.engine.errors import (
    ConflictError,
    DuplicateApprovalError,
    EngineError,
    EventNotAllowedError,
    ForbiddenError,
    InvalidEventDataError,
    InvalidInputError,
    RunNotFoundError,
    SeparationOfDutiesError,
    TaskClaimedError,
    TaskForbiddenError,
    TaskNotClaimedError,
    TaskNotOpenError,
)
from signoff.engine.model.lifecycle import CONTROL_EVENTS, LifecycleState
from signoff.engine.model.roles import Role
from signoff.engine.model.tasks import CLAIM, RELEASE
from signoff.engine.storage.schema import RUNS
from signoff.engine.tasks.task import Task, load


class Reason(msgspec.Struct, frozen=True, kw_only=True):
    """Why not: `code` is one of role, group, claimed, counted, separation_of_duties,
    lifecycle, state, guard, data, task."""

    code: str
    message: str


class Permission(msgspec.Struct, frozen=True, kw_only=True):
    """One event (for a region or a task's slot where it has one): whether the caller may send
    it now, and if not, why. `needs_data`: allowed, but only with data it describes."""

    event: str
    allowed: bool
    reasons: list[Reason]
    region: str | None = None
    slot: str | None = None
    needs_data: str | None = None


class Permissions(msgspec.Struct, frozen=True, kw_only=True):
    run_id: str
    version: int
    actor: str
    events: list[Permission]


async def permissions(
    dispatcher: Dispatcher,
    run_id: str,
    *,
    actor: str,
    roles: frozenset[str] | None,
    groups: frozenset[str] | None,
) -> Permissions:
    row = await _row(dispatcher, run_id)
    spec = dispatcher.spec_of(row)
    tasks = load(row["tasks"])
    checks = _Checks(dispatcher, row, tasks, actor, roles, groups)
    events = [e for e in checks.public_events() if e not in spec.internal_events]
    answers: list[Permission] = []
    for event in events:
        per_region = spec.regions and event in spec.decision_events
        regions: list[str | None] = [*sorted(spec.regions)] if per_region else [None]
        for region in regions:
            data = {"region": region} if region else {}
            answers.append(await checks.event(event, data, region))
    for t in tasks:
        for event in (CLAIM, RELEASE):
            answers.append(await checks.task_event(event, t))
    return Permissions(run_id=run_id, version=row["version"], actor=actor, events=answers)


async def _row(dispatcher: Dispatcher, run_id: str) -> dict[str, Any]:
    async with dispatcher.store.read() as conn:
        found = (await conn.execute(RUNS.select().where(RUNS.c.id == run_id))).mappings().first()
    if found is None:
        raise RunNotFoundError(run_id)
    return dict(found)


class _Checks:
    def __init__(
        self,
        dispatcher: Dispatcher,
        row: dict[str, Any],
        tasks: Sequence[Task],
        actor: str,
        roles: frozenset[str] | None,
        groups: frozenset[str] | None,
    ) -> None:
        self.dispatcher = dispatcher
        self.row = row
        self.spec = dispatcher.spec_of(row)
        self.tasks = tasks
        self.actor = actor
        self.roles = roles
        self.groups = groups

    def public_events(self) -> list[str]:
        return [*snapshots.event_names(self.spec.chart), *CONTROL_EVENTS]

    async def event(self, event: str, data: dict[str, Any], region: str | None) -> Permission:
        reasons = self._reasons(event, data)
        allowed, needs = await self._try(event, data, None, reasons)
        return Permission(
            event=event, allowed=allowed, reasons=reasons, region=region, needs_data=needs
        )

    async def task_event(self, event: str, task: Task) -> Permission:
        reasons: list[Reason] = []
        allowed, _ = await self._try(event, {}, task.slot, reasons)
        return Permission(event=event, allowed=allowed, reasons=reasons, slot=task.slot)

    def _reasons(self, event: str, data: dict[str, Any]) -> list[Reason]:
        spec, row, actor = self.spec, self.row, self.actor
        found: list[Reason] = []
        admin = self.roles is None or Role.ADMIN in self.roles
        needed = spec.role_for(event)
        if not admin and self.roles is not None and needed not in self.roles:
            found.append(Reason(code="role", message=f"{actor} lacks the {needed} role."))
        lifecycle = row["lifecycle"]
        if event not in CONTROL_EVENTS and lifecycle in (
            LifecycleState.PAUSED,
            LifecycleState.CANCELLED,
            LifecycleState.COMPLETED,
        ):
            found.append(Reason(code="lifecycle", message=f"The run is {lifecycle}."))
        if not found or found[-1].code != "lifecycle":  # a frozen run takes no event at all
            self._state(event, found)
        return self._decision_reasons(event, data, found, admin)

    def _state(self, event: str, found: list[Reason]) -> None:
        row = self.row
        if event not in self._allowed_now():
            where = ", ".join(row["configuration"]) or "its initial state"
            found.append(Reason(code="state", message=f"{event} is not sent in {where}."))

    def _decision_reasons(
        self, event: str, data: dict[str, Any], found: list[Reason], admin: bool
    ) -> list[Reason]:
        spec, row, actor = self.spec, self.row, self.actor
        if event not in spec.decision_events:
            return found
        region = data.get("region")
        addressed = [t for t in self.tasks if not spec.regions or t.slot == region]
        for t in addressed:
            if not admin:
                try:
                    deciders.task_check(t, actor, self.groups, region=bool(spec.regions))
                except TaskClaimedError as exc:
                    found.append(Reason(code="claimed", message=exc.message))
                except EngineError as exc:
                    found.append(Reason(code="group", message=exc.message))
            if actor in t.voters:
                found.append(Reason(code="counted", message=DuplicateApprovalError(actor).message))
        sod = self.dispatcher.separation_of_duties
        if sod and event in spec.approval_events and actor == row["created_by"]:
            message = f"{actor} created this run; separation of duties forbids approving it."
            found.append(Reason(code="separation_of_duties", message=message))
        return found

    def _allowed_now(self) -> list[str]:
        return allowed_events(
            self.spec,
            self.dispatcher.registry.lifecycle,
            tuple(self.row["configuration"]),
            tuple(self.row["lifecycle_configuration"]),
        )

    async def _try(
        self, event: str, data: dict[str, Any], slot: str | None, reasons: list[Reason]
    ) -> tuple[bool, str | None]:
        """The dry run's verdict; a refusal no check above explained is its own reason."""
        try:
            await self.dispatcher.dry_run(
                self.row["id"], event, actor=self.actor, data=data, roles=self.roles,
                groups=self.groups, slot=slot,
            )  # fmt: skip
        except (InvalidEventDataError, InvalidInputError) as exc:
            # Refused only for want of data (or a reason) the caller would send with it.
            return (False, None) if reasons else (True, exc.message)
        except EngineError as exc:
            if not reasons:
                code = "guard" if isinstance(exc, EventNotAllowedError) else _code(exc)
                reasons.append(Reason(code=code, message=exc.message))
            return False, None
        return True, None


def _code(exc: EngineError) -> str:
    """The reason code of a refusal the dry run met."""
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    return "data"


_CODES: list[tuple[type[EngineError], str]] = [
    (TaskClaimedError, "claimed"),
    (DuplicateApprovalError, "counted"),
    (SeparationOfDutiesError, "separation_of_duties"),
    (TaskForbiddenError, "task"),
    (TaskNotClaimedError, "task"),
    (TaskNotOpenError, "task"),
    (ForbiddenError, "group"),
    (ConflictError, "lifecycle"),
]
