"""Ledger rows landed with their rollups, for analytics tests.

`land` is the one place tests fill the rollups: the records are written by the ledger
store and their rollup deltas added right after, as `tests/analytics/test_rollups.py`
does. When the ledger writer maintains the rollups itself, this becomes the store's
write alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics.rollup_sql import apply_deltas
from sluicegate.analytics.rollups import rollup_deltas
from sluicegate.ledger.sql_store import SqlLedgerStore
from sluicegate.model.record import LedgerRecord


async def land(
    engine: AsyncEngine, records: Sequence[LedgerRecord], metadata_keys: Sequence[str] = ()
) -> None:
    store = SqlLedgerStore(engine)
    try:
        await store.write_batch(list(records))
    finally:
        await store.close()
    async with engine.begin() as conn:
        await apply_deltas(conn, rollup_deltas(records, metadata_keys=metadata_keys))
