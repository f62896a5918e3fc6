"""Alembic environment: always run from ``feeds.store.migrate`` with an open connection."""
from __future__ import annotations

from alembic import context

from feeds.store.schema import metadata

connection = context.config.attributes["connection"]
# render_as_batch: SQLite cannot ALTER most things, so Alembic copies the table instead.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
