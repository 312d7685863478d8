"""audit chain, stats aggregates, replays, entry times, external events

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

The audit chain starts here: entries already stored keep no hash, and `audit_chain` records the seq
it starts after (`audit_chain.started_seq`), so an export and `signoff audit verify`
say where the chain begins. Stats count from here on too.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)
# PostgreSQL: the hash of the last history entry (the genesis hash if none has one yet), for
# the statement that stores a transition to link the next one to while it holds the feed lock.
# A VOLATILE function's query takes a snapshot of its own, so it sees every entry committed
# before the lock was granted (the calling statement's snapshot may be older).
LAST_HASH = r"""
CREATE OR REPLACE FUNCTION signoff_last_hash() RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    prev text;
BEGIN
    SELECT h.hash INTO prev FROM history h ORDER BY h.seq DESC LIMIT 1;
    RETURN coalesce(prev, repeat('0', 64));
END $$
"""


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("replay_of", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("entered", JSON, nullable=False, server_default="{}"))
        batch.create_index("ix_runs_replay_of", ["replay_of"])
    with op.batch_alter_table("history") as batch:
        batch.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("counts", JSON, nullable=True))
    chain = op.create_table(
        "audit_chain",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("started_seq", SEQ, nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    bind = op.get_bind()
    last = bind.execute(sa.text("SELECT COALESCE(MAX(seq), 0) FROM history")).scalar()
    now = datetime.now(UTC)
    if bind.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    op.bulk_insert(chain, [{"id": 1, "started_seq": last, "started_at": now}])
    if bind.dialect.name == "postgresql":
        op.execute(LAST_HASH)
    op.create_table(
        "stat_counts",
        sa.Column("definition", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("definition", "kind", "key", "day", "bucket"),
    )
    rollup = op.create_table(
        "stats_rollup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", SEQ, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(rollup, [{"id": 1, "seq": last}])
    # Runs already stored are counted where they are now; their stays began before the
    # counters did, so they are not counted when they end (runs.entered starts empty).
    states = (
        "json_each(r.configuration) AS s"
        if bind.dialect.name == "sqlite"
        else "jsonb_array_elements_text(r.configuration) AS s(value)"
    )
    op.execute(
        "INSERT INTO stat_counts (definition, kind, key, day, bucket, n)"
        f" SELECT r.definition, 'now', s.value, '', -1, COUNT(*) FROM runs r, {states}"
        " WHERE r.lifecycle NOT IN ('completed', 'cancelled') GROUP BY r.definition, s.value"
    )
    op.create_table(
        "events",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("ref_type", sa.String(length=100), nullable=True),
        sa.Column("ref_id", sa.String(length=200), nullable=True),
        sa.Column("data", JSON, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("started", JSON, nullable=False),
        sa.Column("delivered", JSON, nullable=False),
        sa.Column("unwanted", sa.Boolean(), nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_events_name_received", "events", ["name", "received_at"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS signoff_last_hash()")
    op.drop_table("events")
    op.drop_table("stats_rollup")
    op.drop_table("stat_counts")
    op.drop_table("audit_chain")
    with op.batch_alter_table("history") as batch:
        batch.drop_column("counts")
        batch.drop_column("hash")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_replay_of")
        batch.drop_column("entered")
        batch.drop_column("replay_of")
