"""Adding `RollupDeltas` to the rollup tables with upserts (SQLAlchemy Core, either dialect).

Additive measures are `stored + excluded`; a session's first/last time are the min/max; its
identity columns keep the first non-empty value (UNTAGGED counts as empty for the project).
Rows are written in key order, so two PostgreSQL replicas adding to the same rows lock
them in the same order and cannot deadlock.

On PostgreSQL each table's rows go in one statement, `INSERT ... SELECT` over one JSONB
parameter holding every row (`jsonb_array_elements`, each value cast back to its column's
type) `ORDER BY key ON CONFLICT ...`: a batch's hundreds of rows cost one round trip and
one JSON encoding (measured on 500 rows of rollup_usage: 1 ms of client CPU, against
15 ms for one array parameter per column with asyncpg and ~15 ms through executemany).
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Insert,
    Table,
    bindparam,
    case,
    cast,
    column,
    func,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from sluicegate.analytics.rollups import RollupDeltas, Values
from sluicegate.db.schema import (
    SESSION_IDENTITY,
    rollup_sessions,
)
from sluicegate.db.upsert import dialect_insert
from sluicegate.model.identity import UNTAGGED

_NOT_ADDED = frozenset({"id", "grain", "bucket", "session_id", "first_ts", "last_ts"})
SESSION_KEPT = frozenset(SESSION_IDENTITY)  # a session's first non-empty value stays


def _from_json_rows(insert: Any, table: Table) -> Any:
    """`insert` fed by one JSONB parameter, `rows`: an array of rows, each an array of
    the table's columns in order, cast back to the columns' types, in key order."""
    elements = (
        func.jsonb_array_elements(bindparam("rows", type_=postgresql.JSONB))
        .table_valued(column("value", postgresql.JSONB))
        .render_derived("rows")
    )
    row = elements.c.value
    source = (
        select(*(cast(row[i].astext, c.type).label(c.name) for i, c in enumerate(table.columns)))
        .select_from(elements)
        .order_by(row[0].astext)  # the key: the same lock order for every writer
    )
    return insert.from_select([c.name for c in table.columns], source)


def added_columns(table: Table) -> list[str]:
    """The columns an upsert adds to the stored row: every one but the key, bucket and
    dimensions (text) of a bucketed table; of `rollup_sessions`, the measures."""
    if table is rollup_sessions:
        return [c.name for c in table.columns if c.name not in _NOT_ADDED | SESSION_KEPT]
    dimensions = {c.name for c in table.columns if c.type.python_type is str}
    return [c.name for c in table.columns if c.name not in _NOT_ADDED | dimensions]


def additive_upsert(table: Table, dialect: str, *, json_rows: bool = False) -> Insert:
    """INSERT ... ON CONFLICT (key) DO UPDATE adding every measure (`json_rows`: the rows
    come as one JSONB parameter, PostgreSQL)."""
    insert = dialect_insert(table, dialect)
    if json_rows:
        insert = _from_json_rows(insert, table)
    key = table.primary_key.columns.values()[0].name
    updates = {name: table.c[name] + insert.excluded[name] for name in added_columns(table)}
    return insert.on_conflict_do_update(index_elements=[key], set_=updates)


def session_upsert(dialect: str, *, json_rows: bool = False) -> Insert:
    table = rollup_sessions
    insert = dialect_insert(table, dialect)
    if json_rows:
        insert = _from_json_rows(insert, table)
    excluded = insert.excluded
    updates: dict[str, Any] = {
        name: table.c[name] + excluded[name] for name in added_columns(table)
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
    for table, keyed in deltas.tables():
        if not keyed:
            continue
        rows: list[Values] = [keyed[k] for k in sorted(keyed)]
        if dialect == "postgresql":
            await conn.execute(upsert_for(table, dialect, True), {"rows": rows})
        else:
            names = [c.name for c in table.columns]
            dicts = [dict(zip(names, row, strict=True)) for row in rows]
            await conn.execute(upsert_for(table, dialect, False), dicts)


@functools.cache
def upsert_for(table: Table, dialect: str, json_rows: bool) -> Insert:
    """The upsert of a rollup table (built once per table, dialect and shape)."""
    if table is rollup_sessions:
        return session_upsert(dialect, json_rows=json_rows)
    return additive_upsert(table, dialect, json_rows=json_rows)
