"""idempotency records say whether the first use created a run, not an HTTP status

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency") as batch:
        batch.add_column(sa.Column("created", sa.Boolean(), nullable=False, server_default="0"))
    # A first use that answered 201 created its run.
    op.execute("UPDATE idempotency SET created = (status_code = 201)")
    with op.batch_alter_table("idempotency") as batch:
        batch.alter_column("created", server_default=None)
        batch.drop_column("status_code")


def downgrade() -> None:
    with op.batch_alter_table("idempotency") as batch:
        batch.add_column(
            sa.Column("status_code", sa.Integer(), nullable=False, server_default="200")
        )
    op.execute("UPDATE idempotency SET status_code = CASE WHEN created THEN 201 ELSE 200 END")
    with op.batch_alter_table("idempotency") as batch:
        batch.alter_column("status_code", server_default=None)
        batch.drop_column("created")
