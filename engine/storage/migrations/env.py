"""Alembic environment: migrations run on the connection `signoff.engine.storage.migrate` hands over."""

from __future__ import annotations

import signoff.engine.storage.schema  # noqa: F401  (registers the tables on SQLModel.metadata)
from alembic import context
from sqlmodel import SQLModel

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations with `signoff migrate` (signoff.engine.storage.migrate.upgrade).")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
