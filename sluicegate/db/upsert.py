"""The dialect's own INSERT, for statements that need `ON CONFLICT` (SQLAlchemy's generic
`insert()` has no upsert; PostgreSQL and SQLite each have theirs, with the same API)."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

UpsertableInsert = postgresql.Insert | sqlite.Insert


def dialect_insert(table: Table, dialect: str) -> UpsertableInsert:
    """`INSERT INTO table` as `dialect` (`engine.dialect.name`) writes it, ready for
    `.on_conflict_do_nothing` / `.on_conflict_do_update`."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"unsupported dialect {dialect!r}")
