"""The durable spool's directory: where it is by default, one slot per process, and
records of a slot nobody holds any more taken over at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluicegate.ledger.spool import FileSpool, MemorySpool
from sluicegate.ledger.spool_dir import default_spool_dir, open_spool
from tests.ledger.records import record


def test_the_default_is_beside_a_sqlite_file_else_one_directory_per_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_spool_dir("sqlite:///./gw.db") == f"{tmp_path}/gw.db-spool"
    assert default_spool_dir("sqlite:///:memory:") is None
    assert default_spool_dir("sqlite://") is None
    first = default_spool_dir("postgresql://u:secret@db.internal:5433/ledger")
    assert first == f"{tmp_path}/sluicegate-spool/db.internal-5433-ledger"
    assert default_spool_dir("postgresql://u@db.internal:5433/other") != first


def test_processes_sharing_a_directory_get_a_slot_each(tmp_path: Path) -> None:
    first = open_spool(str(tmp_path), max_bytes=1 << 20, memory_capacity=10)
    second = open_spool(str(tmp_path), max_bytes=1 << 20, memory_capacity=10)
    assert isinstance(first, FileSpool) and isinstance(second, FileSpool)
    assert first.path != second.path
    first.append([record(1)])
    second.append([record(2)])
    assert (first.count, second.count) == (1, 1)  # neither replays the other's
    first.close()
    second.close()
    assert isinstance(open_spool(None, max_bytes=1, memory_capacity=10), MemorySpool)


def test_records_of_a_slot_no_one_holds_are_taken_over_at_start(tmp_path: Path) -> None:
    first = open_spool(str(tmp_path), max_bytes=1 << 20, memory_capacity=10)
    second = open_spool(str(tmp_path), max_bytes=1 << 20, memory_capacity=10)
    first.append([record(1), record(2)])
    second.append([record(3)])
    first.close()
    second.close()  # two workers stopped; one starts again

    again = open_spool(str(tmp_path), max_bytes=1 << 20, memory_capacity=10)
    ids = []
    while batch := again.peek(10):
        ids += [r.request_id for r in batch]
        again.commit()
    assert sorted(ids) == ["req-000001", "req-000002", "req-000003"]
    again.close()
    empty = open_spool(str(tmp_path), max_bytes=1 << 20, memory_capacity=10)
    assert empty.count == 0
    empty.close()
