"""Alembic environment. Run through `sluicegate.db.migrate`, which hands over an open
connection (there is no alembic.ini); offline SQL generation is not supported."""

from __future__ import annotations

from alembic import context

from sluicegate.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise RuntimeError("run migrations with sluicegate.db.migrate.upgrade(url)")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs batch ALTERs
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
