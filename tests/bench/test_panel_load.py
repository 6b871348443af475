"""The panel bench's fast load (bench/panel_load.py) stores what the ledger store stores.

The same seeded ledger goes into one database through `SqlLedgerStore.write_batch` (the
gateway's path: batches of the writer's size, rollups in each batch's transaction) and
into another through the fast path (worker processes, bulk writes, rollup deltas merged
across days and flushed several times, indexes created after the load); every row of
`requests`, `outcomes` and every rollup table must match, on SQLite and on PostgreSQL.
Rollup sums of floats are compared to 1e-12 relative: the two paths add the same values
grouped differently (per batch, per day), which may change the last bit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select

from bench.panel_ledger import LedgerGenerator, outcome_rows
from bench.panel_load import LoadPlan, load, secondary_indexes
from bench.panels import METADATA_KEYS
from sluicegate.analytics.rollups import RollupDeltas, rollup_deltas
from sluicegate.analytics.session_groups import add_contribution, lock_session_groups
from sluicegate.db.engine import create_engine_for
from sluicegate.db.migrate import upgrade
from sluicegate.db.schema import (
    outcomes,
    requests,
    rollup_key_coverage,
    rollup_session_groups,
)
from sluicegate.ledger.sql_store import SqlLedgerStore
from tests.support import fresh_postgres_database

ROWS = 6_000
DAYS = 4
SEED = 7
END = float(int(time.time()) // 3600 * 3600)
BATCH = 500  # the ledger writer's batch size order


def plan(**overrides: Any) -> LoadPlan:
    values: dict[str, Any] = dict(
        rows=ROWS, days=DAYS, end=END, seed=SEED, metadata_keys=METADATA_KEYS, progress=False
    )
    return LoadPlan(**{**values, **overrides})


async def write_slow_path(url: str) -> None:
    """The gateway's way: the store's write_batch, outcomes as the API inserts them."""
    await upgrade(url)
    engine = create_engine_for(url)
    store = SqlLedgerStore(engine)
    store.set_rollup_keys(METADATA_KEYS)
    generator = LedgerGenerator(ROWS, DAYS, END, SEED)
    try:
        for day in range(DAYS):
            records, produced = generator.day(day)
            for start in range(0, len(records), BATCH):
                await store.write_batch(records[start : start + BATCH])
            if produced:
                rows = outcome_rows(produced, END)
                sessions = sorted({row["session_id"] for row in rows})
                async with engine.begin() as conn:  # the outcome store's three steps
                    await lock_session_groups(conn)
                    await add_contribution(conn, sessions, -1)
                    await conn.execute(outcomes.insert(), rows)
                    await add_contribution(conn, sessions, 1)
    finally:
        await store.close()
        await engine.dispose()


async def table_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the ledger's tables, each table in key order."""
    tables = [
        requests,
        outcomes,
        *(table for table, _ in RollupDeltas().tables()),
        rollup_session_groups,
    ]
    engine = create_engine_for(url)
    out = {}
    try:
        async with engine.connect() as conn:
            for table in tables:
                key = list(table.primary_key.columns)
                stmt = select(table).order_by(*key)
                if table is rollup_session_groups:  # rows emptied by moves are zeros
                    stmt = stmt.where(rollup_session_groups.c.sessions != 0)
                rows = (await conn.execute(stmt)).all()
                out[table.name] = [tuple(row) for row in rows]
    finally:
        await engine.dispose()
    return out


async def index_names(url: str) -> set[str]:
    engine = create_engine_for(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: inspect(c).get_indexes("requests"))
    finally:
        await engine.dispose()
    return {index["name"] for index in names}


async def covered_keys(url: str) -> dict[str, float]:
    engine = create_engine_for(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(rollup_key_coverage))).all()
    finally:
        await engine.dispose()
    return {row.meta_key: row.covered_since for row in rows if row.covered_until is None}


def assert_same_rows(fast: list[tuple[Any, ...]], slow: list[tuple[Any, ...]], name: str) -> None:
    assert len(fast) == len(slow), name
    for got, want in zip(fast, slow, strict=True):
        for a, b in zip(got, want, strict=True):
            if isinstance(b, float) and isinstance(a, float) and name.startswith("rollup"):
                assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), (name, got[0])
            else:
                assert a == b, (name, got[0], a, b)


async def assert_fast_equals_slow(fast_url: str, slow_url: str) -> dict[str, list[Any]]:
    fast, slow = await table_rows(fast_url), await table_rows(slow_url)
    assert len(fast["requests"]) == ROWS
    assert fast["outcomes"] and all(fast[t] for t in fast)
    for name in slow:
        assert_same_rows(fast[name], slow[name], name)
    assert await index_names(fast_url) == {i.name for i in secondary_indexes()}
    assert await covered_keys(fast_url) == {k: END - DAYS * 86400 for k in METADATA_KEYS}
    return fast


@pytest.fixture(scope="module")
def postgres_pair() -> Iterator[tuple[str, str]]:
    with fresh_postgres_database() as fast, fresh_postgres_database() as slow:
        yield fast, slow


async def test_sqlite_fast_load_stores_what_the_ledger_store_stores(tmp_path: Path) -> None:
    fast_url, slow_url = f"sqlite:///{tmp_path / 'fast.db'}", f"sqlite:///{tmp_path / 'slow.db'}"
    # a flush every two days: days merged in memory, and rows of one key (a UTC day
    # spans two of the ledger's days) added by two upserts
    first_day, _ = LedgerGenerator(ROWS, DAYS, END, SEED).day(0)
    per_day = len(rollup_deltas(first_day, METADATA_KEYS))
    await load({"sqlite": fast_url}, plan(flush_rows=per_day * 3 // 2))
    await write_slow_path(slow_url)
    await assert_fast_equals_slow(fast_url, slow_url)


@pytest.mark.postgres
async def test_postgresql_fast_load_equals_the_store_and_the_sqlite_load(
    postgres_pair: tuple[str, str], tmp_path: Path
) -> None:
    fast_url, slow_url = postgres_pair
    sqlite_url = f"sqlite:///{tmp_path / 'fast.db'}"
    # one load into both, as the bench does; indexes kept this time
    await load({"postgresql": fast_url, "sqlite": sqlite_url}, plan(defer_indexes=False))
    await write_slow_path(slow_url)
    on_postgres = await assert_fast_equals_slow(fast_url, slow_url)
    on_sqlite = await table_rows(sqlite_url)
    for name, rows in on_postgres.items():  # the same ledger on both databases
        assert_same_rows(on_sqlite[name], rows, name)
