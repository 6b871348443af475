"""Adding `RollupDeltas` to the rollup tables with upserts (SQLAlchemy Core, either dialect).

Additive measures are `stored + excluded`; a session's first/last time are the min/max; its
identity columns keep the first non-empty value (UNTAGGED counts as empty for the project).
Rows are written in key order, so two PostgreSQL replicas adding to the same rows lock
them in the same order and cannot deadlock.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Insert, Table, case, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from sluicegate.analytics.rollups import RollupDeltas
from sluicegate.db.schema import (
    SESSION_IDENTITY,
    rollup_metadata,
    rollup_sessions,
    rollup_usage,
    rollup_users,
)
from sluicegate.model.identity import UNTAGGED

_NOT_ADDED = frozenset({"id", "grain", "bucket", "session_id", "first_ts", "last_ts"})


def _insert(table: Table, dialect: str) -> Any:
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"unsupported dialect {dialect!r}")


def additive_upsert(table: Table, dialect: str) -> Insert:
    """INSERT ... ON CONFLICT (key) DO UPDATE adding every measure."""
    insert = _insert(table, dialect)
    key = table.primary_key.columns.values()[0].name
    dimensions = {c.name for c in table.columns if c.type.python_type is str}
    measures = [c.name for c in table.columns if c.name not in _NOT_ADDED | dimensions]
    updates = {name: table.c[name] + insert.excluded[name] for name in measures}
    return insert.on_conflict_do_update(index_elements=[key], set_=updates)


def session_upsert(dialect: str) -> Insert:
    table = rollup_sessions
    insert = _insert(table, dialect)
    excluded = insert.excluded
    updates: dict[str, Any] = {
        name: table.c[name] + excluded[name]
        for name in (c.name for c in table.columns)
        if name not in _NOT_ADDED and name not in SESSION_IDENTITY
    }
    updates["first_ts"] = case(
        (excluded.first_ts < table.c.first_ts, excluded.first_ts), else_=table.c.first_ts
    )
    updates["last_ts"] = case(
        (excluded.last_ts > table.c.last_ts, excluded.last_ts), else_=table.c.last_ts
    )
    for name in SESSION_IDENTITY:
        empty: ColumnElement[bool] = table.c[name] == ""
        if name == "project":
            empty = or_(empty, table.c[name] == UNTAGGED)
        updates[name] = case((empty, excluded[name]), else_=table.c[name])
    return insert.on_conflict_do_update(index_elements=["session_id"], set_=updates)


async def apply_deltas(conn: AsyncConnection, deltas: RollupDeltas) -> None:
    """Add `deltas` inside the caller's transaction (the one that inserted the records)."""
    dialect = conn.dialect.name
    for table, keyed in (
        (rollup_usage, deltas.usage),
        (rollup_users, deltas.users),
        (rollup_metadata, deltas.metadata),
    ):
        if keyed:
            rows = [keyed[k] for k in sorted(keyed)]
            await conn.execute(additive_upsert(table, dialect), rows)
    if deltas.sessions:
        sessions = [deltas.sessions[k] for k in sorted(deltas.sessions)]
        await conn.execute(session_upsert(dialect), sessions)
