from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from sluicegate.ledger.spool import FileSpool, MemorySpool, SetAside, Spool, SpoolFull
from tests.ledger.records import full_record, record


@pytest.fixture(params=["file", "memory"])
def spool(request: pytest.FixtureRequest, tmp_path: Path) -> Spool:
    return FileSpool(tmp_path / "ledger.spool") if request.param == "file" else MemorySpool()


def drain(spool: Spool) -> list[str]:
    """Every record left, oldest first, committed as read."""
    seen: list[str] = []
    while batch := spool.peek(3):
        seen += [r.request_id for r in batch]
        spool.commit()
    return seen


def test_fifo_peek_commit(spool: Spool) -> None:
    assert spool.count == 0 and spool.peek(10) == []
    spool.append([record(n) for n in range(5)])
    spool.append([full_record()])
    assert spool.count == 6
    first = spool.peek(4)
    assert [r.request_id for r in first] == [f"req-{n:06d}" for n in range(4)]
    assert spool.peek(4) == first  # peek does not remove
    spool.commit()
    assert spool.count == 2
    spool.append([record(9)])  # arrives while a replay is under way
    assert spool.peek(2)[1] == full_record()  # every field survives the spool
    assert drain(spool) == ["req-000004", "req-full", "req-000009"]
    assert spool.count == 0 and spool.peek(10) == []


def test_file_spool_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "ledger.spool"
    first = FileSpool(path)
    first.append([record(n) for n in range(10)])
    first.peek(3)
    first.commit()
    first.append([record(10)])
    again = FileSpool(path)  # the process died; committed records are gone for good
    assert again.count == 8
    assert drain(again) == [f"req-{n:06d}" for n in range(3, 11)]
    assert again.count == 0
    assert not path.exists() and not again.replay_path.exists()
    assert not again.offset_path.exists()


def test_a_torn_last_line_is_set_aside_not_lost_or_merged(tmp_path: Path) -> None:
    path = tmp_path / "ledger.spool"
    FileSpool(path).append([record(1)])
    with open(path, "ab") as f:
        f.write(b'{"request_id": "req-torn", "ts"')  # the crash happened mid-write
    spool = FileSpool(path)
    spool.append([record(2)])
    assert spool.count == 3
    assert drain(spool) == ["req-000001", "req-000002"]
    assert spool.count == 0
    (aside,) = [
        msgspec.json.decode(line, type=SetAside)
        for line in spool.rejected_path.read_bytes().splitlines()
    ]
    assert aside.reason == "undecodable spool line" and aside.line is not None
    assert aside.line.startswith('{"request_id": "req-torn"')


def test_set_aside_keeps_the_record_and_reason(tmp_path: Path) -> None:
    spool = FileSpool(tmp_path / "s")
    spool.set_aside([record(1)], "DataError: bad")
    (line,) = spool.rejected_path.read_bytes().splitlines()
    assert msgspec.json.decode(line, type=SetAside) == SetAside(
        reason="DataError: bad", record=record(1)
    )


def test_memory_spool_is_bounded_and_says_how_many_it_could_not_keep() -> None:
    spool = MemorySpool(capacity=3)
    spool.append([record(1), record(2)])
    with pytest.raises(SpoolFull) as full:
        spool.append([record(3), record(4)])
    assert (spool.count, full.value.lost) == (3, 1)


def test_file_spool_is_bounded_in_bytes_and_frees_what_is_replayed(tmp_path: Path) -> None:
    line = len(msgspec.json.encode(record(0))) + 1
    spool = FileSpool(tmp_path / "s", max_bytes=3 * line + 10)
    with pytest.raises(SpoolFull) as full:
        spool.append([record(n) for n in range(5)])
    assert (spool.count, full.value.lost) == (3, 2)
    assert spool.describe() == {
        "durable": True,
        "path": str(tmp_path / "s"),
        "bytes": 3 * line,
        "max_bytes": 3 * line + 10,
    }
    assert [r.request_id for r in spool.peek(2)] == ["req-000000", "req-000001"]
    spool.commit()
    spool.append([record(5), record(6)])  # room again once replayed
    assert FileSpool(tmp_path / "s", max_bytes=10).describe()["bytes"] == 3 * line
    assert drain(spool) == ["req-000002", "req-000005", "req-000006"]
