"""Replaying a run: a new run of the same definition with the same input and ref, linked back.

The new run is created through `Dispatcher.create` like any other (one transaction, its first
history entry, its jobs), with `replay_of` naming the original; the original is not touched,
and finds its replays by the indexed `runs.replay_of`.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from signoff.engine.dispatch.dispatcher import Dispatcher
from signoff.engine.dispatch.outcome import Outcome
from signoff.engine.errors import PreconditionFailedError, ReplayVersionError, RunNotFoundError
from signoff.engine.storage.records import IdempotencyKey
from signoff.engine.storage.schema import RUNS

_ORIGINAL = (
    RUNS.c.definition,
    RUNS.c.definition_version,
    RUNS.c.version,
    RUNS.c.input,
    RUNS.c.ref_id,
    RUNS.c.ref_type,
)


async def replay(
    dispatcher: Dispatcher,
    run_id: str,
    *,
    actor: str,
    same_version: bool = False,
    if_match: Sequence[int] | None = None,
    idem: IdempotencyKey | None = None,
) -> Outcome:
    """Start a new run replaying `run_id`: on the newest version of its definition, or with
    `same_version` on the version the original is on now. `if_match` refuses (412) if the
    original has moved past those versions; a repeated `idem` answers the first replay."""
    if idem is not None:
        # A repeat answers what the first use did, even if the original moved on since.
        stored = await dispatcher.stored(idem)
        if stored is not None:
            return stored
    async with dispatcher.store.read() as conn:
        row = (await conn.execute(select(*_ORIGINAL).where(RUNS.c.id == run_id))).one_or_none()
    if row is None:
        raise RunNotFoundError(run_id)
    if if_match is not None and row.version not in if_match:
        raise PreconditionFailedError(if_match, row.version)
    version = None
    if same_version:
        registry = dispatcher.registry
        if registry.find(row.definition, row.definition_version) is None:
            why = "this server has not loaded"
        elif (row.definition, row.definition_version) in registry.retired:
            why = "is retired"
        else:
            why = ""
        if why:
            raise ReplayVersionError(run_id, row.definition, row.definition_version, why)
        version = row.definition_version
    return await dispatcher.create(
        row.definition,
        actor=actor,
        input=row.input,
        ref_id=row.ref_id,
        ref_type=row.ref_type,
        idem=idem,
        version=version,
        replay_of=run_id,
    )
