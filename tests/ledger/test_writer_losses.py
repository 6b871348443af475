"""What the writer does with records a database refuses and records no spool can keep
(issue 10, items 4 and 5): refused text is made storable, a record still refused is set
aside on disk, and every record that cannot be kept is counted and logged at ERROR."""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec
import pytest

from sluicegate.ledger.spool import FileSpool, MemorySpool, SetAside
from sluicegate.ledger.sql_store import SqlLedgerStore
from sluicegate.ledger.store import RequestFilters
from sluicegate.ledger.writer import LedgerWriter
from tests.db.databases import SQL_BACKENDS, Databases
from tests.ledger.fakes import FlakyStore
from tests.ledger.records import record


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_text_a_dialect_refuses_is_replaced_and_the_row_lands(
    backend: str, databases: Databases, tmp_path: Path
) -> None:
    store = SqlLedgerStore(await databases.engine(backend))
    spool = FileSpool(tmp_path / "ledger.jsonl")
    writer = LedgerWriter(store, batch_size=64, spool=spool)
    await writer.start()
    for n in range(100):
        writer.record(record(n))
    writer.record(record(100, metadata={"tic\x00ket": "T-\x00"}, error_message="a\x00b"))
    writer.record(record(101, user_id="u\ud800", model="gpt\x00"))  # a lone surrogate
    writer.record(record(102, input_tokens=2**70))  # beyond BIGINT: no cleaning helps
    await writer.close()

    assert await store.count(0.0, {}) == 102
    page = await store.query(RequestFilters(), 200, None)
    rows = {r["request_id"]: r for r in page.data}
    nul = rows["req-000100"]
    if backend == "postgres":  # SQLite stores a NUL; PostgreSQL's rows get U+FFFD
        assert nul["metadata"] == {"tic\ufffdket": "T-\ufffd"}
        assert nul["error_message"] == "a\ufffdb"
    # no driver encodes a lone surrogate: refused everywhere, then written cleaned
    assert (rows["req-000101"]["user_id"], rows["req-000101"]["model"]) == ("u\ufffd", "gpt\ufffd")
    status = writer.status()
    assert (status.written, status.set_aside, status.dropped) == (102, 1, 0)
    (aside,) = [
        msgspec.json.decode(line, type=SetAside)
        for line in spool.rejected_path.read_bytes().splitlines()
    ]
    assert aside.record is not None and aside.record.request_id == "req-000102"


async def test_records_no_spool_can_keep_are_counted_and_logged_with_their_number(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = FlakyStore()
    flaky.down = True
    line = len(msgspec.json.encode(record(0))) + 1
    spool = FileSpool(tmp_path / "ledger.jsonl", max_bytes=30 * line)
    writer = LedgerWriter(flaky, batch_size=10, flush_interval=0.01, spool=spool)
    await writer.start()
    with caplog.at_level(logging.ERROR, logger="sluicegate.ledger.writer"):
        for n in range(50):
            writer.record(record(n))
        await writer.close()
    assert (writer.status().spooled, writer.status().dropped) == (30, 20)
    lost = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert lost and "LOST" in lost[0]
    numbers = [int(word) for message in lost for word in message.split()[1:2]]
    assert sum(numbers) == 20  # every lost record is in a logged count
    assert writer.spool_info()["bytes"] == 30 * line


async def test_an_in_memory_spool_at_shutdown_is_a_loss_said_out_loud(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flaky = FlakyStore()
    flaky.down = True
    writer = LedgerWriter(flaky, flush_interval=0.01, spool=MemorySpool(100))
    await writer.start()
    with caplog.at_level(logging.ERROR, logger="sluicegate.ledger.writer"):
        for n in range(7):
            writer.record(record(n))
        await writer.close()
    assert writer.status().dropped == 7
    assert any("7 records LOST" in r.getMessage() for r in caplog.records)
