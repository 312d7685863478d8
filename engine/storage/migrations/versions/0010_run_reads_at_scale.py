"""runs: an index for each list filter, ref ids compared byte by byte, the run census

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

`GET /api/runs` lists newest first. Each filter it takes gets an index that ends in `id`, so a
page is read in order from the index and stops at `limit`, however rare or common the value:
- (definition, id), (state, id), (lifecycle, id): already there;
- (definition, state, id), (definition, lifecycle, id): the monitor's usual pairs (a
  definition's runs in one state; its waiting or paused runs, which correlation by key also
  reads); a state with a lifecycle is narrow enough through either single index;
- (ref_id, id): `ref_id=` and `ref_id_prefix=` (a range: the column now compares by bytes on
  PostgreSQL too, collation "C", as SQLite's BINARY does), and events delivered by ref;
- (ref_type, id) replaces (ref_type, ref_id): a ref id is looked up by itself now;
- (replay_of, id) replaces (replay_of): a run's replays, newest first (SQLite's statistics
  count the runs that replay nothing as one value, and then preferred walking every run).
- jobs: (status, due_at, kind) replaces (status, due_at): the claim reads it as before, and
  /metrics counts ready jobs by kind from the index alone.
Each index costs every transition that moves a run (its state and lifecycle are in most), so
there are no others.

`run_counts` holds runs per (definition, state, lifecycle) for /metrics, counted here from the
runs there are; from now on each transition's history entry says how it moves them and the
stats fold adds that (signoff.engine.storage.census). Entries stored before say nothing of it,
except in a database that had it and was downgraded: what their unfolded entries move is taken
off here, since the fold will add it again.
"""

from collections import Counter
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_HISTORY = sa.table("history", sa.column("seq", sa.BigInteger()), sa.column("counts", JSON))

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NEW = {
    "ix_runs_definition_state_id": ["definition", "state", "id"],
    "ix_runs_definition_lifecycle_id": ["definition", "lifecycle", "id"],
    "ix_runs_ref_id": ["ref_id", "id"],
    "ix_runs_ref_type_id": ["ref_type", "id"],
    "ix_runs_replay_of_id": ["replay_of", "id"],
}


def upgrade() -> None:
    op.drop_index("ix_runs_ref", table_name="runs")
    op.drop_index("ix_runs_replay_of", table_name="runs")
    if op.get_bind().dialect.name == "postgresql":  # no rewrite: only the collation changes
        op.execute('ALTER TABLE runs ALTER COLUMN ref_id TYPE VARCHAR(200) COLLATE "C"')
    for name, columns in _NEW.items():
        op.create_index(name, "runs", columns)
    op.create_index("ix_jobs_status_due_kind", "jobs", ["status", "due_at", "kind"])
    op.drop_index("ix_jobs_status_due", table_name="jobs")
    op.create_table(
        "run_counts",
        sa.Column("definition", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=100), nullable=False),
        sa.Column("lifecycle", sa.String(length=32), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("definition", "state", "lifecycle"),
    )
    bind = op.get_bind()
    counts: Counter[tuple[str, str, str]] = Counter()
    runs = "SELECT definition, state, lifecycle, COUNT(*) FROM runs GROUP BY 1, 2, 3"
    for definition, state, lifecycle, n in bind.execute(sa.text(runs)):
        counts[(definition, state, lifecycle)] += n
    mark = bind.execute(sa.text("SELECT seq FROM stats_rollup WHERE id = 1")).scalar() or 0
    unfolded = sa.select(_HISTORY.c.counts).where(
        _HISTORY.c.seq > mark, _HISTORY.c.counts.is_not(None)
    )
    for (rows,) in bind.execute(unfolded):
        for definition, kind, state, lifecycle, _, n in rows:
            if kind == "runs":  # signoff.engine.stats.census
                counts[(definition, state, lifecycle)] -= n
    if counts:
        table = sa.table(
            "run_counts", *(sa.column(c) for c in ("definition", "state", "lifecycle", "n"))
        )
        op.bulk_insert(
            table,
            [
                {"definition": d, "state": s, "lifecycle": lc, "n": n}
                for (d, s, lc), n in sorted(counts.items())
            ],
        )


def downgrade() -> None:
    op.drop_table("run_counts")
    op.create_index("ix_jobs_status_due", "jobs", ["status", "due_at"])
    op.drop_index("ix_jobs_status_due_kind", table_name="jobs")
    for name in _NEW:
        op.drop_index(name, table_name="runs")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE runs ALTER COLUMN ref_id TYPE VARCHAR(200)")
    op.create_index("ix_runs_ref", "runs", ["ref_type", "ref_id"])
    op.create_index("ix_runs_replay_of", "runs", ["replay_of"])
