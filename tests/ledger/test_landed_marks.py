"""How far the ledger has landed: a writer's own mark, and every process's in the
database, which a budget rebuild waits for before it reads the ledger."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.db.schema import ledger_landed
from sluicegate.ledger.landed_marks import LandedPublisher, LocalLanded, SqlLandedMarks
from sluicegate.ledger.writer import LedgerWriter
from tests.ledger.fakes import FlakyStore, HeldStore
from tests.ledger.records import record
from tests.ledger.test_writer import eventually
from tests.policy.helpers import FakeClock


async def test_the_mark_stays_before_a_record_until_its_batch_has_landed() -> None:
    store = HeldStore()
    writer = LedgerWriter(store, flush_interval=0.01)
    await writer.start()
    try:
        idle = time.time()
        assert writer.landed_through() >= idle  # nothing waiting: landed up to now
        writer.record(record(1))
        accepted = time.time()
        await eventually(lambda: store.writing == 1)  # its batch is being written
        writer.record(record(2))
        await asyncio.sleep(0.1)
        assert writer.landed_through() <= accepted
        assert await LocalLanded(writer).lagging(accepted)  # a rebuild would wait
        store.release()
        await writer.flush()
        assert writer.landed_through() > accepted
        assert await LocalLanded(writer).lagging(accepted) == []
        assert len(store) == 2
    finally:
        store.release()
        await writer.close()


async def test_spooled_records_hold_the_mark_until_they_are_replayed(tmp_path: Path) -> None:
    """A store that is down sends batches to the spool: handled, not landed."""
    flaky = FlakyStore()
    writer = LedgerWriter(
        flaky, flush_interval=0.01, retry_interval=0.05, spool_path=str(tmp_path / "s")
    )
    await writer.start()
    try:
        flaky.down = True
        writer.record(record(1))
        accepted = time.time()
        await writer.flush()
        assert writer.spooled == 1 and writer.status().queued == 0
        writer.record(record(2))  # behind the spooled one: the mark stays
        await writer.flush()
        await asyncio.sleep(0.1)
        assert writer.landed_through() <= accepted
        flaky.down = False
        await eventually(lambda: writer.spooled == 0)
        assert writer.landed_through() > accepted
    finally:
        await writer.close()


async def test_a_spool_left_by_an_earlier_run_holds_the_mark_until_it_is_replayed(
    tmp_path: Path,
) -> None:
    flaky = FlakyStore()
    flaky.down = True
    first = LedgerWriter(flaky, retry_interval=60, spool_path=str(tmp_path / "s"))
    await first.start()
    first.record(record(1))
    await first.close()  # the store is down: the record waits in the spool file
    flaky.down = False
    second = LedgerWriter(flaky, retry_interval=60, spool_path=str(tmp_path / "s"))
    assert second.landed_through() == 0.0  # older than anything this run accepts
    await second.start()
    try:
        await second.replay()
        assert len(flaky.inner) == 1
        assert second.landed_through() > time.time() - 1
    finally:
        await second.close()


async def test_every_process_mark_in_the_database_and_a_silent_one_taken_as_gone(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(1_000.0)
    here = SqlLandedMarks(engine, writer_id="here", clock=clock, silent_after_s=5)
    there = SqlLandedMarks(engine, writer_id="there", clock=clock, silent_after_s=5)
    await here.publish(1_000.0)
    await there.publish(990.0)
    assert await here.lagging(995.0) == ["there (5.00s behind)"]
    await there.publish(996.0)  # it caught up
    assert await here.lagging(995.0) == []

    clock.advance(6)  # "there" crashed: not heard from since
    await here.publish(1_006.0)
    with caplog.at_level(logging.WARNING):
        assert await here.lagging(1_005.0) == []
    assert "there has not said how far its ledger landed" in caplog.text

    await here.withdraw()  # a clean stop
    clock.advance(86_400)
    await here.prune()  # a later start: rows of processes long gone go
    async with engine.connect() as conn:
        assert (await conn.execute(select(ledger_landed.c.writer_id))).all() == []


async def test_the_publisher_keeps_an_idle_process_mark_moving(engine: AsyncEngine) -> None:
    store = HeldStore()
    store.release()
    writer = LedgerWriter(store, flush_interval=0.01)
    marks = SqlLandedMarks(engine, writer_id="idle")
    publisher = LandedPublisher(writer, marks, interval_s=0.05)
    await writer.start()
    await publisher.start()
    try:
        later = time.time() + 0.2
        deadline = time.monotonic() + 5
        while await marks.lagging(later):  # no batch at all: the idle mark moves on
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
    finally:
        await writer.close()
        await publisher.stop()
    async with engine.connect() as conn:
        assert (await conn.execute(select(ledger_landed.c.writer_id))).all() == []
