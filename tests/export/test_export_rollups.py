"""Exported rollups are the rollup rows for the grain, window and filters (SQLite and
PostgreSQL): the rollups are filled as the ledger writer's batches fill them, and the
expected rows are what `rollup_deltas` computes from the same records in Python."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pyarrow as pa
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics.rollups import rollup_deltas
from sluicegate.ledger.sql_store import SqlLedgerStore
from sluicegate.server.roles import Role
from tests.analytics.ledger_rows import ledger_records
from tests.export.support import (
    START,
    DeltaRows,
    csv_rows,
    delta_rows,
    export_client,
    parquet_rows,
)

HOUR = 3600.0
ROLLUPS = "/api/export/rollups"


async def _land(engine: AsyncEngine) -> DeltaRows:
    """600 records over 30 hours, in one batch (so each rollup row is one delta), written
    by the ledger store, which keeps the rollups."""
    records = ledger_records(600, start=START, span_s=30 * HOUR)
    store = SqlLedgerStore(engine)
    store.set_rollup_keys(("customer_id",))
    await store.write_batch(records)
    await store.close()
    return delta_rows(rollup_deltas(records, metadata_keys=("customer_id",)))


def _same(cell: str, expected: Any) -> bool:
    if isinstance(expected, float):
        return math.isclose(float(cell), expected, rel_tol=1e-12, abs_tol=1e-12)
    if isinstance(expected, int):
        return int(cell) == expected
    return cell == expected


def _assert_csv_rows(rows: list[dict[str, str]], expected: list[dict[str, Any]]) -> None:
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        for name, value in want.items():
            if name in ("bucket", "first_ts", "last_ts"):
                assert float(row[f"{name}_unix"]) == value
                moment = datetime.fromisoformat(row[name].replace("Z", "+00:00"))
                assert abs(moment.timestamp() - value) < 1e-6
            else:
                assert _same(row[name], value), (name, row[name], value)


async def test_usage_rollup_rows_by_grain_window_and_dimension(engine: AsyncEngine) -> None:
    deltas = await _land(engine)
    since, until = START + 2 * HOUR, START + 20 * HOUR
    expected = sorted(
        (
            row
            for row in deltas.usage.values()
            if row["grain"] == "hour" and row["team"] == "search" and since <= row["bucket"] < until
        ),
        key=lambda row: (row["bucket"], row["id"]),
    )
    async with export_client(engine, page_rows=9) as client:
        response = await client.get(
            f"{ROLLUPS}/usage",
            params={"grain": "hour", "team": "search", "since": str(since), "until": str(until)},
        )
    assert response.status_code == 200, response.text
    assert "sluicegate-usage-hour-" in response.headers["content-disposition"]
    header, rows = csv_rows(response.content)
    assert header[:4] == ["id", "grain", "bucket", "bucket_unix"]
    assert expected and len(rows) == int(response.headers["x-sluice-export-rows"])
    _assert_csv_rows(rows, expected)


async def test_day_rollups_follow_the_cursor_to_the_end_once(engine: AsyncEngine) -> None:
    deltas = await _land(engine)
    expected = sorted(
        (r["id"] for r in deltas.usage.values() if r["grain"] == "day"),
        key=lambda i: (deltas.usage[i]["bucket"], i),
    )
    seen: list[str] = []
    cursor = None
    async with export_client(engine, page_rows=4) as client:
        for _ in range(100):
            params = {"grain": "day", "limit": "11", **({"cursor": cursor} if cursor else {})}
            response = await client.get(f"{ROLLUPS}/usage", params=params)
            seen += [row["id"] for row in csv_rows(response.content)[1]]
            cursor = response.headers["x-sluice-export-cursor"]
            if response.headers["x-sluice-export-complete"] == "true":
                break
        hour = await client.get(f"{ROLLUPS}/usage", params={"grain": "hour", "cursor": cursor})
    assert seen == expected
    assert hour.status_code == 400  # a day cursor does not continue an hourly export
    assert hour.json()["error"]["param"] == "cursor"


async def test_user_and_metadata_rollups(engine: AsyncEngine) -> None:
    deltas = await _land(engine)
    async with export_client(engine) as client:
        users = await client.get(f"{ROLLUPS}/users", params={"grain": "day", "user_id": "u3"})
        meta = await client.get(
            f"{ROLLUPS}/metadata",
            params={"grain": "hour", "meta_key": "customer_id", "meta_value": "c2"},
        )
    expected_users = [
        r for r in deltas.users.values() if r["grain"] == "day" and r["user_id"] == "u3"
    ]
    _assert_csv_rows(csv_rows(users.content)[1], sorted(expected_users, key=_bucket_id))
    expected_meta = [
        r for r in deltas.metadata.values() if r["grain"] == "hour" and r["meta_value"] == "c2"
    ]
    _assert_csv_rows(csv_rows(meta.content)[1], sorted(expected_meta, key=_bucket_id))


async def test_a_team_lead_exports_only_its_teams_rows(engine: AsyncEngine) -> None:
    """A team lead (of `search`, tests/export/support.py) gets the usage and metadata
    rollup rows of its team and no other, through every page and cursor; naming another
    team is a 403, as in the analytics API."""
    deltas = await _land(engine)
    for table, rows in (("usage", deltas.usage), ("metadata", deltas.metadata)):
        expected = sorted(
            (r for r in rows.values() if r["grain"] == "hour" and r["team"] == "search"),
            key=_bucket_id,
        )
        others = {r["team"] for r in rows.values()} - {"search"}
        assert expected and others, table  # the export has rows to leave out
        exported: list[dict[str, str]] = []
        cursor = None
        async with export_client(engine, Role.TEAM_LEAD, page_rows=7) as client:
            for _ in range(100):
                params = {"grain": "hour", "limit": "40", **({"cursor": cursor} if cursor else {})}
                response = await client.get(f"{ROLLUPS}/{table}", params=params)
                assert response.status_code == 200, response.text
                page = csv_rows(response.content)[1]
                assert len(page) == int(response.headers["x-sluice-export-rows"])
                exported += page
                cursor = response.headers["x-sluice-export-cursor"]
                if response.headers["x-sluice-export-complete"] == "true":
                    break
            own = await client.get(f"{ROLLUPS}/{table}", params={"team": "search"})
            other = await client.get(f"{ROLLUPS}/{table}", params={"team": sorted(others)[0]})
            untagged = await client.get(f"{ROLLUPS}/{table}", params={"team": ""})
        _assert_csv_rows(exported, expected)
        assert own.status_code == 200
        for refused in (other, untagged):
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["code"] == "team_forbidden"
            assert refused.json()["error"]["param"] == "team"


def _bucket_id(row: dict[str, Any]) -> tuple[float, str]:
    return (row["bucket"], row["id"])


async def test_sessions_active_in_the_window_as_parquet(engine: AsyncEngine) -> None:
    deltas = await _land(engine)
    since, until = START + 10 * HOUR, START + 11 * HOUR
    expected = sorted(
        (s for s in deltas.sessions.values() if s["last_ts"] >= since and s["first_ts"] < until),
        key=lambda s: s["session_id"],
    )
    async with export_client(engine, page_rows=5) as client:
        response = await client.get(
            f"{ROLLUPS}/sessions",
            params={"format": "parquet", "since": str(since), "until": str(until)},
        )
        grained = await client.get(f"{ROLLUPS}/sessions", params={"grain": "day"})
    assert response.status_code == 200, response.text
    parquet, rows = parquet_rows(response.content)
    assert parquet.schema_arrow.field("first_ts").type == pa.timestamp("us", tz="UTC")
    assert parquet.schema_arrow.field("retry_tokens").type == pa.int64()
    assert [r["session_id"] for r in rows] == [s["session_id"] for s in expected]
    for row, want in zip(rows, expected, strict=True):
        assert row["first_ts_unix"] == want["first_ts"] and row["last_ts_unix"] == want["last_ts"]
        assert row["requests"] == want["requests"] and row["team"] == want["team"]
        assert math.isclose(row["cost_usd"], want["cost_usd"], abs_tol=1e-12)
    assert grained.status_code == 400 and grained.json()["error"]["param"] == "grain"


async def test_an_unknown_rollup_table_is_a_404(engine: AsyncEngine) -> None:
    async with export_client(engine) as client:
        response = await client.get(f"{ROLLUPS}/customers")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "export_table_not_found"
