"""Ledger rows read back as LedgerRecords, a page at a time in (ts, request_id) order.

What `rebuild-rollups` recomputes from: only the columns the rollups read are selected,
and pages continue after the last (ts, request_id) seen (keyset paging: each page is an
index range scan, whatever the table's size).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, Text, and_, cast, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from sluicegate.db.schema import requests
from sluicegate.model.record import LedgerRecord, PolicyEvent

_R = requests.c
ROLLUP_COLUMNS = (
    "request_id",
    "ts",
    "user_id",
    "team",
    "project",
    "session_id",
    "workflow_tag",
    "environment",
    "cost_center",
    "metadata",
    "client_api",
    "requested_model",
    "provider",
    "model",
    "status_code",
    "error_type",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "usage_source",
    "cost_usd",
    "latency_ms",
    "ttft_ms",
    "stream",
    "attempt_count",
    "fallback_used",
    "retry_used",
    "policy_events",
    "guardrail_events",
    "session_killed",
    "client_disconnected",
    "client_tool",
)
# JSON columns come back as text and are decoded here, straight to their types (the
# driver's per-value JSON processing cost more than everything else a row needs).
_JSON_TYPES: dict[str, Any] = {
    "metadata": dict[str, str],
    "policy_events": list[PolicyEvent],
    "guardrail_events": list[dict[str, Any]],
}
_DECODERS = {name: msgspec.json.Decoder(kind) for name, kind in _JSON_TYPES.items()}
_SELECTED = [cast(_R[name], Text) if name in _JSON_TYPES else _R[name] for name in ROLLUP_COLUMNS]


def _record(row: Sequence[Any]) -> LedgerRecord:
    values = dict(zip(ROLLUP_COLUMNS, row, strict=True))
    for name, decoder in _DECODERS.items():
        values[name] = decoder.decode(values[name])
    return LedgerRecord(**values)


def arrived_between(lower: float | None, upper: float | None) -> list[ColumnElement[bool]]:
    """Rows with lower <= ts < upper (None: unbounded)."""
    conditions: list[ColumnElement[bool]] = []
    if lower is not None:
        conditions.append(_R.ts >= lower)
    if upper is not None:
        conditions.append(_R.ts < upper)
    return conditions


def of_sessions(session_ids: Sequence[str]) -> list[ColumnElement[bool]]:
    return [_R.session_id.in_(list(session_ids))]


async def ledger_pages(
    conn: AsyncConnection, conditions: Sequence[ColumnElement[bool]], page_size: int
) -> AsyncIterator[list[LedgerRecord]]:
    """Every row matching `conditions`, as records, `page_size` at a time."""
    after: tuple[float, str] | None = None
    while True:
        where = list(conditions)
        if after is not None:
            ts, request_id = after
            where.append(or_(_R.ts > ts, and_(_R.ts == ts, _R.request_id > request_id)))
        statement = select(*_SELECTED).where(*where).order_by(_R.ts, _R.request_id).limit(page_size)
        rows = (await conn.execute(statement)).all()
        if not rows:
            return
        yield [_record(row) for row in rows]
        if len(rows) < page_size:
            return
        after = (rows[-1].ts, rows[-1].request_id)
