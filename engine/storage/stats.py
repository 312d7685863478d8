"""Reading a definition's stats: summed `stat_counts` rows, never a scan of history."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import text

from signoff.engine.charts.describe import describe
from signoff.engine.errors import DefinitionNotFoundError
from signoff.engine.model.definition import Definition
from signoff.engine.model.registry import Registry
from signoff.engine.stats.period import Period
from signoff.engine.stats.report import Row, StateSpec, Stats, assemble
from signoff.engine.storage.stats_rollup import behind, roll_up
from signoff.engine.storage.store import Store

# The period's counters summed over its days, but for finished runs (per day) and the `now`
# counters (kept without a day: they are the present). Two range scans of the primary key
# (definition, kind, ...), so the cost follows the period's rows, not the table's.
_SUMS = text(
    "SELECT kind, key, CASE WHEN kind = 'finished' THEN day ELSE '' END AS d, bucket, SUM(n)"
    " FROM stat_counts WHERE definition = :definition"
    " AND kind IN ('entered', 'stay', 'breach', 'decide', 'finished')"
    " AND day >= :since AND day <= :until"
    " GROUP BY kind, key, d, bucket"
    " UNION ALL"
    " SELECT kind, key, '', bucket, SUM(n) FROM stat_counts"
    " WHERE definition = :definition AND kind = 'now' AND day = ''"
    " GROUP BY kind, key, bucket"
)


async def read_stats(store: Store, registry: Registry, name: str, period: Period) -> Stats:
    """Stats of every version of definition `name` over `period`, its newest version's states
    first; what history holds that the stats have not folded yet is folded first."""
    versions = registry.versions(name)
    if not versions:
        raise DefinitionNotFoundError(name)
    newest = registry.definitions.get(name) or versions[-1]
    params = {"definition": name, "since": str(period.since), "until": str(period.until)}
    async with store.read() as conn:
        pending = await behind(conn)
        if not pending:
            rows = [_row(r) for r in await conn.execute(_SUMS, params)]
    if pending:
        await roll_up(store)
        async with store.read() as conn:
            rows = [_row(r) for r in await conn.execute(_SUMS, params)]
    return assemble(name, period, _states(newest), newest.slas, rows)


def _row(r: Any) -> Row:
    kind, key, day, bucket, n = r
    return (kind, key, day, int(bucket), int(n))


@lru_cache(maxsize=256)  # a Definition hashes by identity: one entry per registered version
def _states(definition: Definition) -> tuple[StateSpec, ...]:
    return tuple(StateSpec(s.id, s.kind) for s in describe(definition).states)
