"""Exported ledger rows are the ledger's rows for the filter, in CSV and in Parquet, and
a cursor resumes an export exactly where it ended (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.export.cursor import encode_cursor
from sluicegate.export.sources import SOURCES
from sluicegate.ledger.sql_store import SqlLedgerStore
from sluicegate.ledger.store import RequestFilters
from sluicegate.model.record import LedgerRecord
from tests.export.support import (
    START,
    assert_csv_row_holds,
    assert_parquet_row_holds,
    awkward_records,
    csv_rows,
    export_client,
    in_key_order,
    parquet_rows,
)

REQUESTS = "/api/export/requests"


async def _land(engine: AsyncEngine, records: list[LedgerRecord]) -> None:
    store = SqlLedgerStore(engine)
    await store.write_batch(records)
    await store.close()


def _search_in_window(records: list[LedgerRecord], since: float, until: float) -> list[Any]:
    return in_key_order([r for r in records if r.team == "search" and since <= r.ts < until])


async def test_csv_holds_the_ledger_rows_of_the_filter_and_window(engine: AsyncEngine) -> None:
    records = awkward_records(400)
    await _land(engine, records)
    since, until = START + 3600, START + 20 * 3600
    expected = _search_in_window(records, since, until)
    async with export_client(engine, page_rows=37) as client:
        response = await client.get(
            REQUESTS, params={"team": "search", "since": str(since), "until": str(until)}
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8; header=present"
    assert response.headers["content-disposition"] == (
        'attachment; filename="sluicegate-requests-20260528T010000Z-20260528T200000Z.csv"'
    )
    assert response.headers["x-sluice-export-rows"] == str(len(expected))
    assert response.headers["x-sluice-export-complete"] == "true"
    header, rows = csv_rows(response.content)
    assert header[:3] == ["request_id", "ts", "ts_unix"]
    assert set(header) == {*LedgerRecord.__struct_fields__, "ts_unix"}
    assert [row["request_id"] for row in rows] == [r.request_id for r in expected]
    for row, record in zip(rows, expected, strict=True):
        assert_csv_row_holds(row, record)
    assert any("\r\n" in row["error_message"] for row in rows)  # quoting was exercised


async def test_parquet_holds_typed_ledger_rows_readable_by_pyarrow_and_duckdb(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    records = awkward_records(300)
    await _land(engine, records)
    since, until = START, START + 86400
    expected = _search_in_window(records, since, until)
    async with export_client(engine, page_rows=50) as client:
        response = await client.get(
            REQUESTS, params={"format": "parquet", "team": "search", "since": str(since)}
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    assert response.headers["content-disposition"].endswith('.parquet"')
    parquet, rows = parquet_rows(response.content)
    schema = parquet.schema_arrow
    assert schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert schema.field("ts_unix").type == pa.float64()
    assert schema.field("input_tokens").type == pa.int64()
    assert schema.field("cost_usd").type == pa.float64()
    assert schema.field("stream").type == pa.bool_()
    assert schema.field("metadata").type == pa.string()  # JSON text
    assert parquet.metadata.num_row_groups == -(-len(expected) // 50)  # a row group a page
    assert [row["request_id"] for row in rows] == [r.request_id for r in expected]
    for row, record in zip(rows, expected, strict=True):
        assert_parquet_row_holds(row, record)
    manifest = json.loads(parquet.metadata.metadata[b"sluicegate.export"])
    assert manifest["rows"] == len(expected) and manifest["filters"] == {"team": "search"}
    assert manifest["next_cursor"] == response.headers["x-sluice-export-cursor"]

    exported = tmp_path / "requests.parquet"
    exported.write_bytes(response.content)
    con = duckdb.connect()
    con.execute(f"CREATE VIEW v AS SELECT * FROM read_parquet('{exported}')")
    count, tokens, first = con.execute(
        "SELECT count(*), sum(input_tokens), min(ts) FROM v"
    ).fetchone()
    assert count == len(expected)
    assert tokens == sum(r.input_tokens or 0 for r in expected)
    assert abs(first.timestamp() - expected[0].ts) < 1e-6
    customers = con.execute(
        "SELECT count(*) FROM v WHERE json_extract_string(metadata, '$.customer') IS NOT NULL"
    ).fetchone()[0]
    assert customers == sum(1 for r in expected if "customer" in r.metadata)


async def test_resuming_by_cursor_yields_every_row_exactly_once(engine: AsyncEngine) -> None:
    """Chunks of 23 rows, pages of 7, many rows sharing a time: following the cursor
    covers the window once, and rows that land later than the cursor are picked up."""
    records = awkward_records(200)
    await _land(engine, records)
    seen: list[str] = []
    cursor: str | None = None
    chunks = 0
    late = awkward_records(30, start=START + 2 * 86400, seed=9)  # newer than everything
    async with export_client(engine, page_rows=7) as client:
        while True:
            params = {"limit": "23", **({"cursor": cursor} if cursor else {})}
            response = await client.get(REQUESTS, params=params)
            assert response.status_code == 200, response.text
            _, rows = csv_rows(response.content)
            assert len(rows) == int(response.headers["x-sluice-export-rows"])
            seen += [row["request_id"] for row in rows]
            chunks += 1
            if chunks == 3:
                await _land(engine, late)  # lands while the client is part way through
            cursor = response.headers["x-sluice-export-cursor"]
            if response.headers["x-sluice-export-complete"] == "true":
                break
            assert len(rows) == 23
    assert seen == [r.request_id for r in in_key_order(records + late)]
    assert chunks == -(-230 // 23)
    async with export_client(engine) as client:  # nothing new: an empty export, same cursor
        again = await client.get(REQUESTS, params={"cursor": cursor})
    assert csv_rows(again.content)[1] == []
    assert again.headers["x-sluice-export-cursor"] == cursor
    assert again.headers["x-sluice-export-complete"] == "true"


async def test_head_says_what_an_export_would_hold_without_rows(engine: AsyncEngine) -> None:
    await _land(engine, awkward_records(30))
    async with export_client(engine, max_concurrent=1) as client:
        head = await client.head(REQUESTS, params={"limit": "10"})
        get = await client.get(REQUESTS, params={"limit": "10"})  # the slot was given back
    assert head.status_code == 200 and head.content == b""
    assert head.headers["x-sluice-export-rows"] == "10"
    assert head.headers["x-sluice-export-cursor"] == get.headers["x-sluice-export-cursor"]
    assert len(csv_rows(get.content)[1]) == 10


async def test_an_empty_export_is_a_header_or_an_empty_parquet_file(engine: AsyncEngine) -> None:
    async with export_client(engine) as client:
        as_csv = await client.get(REQUESTS)
        as_parquet = await client.get(REQUESTS, params={"format": "parquet"})
    header, rows = csv_rows(as_csv.content)
    assert rows == [] and "request_id" in header
    assert "x-sluice-export-cursor" not in as_csv.headers
    assert as_csv.headers["x-sluice-export-rows"] == "0"
    parquet, rows = parquet_rows(as_parquet.content)
    assert rows == [] and "ts" in parquet.schema_arrow.names


async def test_status_and_model_filters_work_as_in_the_request_ledger(engine: AsyncEngine) -> None:
    records = awkward_records(120)
    await _land(engine, records)
    async with export_client(engine) as client:
        errors = await client.get(REQUESTS, params={"status": "error", "model": "gpt-4o"})
        store = SqlLedgerStore(engine)
        page = await store.query(RequestFilters(status="error", model="gpt-4o"), 1000, None)
    _, rows = csv_rows(errors.content)
    assert sorted(row["request_id"] for row in rows) == sorted(r["request_id"] for r in page.data)
    assert rows and all(not 200 <= int(row["status_code"]) < 400 for row in rows)


async def test_bad_input_is_a_400_in_the_admin_error_shape(engine: AsyncEngine) -> None:
    async with export_client(engine) as client:
        usage_cursor = encode_cursor(SOURCES["usage"], "hour", (START, "h1:x"))
        cases: list[tuple[dict[str, str], str]] = [
            ({"format": "xlsx"}, "format"),
            ({"since": "2026-12-02", "until": "2026-12-01"}, "until"),
            ({"since": "yesterday"}, "since"),
            ({"cursor": "not-a-cursor"}, "cursor"),
            ({"cursor": usage_cursor}, "cursor"),  # another source's
            ({"limit": "0"}, "limit"),
            ({"limit": "1000001"}, "limit"),
            ({"limit": "ten"}, "limit"),
            ({"teem": "search"}, "teem"),
            ({"grain": "day"}, "grain"),  # requests have no grain
            ({"status": "often"}, "status"),
        ]
        for params, param in cases:
            response = await client.get(REQUESTS, params=params)
            assert response.status_code == 400, (params, response.text)
            error = response.json()["error"]
            assert error["param"] == param and error["type"] == "invalid_request_error"
            assert error["message"]
        twice = await client.get(f"{REQUESTS}?team=a&team=b")
        assert twice.status_code == 400 and twice.json()["error"]["param"] == "team"


async def test_parquet_without_pyarrow_is_a_501_naming_the_extra(
    engine: AsyncEngine, monkeypatch: Any
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # what `import pyarrow` meets uninstalled
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    monkeypatch.delitem(sys.modules, "sluicegate.export.parquet_encoder", raising=False)
    async with export_client(engine) as client:
        response = await client.get(REQUESTS, params={"format": "parquet"})
        as_csv = await client.get(REQUESTS)
    assert response.status_code == 501
    error = response.json()["error"]
    assert error["code"] == "extra_not_installed" and error["param"] == "format"
    assert "pip install 'sluicegate[parquet]'" in error["message"]
    assert as_csv.status_code == 200
