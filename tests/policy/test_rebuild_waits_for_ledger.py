"""A budget rebuild after Redis lost its data reads the ledger only once every live
replica's ledger writer has landed the rows of requests finished before the loss; a
replica that is gone does not hold it, and one stuck behind holds it for a bound."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.ledger.landed_marks import LandedPublisher, LocalLanded, SqlLandedMarks
from sluicegate.ledger.writer import LedgerWriter
from sluicegate.model.record import LedgerRecord
from sluicegate.policy.admission import PolicyBlocked
from sluicegate.policy.counters.redis_store import RedisCounterStore
from sluicegate.policy.engine import PolicyEngine
from sluicegate.policy.store_health import SEEDED_MARK
from tests.db.databases import SQL_BACKENDS, Databases
from tests.ledger.fakes import HeldStore
from tests.policy.helpers import policy
from tests.policy.helpers import request as incoming  # `request` is pytest's
from tests.policy.test_budgets import ONE_DOLLAR, SEARCH
from tests.support import REDIS_URL

pytestmark = [pytest.mark.redis, pytest.mark.parametrize("make_store", ["redis"], indirect=True)]
HELD_S = 1.5  # longer than the fixed 1.0 s the rebuild used to sleep


@pytest.fixture(params=SQL_BACKENDS)
async def ledger_db(request: pytest.FixtureRequest, databases: Databases) -> AsyncEngine:
    """A migrated, emptied database (SQLite and PostgreSQL) for replicas' landed marks."""
    return await databases.engine(request.param)


@pytest.fixture
async def ledger() -> AsyncIterator[tuple[HeldStore, LedgerWriter]]:
    store = HeldStore()
    writer = LedgerWriter(store, flush_interval=0.02)
    await writer.start()
    yield store, writer
    store.release()
    await writer.close()


def engine_on(counters: RedisCounterStore, **kw: float) -> PolicyEngine:
    engine = PolicyEngine(counters, failure_mode="fail_closed", seed_wait_s=5.0, **kw)
    engine.set_policy(policy(ONE_DOLLAR))
    return engine


async def spend_and_record(engine: PolicyEngine, writer: LedgerWriter, calls: int) -> None:
    """Requests that finish: settled, then handed to the ledger writer (as the pipeline
    does), $0.10 each."""
    for _ in range(calls):
        inp = incoming(env=SEARCH, cost=0.10)
        arrived = time.time()
        admission = await engine.admit(inp)
        await engine.settle(admission, None, 0.10)
        writer.record(
            LedgerRecord(
                request_id=inp.request_id, ts=arrived, project="platform-search", cost_usd=0.10
            )
        )


async def lose_data(counters: RedisCounterStore) -> None:
    """This test's keys deleted (the shared server is never flushed): Redis restarted empty."""
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(f"{counters._base}*", count=1000)]
    await client.delete(*keys)
    await client.aclose()


async def test_the_rebuild_waits_for_rows_finished_before_the_loss_to_land(make_store, ledger):
    """$0.60 of $1 settled; the ledger writer is held back (a database slow under load)
    past the loss for HELD_S. A $0.50 request after the loss waits for the rebuild, which
    must not seed the counter from a ledger without those rows: it is refused."""
    store, writer = ledger
    counters = make_store(lease_share=0, seeding_mark=SEEDED_MARK)
    gate = engine_on(counters, landed_wait_s=4.0)
    try:
        await gate.rebuild_budgets(store.sum_cost, LocalLanded(writer))
        await spend_and_record(gate, writer, 6)
        assert (await gate.budget_status())[0]["spent_usd"] == pytest.approx(0.6)
        await lose_data(counters)
        asyncio.get_running_loop().call_later(HELD_S, store.release)
        started = time.monotonic()
        with pytest.raises(PolicyBlocked):
            await gate.admit(incoming(env=SEARCH, cost=0.5))
        assert time.monotonic() - started >= HELD_S - 0.05  # it waited for the rows
        assert (await gate.budget_status())[0]["spent_usd"] == pytest.approx(0.6)
    finally:
        await gate.close()


async def test_a_replica_gone_silent_does_not_hold_the_rebuild(
    make_store, ledger, ledger_db: AsyncEngine, caplog
):
    """Replicas' marks in the database: this process's, kept by its publisher, and one
    of a replica that crashed behind (not heard from since). The rebuild waits for this
    process's rows, not for the crashed one's, and says so."""
    store, writer = ledger
    crashed = SqlLandedMarks(ledger_db, writer_id="crashed", clock=lambda: time.time() - 30)
    await crashed.publish(time.time() - 60)
    marks = SqlLandedMarks(ledger_db, writer_id="here")
    publisher = LandedPublisher(writer, marks, interval_s=0.05)
    await publisher.start()
    counters = make_store(lease_share=0, seeding_mark=SEEDED_MARK)
    gate = engine_on(counters, landed_wait_s=4.0)
    try:
        await gate.rebuild_budgets(store.sum_cost, marks)
        await spend_and_record(gate, writer, 6)
        await lose_data(counters)
        asyncio.get_running_loop().call_later(0.5, store.release)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING), pytest.raises(PolicyBlocked):
            await gate.admit(incoming(env=SEARCH, cost=0.5))
        assert 0.45 <= time.monotonic() - started < 3.0
        assert "crashed has not said how far its ledger landed" in caplog.text
        assert "without every row" not in caplog.text  # it did not time out
    finally:
        await gate.close()
        await publisher.stop()


async def test_a_writer_stuck_behind_holds_the_rebuild_for_a_bound_only(make_store, ledger, caplog):
    """The ledger never lands within `landed_wait_s`: the rebuild reads it all the same
    after that bound, says so, and admissions go on (from what the ledger held)."""
    store, writer = ledger
    counters = make_store(lease_share=0, seeding_mark=SEEDED_MARK)
    gate = engine_on(counters, landed_wait_s=0.5)
    try:
        await gate.rebuild_budgets(store.sum_cost, LocalLanded(writer))
        await spend_and_record(gate, writer, 6)
        await lose_data(counters)
        started = time.monotonic()
        with caplog.at_level(logging.WARNING):
            admitted = await gate.admit(incoming(env=SEARCH, cost=0.5))  # rows not landed
        assert 0.45 <= time.monotonic() - started < 3.0
        assert "without every row of requests finished before its cutoff" in caplog.text
        assert "this process's ledger writer" in caplog.text
        assert admitted.reservation_id is not None
    finally:
        await gate.close()


async def test_a_scheduled_pass_that_finds_redis_emptied_waits_for_the_rows_too(make_store, ledger):
    """The passes after a rebuild run on a timer. The one that first finds Redis empty
    makes the cutoffs and sets the seeding mark, so it too must wait for the rows (one
    that did not let three replicas spend $1.36 of $1)."""
    store, writer = ledger
    counters = make_store(lease_share=0, seeding_mark=SEEDED_MARK)
    gate = engine_on(counters, landed_wait_s=4.0, store_check_s=2.0)  # a pass at 0.4 s
    try:
        await gate.rebuild_budgets(store.sum_cost, LocalLanded(writer))
        await spend_and_record(gate, writer, 6)
        await lose_data(counters)
        asyncio.get_running_loop().call_later(HELD_S, store.release)
        await asyncio.sleep(0.8)  # the pass has found Redis empty; no check yet
        with pytest.raises(PolicyBlocked):
            await gate.admit(incoming(env=SEARCH, cost=0.5))
        assert (await gate.budget_status())[0]["spent_usd"] == pytest.approx(0.6)
    finally:
        await gate.close()
