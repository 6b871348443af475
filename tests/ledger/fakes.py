"""Ledger stores that misbehave on demand, wrapped around the memory store."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from sluicegate.db.errors import StoreRejected
from sluicegate.errors import StoreUnavailable
from sluicegate.ledger.memory_store import MemoryLedgerStore
from sluicegate.ledger.store import RequestFilters, RequestPage
from sluicegate.model.record import LedgerRecord


class FlakyStore:
    """`down`: every write fails. `ambiguous`: writes land, then report a failure (a commit
    whose acknowledgement was lost). Records whose error_message is "poison" are refused."""

    def __init__(self) -> None:
        self.inner = MemoryLedgerStore()
        self.down = False
        self.ambiguous = False
        self.calls: list[int] = []  # batch sizes of every write attempt
        self.stored_calls: list[int] = []

    async def write_batch(self, records: list[LedgerRecord]) -> None:
        self.calls.append(len(records))
        if self.down:
            raise StoreUnavailable("database is down")
        if any(r.error_message == "poison" for r in records):
            raise StoreRejected("value out of range")
        await self.inner.write_batch(records)
        self.stored_calls.append(len(records))
        if self.ambiguous:
            raise ConnectionResetError("connection lost during commit")

    async def query(self, filters: RequestFilters, limit: int, cursor: str | None) -> RequestPage:
        return await self.inner.query(filters, limit, cursor)

    async def sum_cost(
        self, since: float, match: Mapping[str, str], until: float | None = None
    ) -> float:
        return await self.inner.sum_cost(since, match, until)

    async def count(self, since: float, match: Mapping[str, str]) -> int:
        return await self.inner.count(since, match)

    def set_rollup_keys(self, keys: Sequence[str]) -> None:
        self.inner.set_rollup_keys(keys)

    async def close(self) -> None:
        await self.inner.close()


class HeldStore(MemoryLedgerStore):
    """A database slow to take batches (as under load): each write waits until
    `release()`, then lands. `writing`: batches waiting to land."""

    def __init__(self) -> None:
        super().__init__()
        self._open = asyncio.Event()
        self.writing = 0

    def release(self) -> None:
        self._open.set()

    async def write_batch(self, records: list[LedgerRecord]) -> None:
        self.writing += 1
        try:
            await self._open.wait()
            await super().write_batch(records)
        finally:
            self.writing -= 1
