"""A transaction that holds off ledger writers while it runs.

`rebuild-rollups` replaces rollup rows with figures recomputed from the ledger while the
gateway may be writing: each piece runs in one of these, so that every ledger batch
committed before it is in the recomputation and every batch committed after it adds its
deltas on top, each counted once.

- PostgreSQL: `LOCK TABLE requests IN SHARE ROW EXCLUSIVE MODE` waits for the batches in
  flight to commit and makes new ones wait (reads go on); `lock_timeout` bounds the wait.
- SQLite: a write as the transaction's first statement takes the database's one write
  lock; writers wait for it up to their busy timeout, then spool and retry (no loss).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import false, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sluicegate.db.errors import translate_errors
from sluicegate.db.schema import rollup_key_coverage


@asynccontextmanager
async def holding_off_writers(
    engine: AsyncEngine, operation: str, *, lock_timeout_s: float
) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction no ledger batch can commit during (committed when
    the block ends, rolled back if it raises)."""
    async with translate_errors(operation), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            timeout_ms = max(1, int(lock_timeout_s * 1000))
            await conn.execute(text(f"SET LOCAL lock_timeout = '{timeout_ms}ms'"))
            # the driver prepares statements, and a generic plan for a range of
            # parameters can scan the whole table: plan each statement for its values
            await conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
            await conn.execute(text("LOCK TABLE requests IN SHARE ROW EXCLUSIVE MODE"))
        else:  # a write that changes nothing, for the write lock
            await conn.execute(rollup_key_coverage.delete().where(false()))
        yield conn
