"""Rollups kept by the ledger store as batches land, through the real writer, on the three
write paths: a SQLite file (the sqlite3 bulk inserter), in-memory SQLite (SQLAlchemy) and
PostgreSQL. Each time the rollup tables must equal the raw rows' figures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics.coverage import key_coverage
from sluicegate.db.engine import create_engine_for
from sluicegate.db.migrate import upgrade_engine
from sluicegate.db.schema import requests, rollup_metadata
from sluicegate.ledger.sql_store import SqlLedgerStore
from sluicegate.ledger.writer import LedgerWriter
from sluicegate.model.record import LedgerRecord
from tests.analytics.reference import (
    assert_same_rollups,
    expected_rollups,
    stored_rollups,
    total_requests,
)
from tests.analytics.team_traffic import traffic
from tests.db.databases import Databases

KEYS = ("customer_id",)
WRITE_PATHS = ["sqlite", "sqlite-memory", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=WRITE_PATHS)
async def db(request: pytest.FixtureRequest, databases: Databases) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite-memory":
        engine = create_engine_for("sqlite:///:memory:")
        await upgrade_engine(engine)
        yield engine
        await engine.dispose()
    else:
        yield await databases.engine(request.param)


async def _through_writer(
    store: SqlLedgerStore, records: list[LedgerRecord], **options: object
) -> LedgerWriter:
    writer = LedgerWriter(store, batch_size=97, flush_interval=0.01, **options)  # type: ignore[arg-type]
    await writer.start()
    for record in records:
        writer.record(record)
    await writer.flush()
    return writer


async def _check(engine: AsyncEngine, keys: tuple[str, ...] = KEYS) -> None:
    async with engine.connect() as conn:
        assert_same_rollups(await stored_rollups(conn), await expected_rollups(conn, keys))


async def test_batches_through_the_writer_equal_the_raw_rows(db: AsyncEngine) -> None:
    store = SqlLedgerStore(db)
    store.set_rollup_keys(KEYS)
    records = traffic(1500)
    writer = await _through_writer(store, records)
    await writer.close()
    await store.close()
    await _check(db)
    async with db.connect() as conn:
        tables = await stored_rollups(conn)
        assert total_requests(tables) == 1500
        # each of several teams, tools and sessions has its rows
        teams = {key[2] for key in tables["usage"]}
        tools = {key[7] for key in tables["usage"]}
        assert {"search", "data", "infra"} <= teams and {"cursor", "claude-code", ""} <= tools
        assert len(tables["sessions"]) == 30


async def test_a_replayed_batch_adds_nothing(db: AsyncEngine) -> None:
    store = SqlLedgerStore(db)
    store.set_rollup_keys(KEYS)
    records = traffic(400)
    await store.write_batch(records[:250])
    await store.write_batch(records[:250])  # the same batch again (an ambiguous commit)
    await store.write_batch(records[200:])  # overlapping the first
    duplicate = msgspec.structs.replace(records[-1], input_tokens=999_999)
    await store.write_batch([records[-1], duplicate])  # both already stored
    fresh = traffic(3, seed=99)
    await store.write_batch([fresh[0], fresh[1], msgspec.structs.replace(fresh[1], team="x")])
    await store.close()
    await _check(db)
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(requests)) == 402
        assert total_requests(await stored_rollups(conn)) == 402


class _CommitThenFail:
    """The real store, whose first write lands and then reports a lost connection (the
    commit's acknowledgement lost): the writer spools the batch and replays it."""

    def __init__(self, inner: SqlLedgerStore):
        self.inner = inner
        self.failed = False

    async def write_batch(self, records: list[LedgerRecord]) -> None:
        await self.inner.write_batch(records)
        if not self.failed:
            self.failed = True
            raise ConnectionResetError("connection lost after commit")

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


async def test_a_batch_the_writer_replays_after_a_lost_commit_adds_nothing(
    db: AsyncEngine, tmp_path: Path
) -> None:
    store = SqlLedgerStore(db)
    store.set_rollup_keys(KEYS)
    flaky = _CommitThenFail(store)
    writer = await _through_writer(flaky, traffic(300), retry_interval=0.01)  # type: ignore[arg-type]
    for _ in range(100):
        if not writer.spooled:
            break
        await writer.replay()
        await asyncio.sleep(0.01)
    await writer.close()
    assert flaky.failed and writer.status().written >= 300
    await store.close()
    await _check(db)
    async with db.connect() as conn:
        assert total_requests(await stored_rollups(conn)) == 300


async def test_a_refused_record_adds_nothing(db: AsyncEngine, tmp_path: Path) -> None:
    """A record the database refuses (a token count past BIGINT) is isolated by the
    writer's split-in-halves retry and set aside; the rest land, and the rollups count
    exactly the rows stored."""
    store = SqlLedgerStore(db)
    store.set_rollup_keys(KEYS)
    records = traffic(300)
    poisoned = [
        msgspec.structs.replace(records[17], input_tokens=2**70),
        msgspec.structs.replace(records[201], output_tokens=-(2**70)),
    ]
    batch = [*records[:17], poisoned[0], *records[18:201], poisoned[1], *records[202:]]
    writer = await _through_writer(store, batch, spool_path=str(tmp_path / "spool"))
    await writer.close()
    await store.close()
    assert writer.status().set_aside == 2
    await _check(db)
    async with db.connect() as conn:
        assert total_requests(await stored_rollups(conn)) == 298


@pytest.mark.postgres
async def test_text_postgres_refuses_is_cleaned_and_counted_once(databases: Databases) -> None:
    engine = await databases.engine("postgres")
    store = SqlLedgerStore(engine)
    records = traffic(50)
    records[7] = msgspec.structs.replace(records[7], team="bad\x00team", session_id="s-nul")
    writer = await _through_writer(store, records)
    await writer.close()
    await store.close()
    assert writer.status().set_aside == 0
    await _check(engine, ())
    async with engine.connect() as conn:
        tables = await stored_rollups(conn)
    assert total_requests(tables) == 50
    assert tables["sessions"][("s-nul",)]["team"] == "bad\ufffdteam"


async def test_metadata_keys_are_rolled_up_from_when_the_config_names_them(
    db: AsyncEngine,
) -> None:
    store = SqlLedgerStore(db)
    before, after = traffic(200, seed=1), traffic(200, seed=2)
    store.set_rollup_keys(())  # the gateway's first config: no key
    await store.write_batch(before)
    told = time.time()
    store.set_rollup_keys(KEYS)  # a config change adds one
    await store.write_batch(after)  # ...whose coverage is written with the next batch
    assert store.rollup_keys == KEYS
    await store.close()
    async with db.connect() as conn:
        coverage = (await key_coverage(conn))["customer_id"]
        meta = await conn.scalar(
            select(func.sum(rollup_metadata.c.requests)).where(rollup_metadata.c.grain == "day")
        )
    assert told <= coverage.covered_since <= time.time() and coverage.covered_until is None
    assert not coverage.covers(told - 1, told + 10)  # records before the change: not all in
    assert meta == sum(1 for r in after if "customer_id" in r.metadata)


@pytest.mark.postgres
async def test_two_writers_on_one_postgres_add_to_the_same_rows(databases: Databases) -> None:
    """Two gateways' writers, each with its own engine, land interleaved batches that
    share every rollup row: no deadlock, nothing lost, nothing counted twice."""
    engine = await databases.engine("postgres")
    url = engine.url.render_as_string(hide_password=False).replace("+asyncpg", "")
    second = create_engine_for(url)
    stores = [SqlLedgerStore(engine), SqlLedgerStore(second)]
    records = traffic(2400, span_s=2 * 3600)  # few hours: the writers meet on the same rows
    for store in stores:
        store.set_rollup_keys(KEYS)
    writers = [LedgerWriter(store, batch_size=40, flush_interval=0.001) for store in stores]
    for writer in writers:
        await writer.start()
    for i, record in enumerate(records):
        writers[i % 2].record(record)
        if i % 200 == 0:
            await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*(w.flush() for w in writers)), 60)
    for writer in writers:
        assert writer.status().written == 1200 and not writer.spooling
        await writer.close()
    await second.dispose()
    await _check(engine)


async def test_memory_store_keeps_the_keys_it_is_told() -> None:
    from sluicegate.ledger.memory_store import MemoryLedgerStore

    store = MemoryLedgerStore()
    store.set_rollup_keys(["a", "b", "a"])
    assert store.rollup_keys == ("a", "b")
