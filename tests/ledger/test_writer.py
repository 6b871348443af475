from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import msgspec
import pytest

from sluicegate.ledger.memory_store import MemoryLedgerStore
from sluicegate.ledger.spool import SetAside
from sluicegate.ledger.sql_store import SqlLedgerStore
from sluicegate.ledger.store import RequestFilters
from sluicegate.ledger.writer import LedgerWriter
from tests.db.databases import SQL_BACKENDS, Databases
from tests.ledger.fakes import FlakyStore
from tests.ledger.records import record


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
def flaky() -> FlakyStore:
    return FlakyStore()


@pytest.fixture
async def writer(flaky: FlakyStore, tmp_path: Path) -> AsyncIterator[LedgerWriter]:
    w = LedgerWriter(
        flaky,
        batch_size=100,
        flush_interval=0.05,
        spool_path=str(tmp_path / "ledger.spool"),
        retry_interval=0.05,
    )
    await w.start()
    yield w
    await w.close()


async def test_thousands_of_records_arrive_in_batches(
    writer: LedgerWriter, flaky: FlakyStore
) -> None:
    for n in range(5000):
        writer.record(record(n))
    assert writer.pending == 5000
    await writer.flush()
    assert len(flaky.inner) == 5000 and writer.pending == 0
    assert sum(flaky.calls) == 5000 and max(flaky.calls) == 100
    assert len(flaky.calls) <= 55  # batched, not one write per record
    assert writer.status().written == 5000


async def test_a_lone_record_is_written_without_a_flush(
    writer: LedgerWriter, flaky: FlakyStore
) -> None:
    writer.record(record(1))
    await eventually(lambda: len(flaky.inner) == 1, timeout=1.0)
    await writer.flush()  # nothing left: returns at once
    assert flaky.calls == [1]


async def test_outage_spools_then_replays_without_loss_or_duplicates(
    writer: LedgerWriter, flaky: FlakyStore, tmp_path: Path
) -> None:
    flaky.down = True
    for n in range(750):
        writer.record(record(n))
    await writer.flush()  # everything accepted is now written or spooled
    status = writer.status()
    assert (status.queued, status.spooled, status.store_available) == (0, 750, False)
    assert "database is down" in (status.last_error or "")
    assert (tmp_path / "ledger.spool").exists() or (tmp_path / "ledger.spool.replay").exists()
    for n in range(750, 1000):  # still down: straight to the spool, without a store call
        writer.record(record(n))
    calls_while_down = len(flaky.calls)
    await eventually(lambda: writer.status().spooled == 1000)
    assert len(flaky.calls) - calls_while_down <= 3  # only the periodic probes
    flaky.down = False
    await eventually(lambda: writer.pending == 0)  # the retry timer replays it
    assert len(flaky.inner) == 1000
    assert writer.status().store_available and writer.status().last_error is None
    assert not list(tmp_path.glob("ledger.spool*"))


async def test_replay_and_close_do_not_wait_for_the_retry_timer(
    flaky: FlakyStore, tmp_path: Path
) -> None:
    writer = LedgerWriter(
        flaky,
        batch_size=50,
        flush_interval=0.05,
        spool_path=str(tmp_path / "s"),
        retry_interval=3600,
    )
    await writer.start()
    flaky.down = True
    for n in range(120):
        writer.record(record(n))
    await writer.flush()
    assert writer.status().spooled == 120
    flaky.down = False
    await writer.flush()  # the store is in its back-off: flush does not probe it...
    assert len(flaky.inner) == 0 and writer.spooled == 120 and writer.spooling
    await writer.replay()  # ...but an explicit replay does, the retry timer an hour away
    assert len(flaky.inner) == 120 and writer.pending == 0 and not writer.spooling
    flaky.down = True
    writer.record(record(500))
    await writer.flush()
    assert writer.spooled == 1
    flaky.down = False
    await writer.close()  # close makes a last attempt whatever the back-off
    assert len(flaky.inner) == 121 and writer.pending == 0


async def test_a_lost_commit_acknowledgement_makes_no_duplicates(
    writer: LedgerWriter, flaky: FlakyStore
) -> None:
    flaky.ambiguous = True
    for n in range(300):
        writer.record(record(n))
    await writer.flush()
    assert flaky.stored_calls  # landed, though the writer saw a failure and spooled it
    flaky.ambiguous = False
    await eventually(lambda: writer.pending == 0)  # replayed, the landed batch included
    assert len(flaky.inner) == 300
    page = await flaky.query(RequestFilters(), 1000, None)
    assert sorted(r["request_id"] for r in page.data) == [f"req-{n:06d}" for n in range(300)]


