"""retention: where purged history ranges end, so the entries kept after them still verify

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

`signoff purge` deletes finished runs with their history entries. The audit chain runs over every
entry in seq order, so a kept entry whose predecessor was purged links to a hash the database no
longer holds: `audit_purged` keeps it, one row per kept entry right after a purged range (the
range's last purged seq and hash, and the kept entry before the range), written in the purge's
own transaction.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_purged",
        sa.Column("seq", SEQ, nullable=False),
        sa.Column("after_seq", SEQ, nullable=True),
        sa.Column("last_seq", SEQ, nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=True),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )


def downgrade() -> None:
    op.drop_table("audit_purged")
