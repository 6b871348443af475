"""Ledger rows landed with their rollups, for analytics tests.

`land` is the one place panel tests fill the rollups: the ledger store writes the
records and, in the same transaction, adds their rollups (with these metadata keys rolled
up), as it does in the gateway. The records are dated in the past but land now, so the
keys' coverage is then recorded as a full `rebuild-rollups` would record it: complete
from the start (else every read of a key before today would go to raw rows).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics.coverage import record_rebuild
from sluicegate.analytics.rebuild import COVERED_FROM_START
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
    if metadata_keys and records:
        async with engine.begin() as conn:
            await record_rebuild(conn, metadata_keys, COVERED_FROM_START, started=time.time())
