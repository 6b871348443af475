"""The ledger store in memory: the fake beside `SqlLedgerStore`, with the same semantics
for the ledger itself (tests of the writer and of budget rebuilds use it). It keeps no
rollups: they are SQL tables that only SQL reads, so it records the keys it is told and
nothing more; rollup tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from sluicegate.ledger.store import (
    EQUALITY_FILTERS,
    RequestFilters,
    RequestPage,
    api_row,
    clamp_limit,
    decode_cursor,
    encode_cursor,
    split_match,
    status_bounds,
)
from sluicegate.model.record import LedgerRecord

Row = dict[str, Any]


class MemoryLedgerStore:
    def __init__(self) -> None:
        self._rows: dict[str, Row] = {}
        self.rollup_keys: tuple[str, ...] = ()

    async def write_batch(self, records: list[LedgerRecord]) -> None:
        for record in records:
            if record.request_id not in self._rows:
                self._rows[record.request_id] = msgspec.to_builtins(record)

    async def query(self, filters: RequestFilters, limit: int, cursor: str | None) -> RequestPage:
        limit = clamp_limit(limit)
        rows = sorted(
            (r for r in self._rows.values() if _matches_filters(r, filters)),
            key=_order_key,
            reverse=True,
        )
        if cursor is not None:
            after = decode_cursor(cursor)
            rows = [r for r in rows if _order_key(r) < after]
        page = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            last = page[-1]
            next_cursor = encode_cursor(last["ts"], last["request_id"])
        return RequestPage(data=[api_row(copy.deepcopy(r)) for r in page], next_cursor=next_cursor)

    async def sum_cost(
        self, since: float, match: Mapping[str, str], until: float | None = None
    ) -> float:
        rows = self._since(since, match)
        return float(sum(r["cost_usd"] or 0.0 for r in rows if until is None or r["ts"] < until))

    async def count(self, since: float, match: Mapping[str, str]) -> int:
        return sum(1 for _ in self._since(since, match))

    def set_rollup_keys(self, keys: Sequence[str]) -> None:
        self.rollup_keys = tuple(dict.fromkeys(keys))

    async def close(self) -> None:
        return None

    def __len__(self) -> int:
        return len(self._rows)

    def _since(self, since: float, match: Mapping[str, str]) -> list[Row]:
        columns, meta = split_match(match)
        return [
            r
            for r in self._rows.values()
            if r["ts"] >= since
            and all(r[k] == v for k, v in columns.items())
            and all(r["metadata"].get(k) == v for k, v in meta.items())
        ]


def _order_key(row: Row) -> tuple[float, str]:
    return (row["ts"], row["request_id"])


def _matches_filters(row: Row, f: RequestFilters) -> bool:
    for name in EQUALITY_FILTERS:
        wanted = getattr(f, name)
        if wanted is not None and row[name] != wanted:
            return False
    if f.model is not None and f.model not in (row["requested_model"], row["model"]):
        return False
    if f.status is not None and not status_bounds(f.status).matches(row["status_code"]):
        return False
    if f.since is not None and row["ts"] < f.since:
        return False
    return f.until is None or row["ts"] < f.until
