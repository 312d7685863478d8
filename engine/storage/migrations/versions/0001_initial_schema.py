"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the schema's column types (engine/storage/schema.py) at this revision.
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIME = sa.DateTime(timezone=True)
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "history",
        sa.Column("seq", SEQ, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("event", sa.String(length=100), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("business_from", JSON, nullable=False),
        sa.Column("business_to", JSON, nullable=False),
        sa.Column("lifecycle_from", JSON, nullable=False),
        sa.Column("lifecycle_to", JSON, nullable=False),
        sa.Column("run", JSON, nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("run_id", "version", name="uq_history_run_version"),
    )
    op.create_index("ix_history_run_seq", "history", ["run_id", "seq"], unique=False)
    op.create_table(
        "idempotency",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("route", sa.String(length=300), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("key", "actor", "route"),
    )
    op.create_table(
        "jobs",
        sa.Column("id", SEQ, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=100), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", TIME, nullable=False),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_until", TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("outcome", JSON, nullable=True),
        sa.Column("created_for_version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_jobs_run_status", "jobs", ["run_id", "status"], unique=False)
    op.create_index("ix_jobs_status_due", "jobs", ["status", "due_at"], unique=False)
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("definition", sa.String(length=100), nullable=False),
        sa.Column("definition_version", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("ref_id", sa.String(length=200), nullable=True),
        sa.Column("ref_type", sa.String(length=100), nullable=True),
        sa.Column("input", JSON, nullable=False),
        sa.Column("state", sa.String(length=100), nullable=False),
        sa.Column("configuration", JSON, nullable=False),
        sa.Column("business_history", JSON, nullable=False),
        sa.Column("lifecycle", sa.String(length=32), nullable=False),
        sa.Column("lifecycle_configuration", JSON, nullable=False),
        sa.Column("lifecycle_history", JSON, nullable=False),
        sa.Column("context", JSON, nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_runs_definition_id", "runs", ["definition", "id"], unique=False)
    op.create_index("ix_runs_lifecycle_id", "runs", ["lifecycle", "id"], unique=False)
    op.create_index("ix_runs_ref", "runs", ["ref_type", "ref_id"], unique=False)
    op.create_index("ix_runs_state_id", "runs", ["state", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_runs_state_id", table_name="runs")
    op.drop_index("ix_runs_ref", table_name="runs")
    op.drop_index("ix_runs_lifecycle_id", table_name="runs")
    op.drop_index("ix_runs_definition_id", table_name="runs")
    op.drop_table("runs")
    op.drop_index("ix_jobs_status_due", table_name="jobs")
    op.drop_index("ix_jobs_run_status", table_name="jobs")
    op.drop_table("jobs")
    op.drop_table("idempotency")
    op.drop_index("ix_history_run_seq", table_name="history")
    op.drop_table("history")
