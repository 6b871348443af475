"""The database layer: engines for SQLite and PostgreSQL, the schema, and its migrations.

One schema (SQLAlchemy Core, `schema.py`) serves both dialects; Alembic revisions under
`migrations/` create it, and `migrate.upgrade(url)` runs them to head.
"""
