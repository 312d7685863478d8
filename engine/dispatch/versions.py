"""Moving a definition's unfinished runs to a newer version (`signoff migrate-runs`).

Runs stay on the version they started on: a new version registered beside the old one is used
by new runs, and old runs go on restoring their own chart. Moving them is explicit: each run
goes through `Dispatcher.migrate` (one transaction, one `migrate` history entry), and a run in
a state the newer version removed stays where it is and is reported.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select

from signoff.engine.dispatch.dispatcher import Dispatcher
from signoff.engine.errors import RemovedStateError
from signoff.engine.model.lifecycle import FINISHED
from signoff.engine.storage.schema import RUNS


@dataclass
class MigrationReport:
    migrated: list[str] = field(default_factory=list)
    stuck: dict[str, list[str]] = field(default_factory=dict)  # run id -> removed states


async def migrate_runs(
    dispatcher: Dispatcher,
    name: str,
    to_version: int,
    *,
    actor: str = "migrate-runs",
    progress: Callable[[int, int], None] | None = None,
) -> MigrationReport:
    """Move every unfinished run of `name` below `to_version` to it."""
    dispatcher.registry.version(name, to_version)  # refuses an unregistered target up front
    query = (
        select(RUNS.c.id)
        .where(
            RUNS.c.definition == name,
            RUNS.c.definition_version < to_version,
            RUNS.c.lifecycle.not_in(sorted(FINISHED)),
        )
        .order_by(RUNS.c.id)
    )
    async with dispatcher.store.read() as conn:
        ids = list((await conn.execute(query)).scalars())
    report = MigrationReport()
    for done, run_id in enumerate(ids, 1):
        try:
            await dispatcher.migrate(run_id, to_version, actor=actor)
            report.migrated.append(run_id)
        except RemovedStateError as exc:
            report.stuck[run_id] = exc.states
        if progress is not None:
            progress(done, len(ids))
    return report
