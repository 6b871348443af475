from __future__ import annotations

import msgspec
import pytest

from sluicegate.errors import InvalidRequest
from sluicegate.ledger.memory_store import MemoryLedgerStore
from sluicegate.ledger.sql_store import SqlLedgerStore
from sluicegate.ledger.store import MAX_PAGE, LedgerStore, RequestFilters
from sluicegate.model.record import LedgerRecord
from tests.db.databases import ALL_BACKENDS, Databases
from tests.ledger.records import full_record, record


@pytest.fixture(params=ALL_BACKENDS)
async def store(request: pytest.FixtureRequest, databases: Databases) -> LedgerStore:
    if request.param == "memory":
        return MemoryLedgerStore()
    return SqlLedgerStore(await databases.engine(request.param))


async def ids(store: LedgerStore, limit: int = 1000, **filters: object) -> list[str]:
    page = await store.query(RequestFilters(**filters), limit, None)  # type: ignore[arg-type]
    return [row["request_id"] for row in page.data]


async def test_every_field_round_trips(store: LedgerStore) -> None:
    rec = full_record()
    await store.write_batch([rec])
    (row,) = (await store.query(RequestFilters(), 10, None)).data
    expected = msgspec.to_builtins(rec)
    assert row.pop("ts") == "2023-11-14T22:15:23.456Z"
    assert row.pop("ts_unix") == rec.ts
    del expected["ts"]
    assert row == expected
    assert list(row) == [f for f in LedgerRecord.__struct_fields__ if f != "ts"]


async def test_unreported_usage_stays_none(store: LedgerStore) -> None:
    await store.write_batch([LedgerRecord(request_id="bare", ts=5.0)])
    (row,) = (await store.query(RequestFilters(), 10, None)).data
    for name in (
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "cost_usd",
        "latency_ms",
        "ttft_ms",
    ):
        assert row[name] is None, name
    assert (row["metadata"], row["attempts"], row["guardrail_events"]) == ({}, [], [])
    assert row["stream"] is False and row["status_code"] == 0


async def test_writes_are_idempotent_per_request_id(store: LedgerStore) -> None:
    await store.write_batch([record(1), record(2)])
    await store.write_batch([record(2, project="changed"), record(3)])
    await store.write_batch([])
    assert await ids(store) == ["req-000003", "req-000002", "req-000001"]
    assert await ids(store, project="changed") == []


FILTER_DATA = [
    record(1, project="alpha", team="red", user_id="ann", session_id="s1", key_id="k1"),
    record(
        2,
        project="beta",
        team="red",
        user_id="bob",
        workflow_tag="triage",
        status_code=429,
        requested_model="smart",
        model="claude",
    ),
    record(
        3,
        project="alpha",
        team="blue",
        user_id="ann",
        session_id="s1",
        status_code=500,
        requested_model="claude",
        model="claude",
    ),
    record(4, project="alpha", team="blue", workflow_tag="triage", status_code=0, key_id="k1"),
    record(5, project="beta", status_code=302, requested_model="smart", model="gpt"),
]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [5, 4, 3, 2, 1]),
        ({"project": "alpha"}, [4, 3, 1]),
        ({"team": "red"}, [2, 1]),
        ({"user_id": "ann"}, [3, 1]),
        ({"session_id": "s1"}, [3, 1]),
        ({"workflow_tag": "triage"}, [4, 2]),
        ({"key_id": "k1"}, [4, 1]),
        ({"model": "claude"}, [3, 2]),  # requested_model or model
        ({"model": "smart"}, [5, 2]),
        ({"status": 429}, [2]),
        ({"status": "500"}, [3]),
        ({"status": "ok"}, [5, 1]),
        ({"status": "error"}, [4, 3, 2]),  # 0: no answer at all counts as an error
        ({"status": "4xx"}, [2]),
        ({"status": "5XX"}, [3]),
        ({"since": 1_700_000_002.0}, [5, 4, 3, 2]),  # since inclusive
        ({"until": 1_700_000_002.0}, [1]),  # until exclusive
        ({"since": 1_700_000_002.0, "until": 1_700_000_004.0, "project": "alpha"}, [3]),
        ({"project": "nobody"}, []),
    ],
)
async def test_filters(store: LedgerStore, filters: dict[str, object], expected: list[int]) -> None:
    await store.write_batch(FILTER_DATA)
    assert await ids(store, **filters) == [f"req-{n:06d}" for n in expected]


