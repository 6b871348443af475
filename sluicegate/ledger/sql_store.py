"""The ledger store on SQLite or PostgreSQL (one implementation, SQLAlchemy Core).

Each batch keeps the rollups (analytics/) in the same transaction as its insert: the
insert reports the ids it stored (RETURNING; on a SQLite file the bulk inserter looks
them up first), and the deltas of those records alone are added, so a replayed batch
adds nothing and a refused one nothing either. Metadata keys are rolled up as the
analytics config in force says (`set_rollup_keys`).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, Insert, and_, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics.coverage import RollupKeys
from sluicegate.analytics.session_groups import apply_with_session_groups
from sluicegate.db.engine import SQLITE_PRAGMAS, is_memory_sqlite
from sluicegate.db.errors import StoreRejected, translate_errors
from sluicegate.db.schema import requests
from sluicegate.db.upsert import dialect_insert
from sluicegate.ledger.landed import deltas_for, returned
from sluicegate.ledger.sqlite_bulk import SqliteBulkInserter
from sluicegate.ledger.store import (
    EQUALITY_FILTERS,
    RequestFilters,
    RequestPage,
    api_row,
    clamp_limit,
    decode_cursor,
    encode_cursor,
    split_match,
    status_bounds,
)
from sluicegate.ledger.writer_thread import WriterThreads
from sluicegate.model.record import LedgerRecord

_C = requests.c


class SqlLedgerStore:
    """Writes and reads the `requests` table. The engine belongs to the caller, who
    disposes it; `close` leaves it open for the other stores sharing it. On a SQLite file
    batches are written by `SqliteBulkInserter` (see there for why); elsewhere a batch's
    rollup deltas are computed on a writer thread (writer_thread.py), not the loop."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = _insert_ignoring_duplicates(engine.dialect.name).returning(
            requests.c.request_id
        )
        self._rollup_keys = RollupKeys()
        self._threads = WriterThreads("sluicegate-ledger")
        self._bulk: SqliteBulkInserter | None = None
        database = engine.url.database
        if engine.dialect.name == "sqlite" and database and not is_memory_sqlite(engine.url):
            self._bulk = SqliteBulkInserter(database, SQLITE_PRAGMAS, self._threads)

    # --- rollup keys ------------------------------------------------------------------
    @property
    def rollup_keys(self) -> tuple[str, ...]:
        """The metadata keys the next batches roll up."""
        return self._rollup_keys.keys

    def set_rollup_keys(self, keys: Sequence[str]) -> None:
        """The analytics config's `rollup_metadata_keys` now in force (at start and on
        each change). Batches from now on roll them up; `record_rollup_keys` writes
        since when (the next batch does it too)."""
        self._rollup_keys.set(keys)

    async def record_rollup_keys(self) -> bool:
        """Write the coverage changes `set_rollup_keys` queued (False: not yet, logged)."""
        return await self._rollup_keys.write_changes(self._engine)

    # --- writes -----------------------------------------------------------------------
    async def write_batch(self, records: list[LedgerRecord]) -> None:
        if not records:
            return
        keys = self._rollup_keys.keys
        if self._bulk is not None:
            await self._bulk.insert(records, keys)
        else:
            await self._insert_with_rollups(records, keys)
        if self._rollup_keys.pending:
            await self.record_rollup_keys()

    async def _insert_with_rollups(
        self, records: list[LedgerRecord], keys: tuple[str, ...]
    ) -> None:
        try:
            rows = [msgspec.to_builtins(r) for r in records]
        except (TypeError, ValueError) as exc:  # e.g. an unencodable guardrail event
            raise StoreRejected(f"ledger write: {exc}") from exc
        async with translate_errors("ledger write"), self._engine.begin() as conn:
            inserted = (await conn.execute(self._insert, rows)).scalars().all()
            landed = returned(records, inserted)
            if landed:
                deltas = await self._threads.run(
                    landed, functools.partial(deltas_for, landed, keys)
                )
                await apply_with_session_groups(conn, deltas)

    async def query(self, filters: RequestFilters, limit: int, cursor: str | None) -> RequestPage:
        limit = clamp_limit(limit)
        conditions = filter_conditions(filters)
        if cursor is not None:
            ts, request_id = decode_cursor(cursor)
            conditions.append(or_(_C.ts < ts, and_(_C.ts == ts, _C.request_id < request_id)))
        statement = (
            select(requests)
            .where(*conditions)
            .order_by(_C.ts.desc(), _C.request_id.desc())
            .limit(limit + 1)
        )
        async with translate_errors("ledger query"), self._engine.connect() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        page = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(page[-1]["ts"], page[-1]["request_id"])
        return RequestPage(data=[api_row(r) for r in page], next_cursor=next_cursor)

    async def sum_cost(
        self, since: float, match: Mapping[str, str], until: float | None = None
    ) -> float:
        conditions = _match_conditions(since, match)
        if until is not None:
            conditions.append(_C.ts < until)
        statement = select(func.coalesce(func.sum(_C.cost_usd), 0.0)).where(*conditions)
        return float(await self._scalar("ledger sum_cost", statement))

    async def count(self, since: float, match: Mapping[str, str]) -> int:
        statement = (
            select(func.count()).select_from(requests).where(*_match_conditions(since, match))
        )
        return int(await self._scalar("ledger count", statement))

    async def close(self) -> None:
        """Shut the writer threads down (after a batch one is running), then the SQLite
        connection."""
        await asyncio.to_thread(self._threads.shutdown)
        if self._bulk is not None:
            self._bulk.close()

    async def _scalar(self, operation: str, statement: Any) -> Any:
        async with translate_errors(operation), self._engine.connect() as conn:
            return (await conn.execute(statement)).scalar_one()


def _insert_ignoring_duplicates(dialect: str) -> Insert:
    return dialect_insert(requests, dialect).on_conflict_do_nothing(index_elements=["request_id"])


def filter_conditions(f: RequestFilters) -> list[ColumnElement[bool]]:
    """The WHERE clauses of `f` (the export reads with them too, export/sources.py)."""
    conditions: list[ColumnElement[bool]] = [
        _C[name] == getattr(f, name) for name in EQUALITY_FILTERS if getattr(f, name) is not None
    ]
    if f.model is not None:
        conditions.append(or_(_C.requested_model == f.model, _C.model == f.model))
    if f.status is not None:
        bounds = status_bounds(f.status)
        inside = and_(_C.status_code >= bounds.low, _C.status_code < bounds.high)
        conditions.append(not_(inside) if bounds.outside else inside)
    if f.since is not None:
        conditions.append(_C.ts >= f.since)
    if f.until is not None:
        conditions.append(_C.ts < f.until)
    return conditions


def _match_conditions(since: float, match: Mapping[str, str]) -> list[ColumnElement[bool]]:
    columns, meta = split_match(match)
    conditions: list[ColumnElement[bool]] = [_C.ts >= since]
    conditions += [_C[name] == value for name, value in columns.items()]
    conditions += [_C.metadata[key].as_string() == value for key, value in meta.items()]
    return conditions
