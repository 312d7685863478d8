"""human tasks: runs keep their open tasks, an inbox index, webhook subscriptions

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("tasks", JSON, nullable=False, server_default="[]"))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("subscription_id", sa.String(length=36), nullable=True))
        batch.create_index("ix_jobs_subscription", ["subscription_id", "id"])
    op.create_table(
        "inbox",
        sa.Column("id", SEQ, nullable=False),
        sa.Column("who", sa.String(length=210), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("slot", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=100), nullable=False),
        sa.Column("definition", sa.String(length=100), nullable=False),
        sa.Column("ref_type", sa.String(length=100), nullable=True),
        sa.Column("ref_id", sa.String(length=200), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("assignee", sa.String(length=200), nullable=True),
        sa.Column("voters", JSON, nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("due_at", TIME, nullable=True),
        sa.Column("due_sort", TIME, nullable=False),
        sa.Column("opened_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_inbox_who_due", "inbox", ["who", "due_sort", "run_id"])
    op.create_index("ix_inbox_who_opened", "inbox", ["who", "opened_at", "run_id"])
    op.create_index("ix_inbox_run", "inbox", ["run_id"])
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("definitions", JSON, nullable=False),
        sa.Column("events", JSON, nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("webhooks")
    op.drop_table("inbox")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_subscription")
        batch.drop_column("subscription_id")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("tasks")
