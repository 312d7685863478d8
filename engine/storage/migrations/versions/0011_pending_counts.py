"""pending_counts: a transition's counters wait in a table of their own until folded

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

Each transition stored the counters it adds (stats and run census) in its history entry's
`counts`, about 320 bytes per entry that nothing reads once the stats fold has added them. From
now on they go to `pending_counts` (seq, counts), and the fold deletes the rows it adds: the
table holds only what is not folded yet (signoff.engine.storage.stats_rollup). The entries the
fold had not reached are moved there here. Entries stored before keep their `counts` (no
rewrite of history, so this step is quick on any database; nothing reads them any more, and
`signoff purge` or a VACUUM FULL reclaims them with their runs).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pending_counts",
        sa.Column("seq", SEQ, autoincrement=False, nullable=False),
        sa.Column("counts", JSON, nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    array = (
        "jsonb_typeof(counts) = 'array'"
        if op.get_bind().dialect.name == "postgresql"
        else "json_type(counts) = 'array'"
    )
    op.execute(
        "INSERT INTO pending_counts (seq, counts) SELECT seq, counts FROM history"
        " WHERE seq > (SELECT seq FROM stats_rollup WHERE id = 1) AND counts IS NOT NULL"
        f" AND {array} ORDER BY seq"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE history SET counts = (SELECT p.counts FROM pending_counts p"
        " WHERE p.seq = history.seq) WHERE seq IN (SELECT seq FROM pending_counts)"
    )
    op.drop_table("pending_counts")