@pytest.mark.parametrize(
    "bad",
    [{"status": "weird"}, {"status": "9"}, {"status": -1}, {"status": 10**12}, {"status": "²"}],
)
async def test_bad_status_or_cursor_is_an_invalid_request(
    store: LedgerStore, bad: dict[str, object]
) -> None:
    await store.write_batch(FILTER_DATA)
    if bad["status"] == "9":  # a code nobody returns is fine, just empty
        assert await ids(store, **bad) == []
        return
    with pytest.raises(InvalidRequest) as caught:
        await ids(store, **bad)
    assert caught.value.param == "status"
    for cursor in ("not-base64!", "bm9wZQ", "WzEsMl0"):  # junk, "nope", [1,2]
        with pytest.raises(InvalidRequest):
            await store.query(RequestFilters(), 10, cursor)


async def test_pages_cover_everything_once_newest_first(store: LedgerStore) -> None:
    # seven records share each timestamp, so the cursor must break ties by request id
    records = [
        record(n, ts=1_000.0 + n // 7, project="alpha" if n % 3 else "beta") for n in range(2345)
    ]
    await store.write_batch(records[1000:] + records[:1000])
    for filters, wanted in (
        (RequestFilters(), records),
        (RequestFilters(project="beta"), [r for r in records if r.project == "beta"]),
    ):
        expected = [
            r.request_id for r in sorted(wanted, key=lambda r: (r.ts, r.request_id), reverse=True)
        ]
        seen: list[str] = []
        cursor = None
        while True:
            page = await store.query(filters, 100, cursor)
            assert len(page.data) <= 100
            seen += [row["request_id"] for row in page.data]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == expected


async def test_limit_is_clamped(store: LedgerStore) -> None:
    await store.write_batch([record(n) for n in range(MAX_PAGE + 5)])
    page = await store.query(RequestFilters(), 5000, None)
    assert len(page.data) == MAX_PAGE and page.next_cursor is not None
    rest = await store.query(RequestFilters(), 5000, page.next_cursor)
    assert len(rest.data) == 5 and rest.next_cursor is None
    assert len((await store.query(RequestFilters(), 0, None)).data) == 1
    exact = await store.query(RequestFilters(), MAX_PAGE + 5, None)
    assert len(exact.data) == MAX_PAGE


async def test_sum_cost_and_count_by_envelope_field_and_metadata(store: LedgerStore) -> None:
    await store.write_batch(
        [
            record(1, ts=100.0, team="red", cost_usd=1.0, metadata={"customer": "acme"}),
            record(2, ts=200.0, team="red", cost_usd=2.5, metadata={"customer": "acme"}),
            record(3, ts=200.0, team="blue", cost_usd=4.0, metadata={"customer": "acme"}),
            record(4, ts=300.0, team="red", cost_usd=None, metadata={"customer": "zeta"}),
            record(5, ts=300.0, team="red", cost_usd=0.25, metadata={}),
        ]
    )
    assert await store.sum_cost(0.0, {}) == pytest.approx(7.75)
    assert await store.sum_cost(0.0, {"team": "red"}) == pytest.approx(3.75)
    assert await store.sum_cost(200.0, {"team": "red"}) == pytest.approx(2.75)  # inclusive
    assert await store.sum_cost(0.0, {"customer": "acme"}) == pytest.approx(7.5)
    assert await store.sum_cost(0.0, {"customer": "acme", "team": "red"}) == pytest.approx(3.5)
    assert await store.sum_cost(0.0, {"customer": "zeta"}) == 0.0  # unknown cost is not $0...
    assert await store.count(0.0, {"customer": "zeta"}) == 1  # ...but the request counts
    assert await store.sum_cost(0.0, {"team": "nobody"}) == 0.0
    assert await store.count(200.0, {"team": "red"}) == 3
    assert await store.count(0.0, {"project": "alpha", "customer": "acme"}) == 3
    assert await store.count(1000.0, {}) == 0
