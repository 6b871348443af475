"""Helpers for the export tests: the export routes behind the real admin gate, ledger
records with values that test a file format (commas, quotes, line breaks, Unicode, JSON),
and checks that an exported row, parsed back, holds a record's values."""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
import msgspec
import pyarrow.parquet as pq
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.types import ASGIApp, Scope

from sluicegate.analytics.rollups import RollupDeltas
from sluicegate.audit.store import SqlAuditStore
from sluicegate.errors import AuthenticationError
from sluicegate.model.record import AttemptRecord, LedgerRecord, PolicyEvent
from sluicegate.server.admin_auth import AdminGate, admin_app
from sluicegate.server.export_api import ExportApi
from sluicegate.server.roles import AdminPrincipal, Role

ROLE_HEADER = "x-test-role"
START = 1_780_000_000.0 - 1_780_000_000.0 % 86400  # a UTC midnight


class RoleFromHeader:
    """An AdminAuthenticator (the gate's real contract) for principals of any role: the
    role named in `x-test-role`, a team lead of team `search`, a member as user `u1`.
    (The gateway's own token authenticator is tested in tests/server/test_access.py;
    here the export routes are served alone.)"""

    def resolve(self, scope: Scope) -> AdminPrincipal:
        headers = dict(scope["headers"])
        raw = headers.get(ROLE_HEADER.encode())
        if raw is None:
            raise AuthenticationError("no role")
        role = Role(raw.decode())
        return AdminPrincipal(f"test-{role}", role, teams=("search",), user_id="u1")


def export_app(engine: AsyncEngine, **options: Any) -> ASGIApp:
    """The export routes as the gateway serves them: behind AdminGate, errors in the admin
    shape."""
    api = ExportApi(engine, audit=SqlAuditStore(engine), **options)
    return AdminGate(Starlette(), admin_app(api.routes()), RoleFromHeader())


@asynccontextmanager
async def export_client(
    engine: AsyncEngine, role: Role = Role.ADMIN, **options: Any
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=export_app(engine, **options))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://gw", headers={ROLE_HEADER: role.value}
    ) as client:
        yield client


def awkward_records(
    count: int, *, start: float = START, span_s: float = 86400.0, seed: int = 3
) -> list[LedgerRecord]:
    """Records whose text needs quoting in CSV, with JSON columns of every shape, and
    some times shared by several records (ties a cursor must break by request id)."""
    rng = random.Random(seed)
    texts = ("plain", 'say "hi"', "a,b", "two\r\nlines", "one\nline", "é中 🚀", "=SUM(A1)", "")
    records = []
    for i in range(count):
        tied = i % 5 == 0 and records
        ts = records[-1].ts if tied else start + rng.random() * span_s
        ok = rng.random() < 0.8
        records.append(
            LedgerRecord(
                request_id=f"req-{seed}-{i:06d}",
                ts=ts,
                key_id=rng.choice(("key_a", "key_b", None)),
                user_id=rng.choice(("u1", "u2", None)),
                team=rng.choice(("search", "data", None)),
                project=rng.choice(("alpha", "beta", None)),
                session_id=rng.choice(("s1", "s2", "s3", None)),
                workflow_tag=rng.choice(("review", None)),
                metadata={"customer": rng.choice(texts)} if rng.random() < 0.5 else {},
                client_api="openai_chat",
                requested_model=rng.choice(("gpt-4o", "claude-haiku-4-5")),
                provider="openai" if ok else None,
                model="gpt-4o" if ok else None,
                status_code=200 if ok else rng.choice((429, 500, 0)),
                error_type=None if ok else "upstream_error",
                error_message=None if ok else rng.choice(texts),
                input_tokens=rng.randint(0, 10**9) if ok else None,
                output_tokens=rng.randint(0, 5000) if ok else None,
                cost_usd=rng.random() / 7 if ok and rng.random() < 0.9 else None,
                latency_ms=rng.lognormvariate(6, 1) if ok else None,
                stream=rng.random() < 0.5,
                attempt_count=rng.randint(1, 3),
                retry_used=rng.random() < 0.3,
                attempts=[
                    AttemptRecord(
                        provider="openai", model="gpt-4o", status_code=200, latency_ms=1.5
                    )
                ],
                policy_events=[PolicyEvent(kind="budget", rule_id="b,1", action="alert")]
                if rng.random() < 0.2
                else [],
                guardrail_events=[{"guardrail": 'g"1', "action": "block", "n": 2}]
                if rng.random() < 0.1
                else [],
                client_tool=rng.choice(("cursor", "claude-code", None)),
            )
        )
    return records


def in_key_order(records: list[LedgerRecord]) -> list[LedgerRecord]:
    return sorted(records, key=lambda r: (r.ts, r.request_id))


# -- reading exports back ---------------------------------------------------------------------


def csv_rows(body: bytes) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of an RFC 4180 CSV body, read with the csv module."""
    assert body.endswith(b"\r\n") or body == b""
    reader = csv.reader(io.StringIO(body.decode("utf-8"), newline=""))
    header, *rows = list(reader)
    return header, [dict(zip(header, row, strict=True)) for row in rows]


def parquet_rows(body: bytes) -> tuple[Any, list[dict[str, Any]]]:
    """(the file's ParquetFile, its rows) read with pyarrow."""
    parquet = pq.ParquetFile(io.BytesIO(body))
    return parquet, parquet.read().to_pylist()


def assert_csv_row_holds(row: dict[str, str], record: LedgerRecord) -> None:
    """Each CSV field parsed back is the record's value (empty for NULL)."""
    values = msgspec.to_builtins(record)
    for name, expected in values.items():
        cell = row[name]
        if name == "ts":
            assert float(row["ts_unix"]) == expected
            moment = datetime.fromisoformat(cell.replace("Z", "+00:00"))
            assert abs(moment.timestamp() - expected) < 1e-6 and cell.endswith("Z")
        elif expected is None:
            assert cell == "", (name, cell)
        elif isinstance(expected, bool):
            assert cell == ("true" if expected else "false"), (name, cell)
        elif isinstance(expected, int):
            assert int(cell) == expected, (name, cell)
        elif isinstance(expected, float):
            assert float(cell) == expected, (name, cell)
        elif isinstance(expected, list | dict):
            assert json.loads(cell) == expected, (name, cell)
        else:
            assert cell == expected, (name, cell)


def assert_parquet_row_holds(row: dict[str, Any], record: LedgerRecord) -> None:
    values = msgspec.to_builtins(record)
    for name, expected in values.items():
        value = row[name]
        if name == "ts":
            assert row["ts_unix"] == expected
            assert (
                abs(value.timestamp() - expected) < 1e-6 and value.utcoffset().total_seconds() == 0
            )
        elif isinstance(expected, list | dict):
            assert json.loads(value) == expected, (name, value)
        else:
            assert value == expected and type(value) is type(expected), (name, value)


class DeltaRows(msgspec.Struct):
    """`RollupDeltas` with each row as a dict by column name, to compare with exports."""

    usage: dict[str, dict[str, Any]]
    cuboids: dict[str, dict[str, Any]]
    users: dict[str, dict[str, Any]]
    metadata: dict[str, dict[str, Any]]
    sessions: dict[str, dict[str, Any]]


def delta_rows(deltas: RollupDeltas) -> DeltaRows:
    named = {
        str(table.name).removeprefix("rollup_"): {
            key: dict(zip(table.c.keys(), values, strict=True)) for key, values in rows.items()
        }
        for table, rows in deltas.tables()
    }
    return DeltaRows(**{field: named[field] for field in DeltaRows.__struct_fields__})