async def test_a_refused_record_is_set_aside_and_the_rest_written(
    writer: LedgerWriter, flaky: FlakyStore, tmp_path: Path
) -> None:
    for n in range(100):
        writer.record(record(n, error_message="poison" if n == 37 else None))
    await writer.flush()
    assert len(flaky.inner) == 99
    status = writer.status()
    assert (status.set_aside, status.spooled, status.dropped) == (1, 0, 0)
    (line,) = (tmp_path / "ledger.spool.rejected").read_bytes().splitlines()
    aside = msgspec.json.decode(line, type=SetAside)
    assert aside.record == record(37, error_message="poison")
    assert "value out of range" in aside.reason
    assert len(flaky.calls) <= 2 * 7 + 1  # bisected, not retried one by one


async def test_a_full_queue_spools_instead_of_blocking_or_dropping(
    flaky: FlakyStore, tmp_path: Path
) -> None:
    writer = LedgerWriter(
        flaky, batch_size=10, flush_interval=0.01, max_queue=20, spool_path=str(tmp_path / "s")
    )
    await writer.start()
    for n in range(500):  # no await: the writer task cannot run meanwhile
        writer.record(record(n))
    assert writer.status().queued == 20 and writer.status().spooled == 480
    await writer.flush()
    assert len(flaky.inner) == 500 and writer.pending == 0
    await writer.close()


async def test_without_a_spool_path_outages_are_held_in_memory(flaky: FlakyStore) -> None:
    writer = LedgerWriter(flaky, batch_size=10, flush_interval=0.01, retry_interval=0.02)
    await writer.start()
    flaky.down = True
    for n in range(35):
        writer.record(record(n))
    await writer.flush()
    assert writer.status().spooled == 35
    flaky.down = False
    await eventually(lambda: writer.pending == 0)
    assert len(flaky.inner) == 35
    await writer.close()


async def test_close_flushes_and_later_records_wait_in_the_spool_for_the_next_start(
    tmp_path: Path,
) -> None:
    store = MemoryLedgerStore()
    spool = str(tmp_path / "ledger.spool")
    writer = LedgerWriter(store, flush_interval=5.0, spool_path=spool)  # would linger 5 s
    await writer.start()
    for n in range(10):
        writer.record(record(n))
    started = time.monotonic()
    await writer.close()
    assert time.monotonic() - started < 1.0 and len(store) == 10
    writer.record(record(10))  # a straggler after shutdown: spooled, not lost
    await writer.close()  # a second close is harmless

    restarted = LedgerWriter(store, flush_interval=0.01, spool_path=spool)
    assert restarted.pending == 1
    await restarted.start()
    await eventually(lambda: len(store) == 11)
    await restarted.close()


async def test_close_without_start_still_writes(tmp_path: Path) -> None:
    store = MemoryLedgerStore()
    writer = LedgerWriter(store, spool_path=str(tmp_path / "s"))
    writer.record(record(1))
    await writer.close()
    assert len(store) == 1


async def test_flush_needs_a_running_writer() -> None:
    with pytest.raises(RuntimeError):
        await LedgerWriter(MemoryLedgerStore()).flush()


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_thousands_of_records_reach_a_real_database(
    backend: str, databases: Databases, tmp_path: Path
) -> None:
    store = SqlLedgerStore(await databases.engine(backend))
    writer = LedgerWriter(store, spool_path=str(tmp_path / "s"))
    await writer.start()
    for n in range(3000):
        writer.record(record(n, metadata={"n": str(n)}))
    await writer.close()
    assert await store.count(0.0, {}) == 3000
    assert await store.count(0.0, {"n": "2999"}) == 1
    assert writer.status().spooled == 0


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_a_record_the_database_refuses_is_set_aside(
    backend: str, databases: Databases, tmp_path: Path
) -> None:
    store = SqlLedgerStore(await databases.engine(backend))
    writer = LedgerWriter(store, batch_size=64, spool_path=str(tmp_path / "s"))
    await writer.start()
    for n in range(200):
        writer.record(record(n, input_tokens=2**70 if n == 150 else 1))  # beyond BIGINT
    await writer.close()
    assert await store.count(0.0, {}) == 199
    assert (writer.status().set_aside, writer.status().spooled) == (1, 0)
