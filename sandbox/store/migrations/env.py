"""Alembic's entry point: migrations run on the connection `migrations.upgrade` passes."""

from __future__ import annotations

from alembic import context

from sandbox.store.tables import Base

connection = context.config.attributes["connection"]
# render_as_batch: SQLite alters a table by copying it; Alembic's batch mode does that for us.
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
