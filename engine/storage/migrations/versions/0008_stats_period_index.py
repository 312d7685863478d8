"""stats: an index that reads a period's counters

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

`GET /api/definitions/{name}/stats` sums one definition's counter rows of the days in a period.
The primary key (definition, kind, key, day, bucket) puts the day after the key, so a period's
rows were found by reading every day's; this index holds them together, with every column the
query reads (it answers from the index alone).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_stat_counts_period",
        "stat_counts",
        ["definition", "day", "kind", "key", "bucket", "n"],
    )


def downgrade() -> None:
    op.drop_index("ix_stat_counts_period", table_name="stat_counts")
