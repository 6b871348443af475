"""Ledger rows landed with their rollups, for analytics tests.

`land` is the one place panel tests fill the rollups: the ledger store writes the
records and, in the same transaction, adds their rollups (with these metadata keys rolled
up), as it does in the gateway.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.ledger.sql_store import SqlLedgerStore
from sluicegate.model.record import LedgerRecord


async def land(
    engine: AsyncEngine, records: Sequence[LedgerRecord], metadata_keys: Sequence[str] = ()
) -> None:
    store = SqlLedgerStore(engine)
    store.set_rollup_keys(metadata_keys)
    try:
        await store.write_batch(list(records))
    finally:
        await store.close()
