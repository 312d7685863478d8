"""Alembic environment: migrations run on the connection that `upgrade` hands over."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import signoff.engine.storage.schema  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "Run migrations with `signoff migrate` (signoff.engine.storage.migrate.upgrade)."
    )

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
