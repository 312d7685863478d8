"""jobs: counted per (kind, status) by triggers, for /metrics' queue gauges

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

`/metrics` counted the ready jobs by kind with a GROUP BY over every one of them, which grows
with the live runs. Now triggers on `jobs` append one row to `job_moves` for each job that
is inserted, deleted or changes status (or kind), in the writer's own transaction, whoever
the writer is (a transition, a claim, a settle, a retry, a redelivery, a purge); the moves
are folded into `job_counts` off the write path (signoff.engine.storage.job_counts). Nothing
on the write path updates a shared row: each move is a row of its own.

`job_counts` starts from the jobs there are, counted after the triggers exist: on PostgreSQL
CREATE TRIGGER waits for the transactions writing jobs and holds later ones off until this
commits, so every job is counted once, here or by a move.

SQLite drops a table's triggers with the table: a later migration that rebuilds `jobs`
(alembic's batch mode does, to alter a column) must create them again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_MOVE = "INSERT INTO job_moves (kind, from_status, to_status) VALUES"

# One function for every trigger: only the update trigger's WHEN differs by dialect.
PG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION signoff_job_moved() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {_MOVE} (NEW.kind, NULL, NEW.status);
    ELSIF TG_OP = 'DELETE' THEN
        {_MOVE} (OLD.kind, OLD.status, NULL);
    ELSIF OLD.kind = NEW.kind THEN
        {_MOVE} (NEW.kind, OLD.status, NEW.status);
    ELSE
        {_MOVE} (OLD.kind, OLD.status, NULL), (NEW.kind, NULL, NEW.status);
    END IF;
    RETURN NULL;
END $$
"""
_PG_EACH = "FOR EACH ROW EXECUTE FUNCTION signoff_job_moved()"
PG_TRIGGERS = {
    "job_moves_insert": f"AFTER INSERT ON jobs {_PG_EACH}",
    # A lease extended, an error noted, an expired lease taken over: no status changes, and
    # the WHEN skips the function.
    "job_moves_update": "AFTER UPDATE OF kind, status ON jobs FOR EACH ROW WHEN"
    " (OLD.kind <> NEW.kind OR OLD.status <> NEW.status) EXECUTE FUNCTION signoff_job_moved()",
    "job_moves_delete": f"AFTER DELETE ON jobs {_PG_EACH}",
}
SQLITE_TRIGGERS = {
    "job_moves_insert": f"AFTER INSERT ON jobs BEGIN {_MOVE} (NEW.kind, NULL, NEW.status); END",
    "job_moves_update": "AFTER UPDATE OF kind, status ON jobs"
    " WHEN OLD.kind = NEW.kind AND OLD.status <> NEW.status"
    f" BEGIN {_MOVE} (NEW.kind, OLD.status, NEW.status); END",
    "job_moves_rekind": "AFTER UPDATE OF kind ON jobs WHEN OLD.kind <> NEW.kind BEGIN"
    f" {_MOVE} (OLD.kind, OLD.status, NULL), (NEW.kind, NULL, NEW.status); END",
    "job_moves_delete": f"AFTER DELETE ON jobs BEGIN {_MOVE} (OLD.kind, OLD.status, NULL); END",
}


def upgrade() -> None:
    op.create_table(
        "job_counts",
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "status"),
    )
    op.create_table(
        "job_moves",
        sa.Column("id", SEQ, nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for name, body in PG_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
    op.execute(
        "INSERT INTO job_counts (kind, status, n)"
        " SELECT kind, status, COUNT(*) FROM jobs GROUP BY kind, status"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in PG_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON jobs")
        op.execute("DROP FUNCTION IF EXISTS signoff_job_moved()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("job_moves")
    op.drop_table("job_counts")
