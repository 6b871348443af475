"""`updated_at` stamps that move on every committed change, in commit order, for tables
whose rows every replica keeps in memory (virtual keys, admin API tokens): a replica polls
the table's largest stamp and reloads when it moved.

The stamp is max(now, current maximum + 1 ms), computed by the database inside the
writing statement, so it increases even with several replicas and skewed clocks; on
PostgreSQL writers of one table are serialized by an advisory lock (SQLite serializes
writers already).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Table, case, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

STAMP_STEP = 0.001  # seconds between two consecutive `updated_at` stamps, at least


def next_stamp(now: float, latest: float) -> float:
    """The same rule in Python, for stores kept in memory."""
    return max(now, latest + STAMP_STEP)


def write_stamp(table: Table, now: float) -> ColumnElement[float]:
    """max(now, latest + step) over `table.updated_at`, evaluated in the statement."""
    others = table.alias("latest")
    latest = select(func.coalesce(func.max(others.c.updated_at), 0.0)).scalar_subquery()
    return case((latest + STAMP_STEP > now, latest + STAMP_STEP), else_=literal(now))


async def lock_writes(conn: AsyncConnection, lock_key: int) -> None:
    """Serialize this transaction's writes with every other holder of `lock_key`."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key})
