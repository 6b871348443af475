"""The ledger store contract, shared by the SQL store and its memory fake.

Semantics both implementations keep:
- `write_batch` is idempotent per `request_id`: a record whose id is already stored is
  skipped, so a batch may be replayed after an ambiguous failure without duplicates.
- `query` returns newest first, ordered by (ts, request_id) descending, paged by an opaque
  cursor; `since` is inclusive and `until` exclusive.
- `match` in `sum_cost` / `count` names envelope fields (`ENVELOPE_FIELDS`) or, for any
  other name, a metadata key; every pair must be equal.
- `set_rollup_keys` says which metadata keys the rollups break down (the analytics config
  in force). The SQL store keeps the rollup tables in each batch's transaction; the
  memory store has no rollup tables (nothing reads rollups but SQL) and only keeps the
  keys it was told.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec
import orjson

from sluicegate.errors import InvalidRequest
from sluicegate.model.identity import ENVELOPE_FIELDS
from sluicegate.model.record import LedgerRecord

MAX_PAGE = 1000
RECORD_FIELDS: tuple[str, ...] = LedgerRecord.__struct_fields__
STATUS_CLASSES = ("ok", "error", "1xx", "2xx", "3xx", "4xx", "5xx")


class RequestFilters(msgspec.Struct, kw_only=True, frozen=True):
    project: str | None = None
    team: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    workflow_tag: str | None = None
    key_id: str | None = None
    model: str | None = None  # matches requested_model or model
    status: int | str | None = None  # a status code, "ok" (2xx/3xx), "error", or "4xx"...
    since: float | None = None  # unix seconds, inclusive
    until: float | None = None  # unix seconds, exclusive


EQUALITY_FILTERS = ("project", "team", "user_id", "session_id", "workflow_tag", "key_id")


class RequestPage(msgspec.Struct, kw_only=True):
    data: list[dict[str, Any]]
    next_cursor: str | None


class LedgerStore(Protocol):
    async def write_batch(self, records: list[LedgerRecord]) -> None: ...

    async def query(
        self, filters: RequestFilters, limit: int, cursor: str | None
    ) -> RequestPage: ...

    async def sum_cost(
        self, since: float, match: Mapping[str, str], until: float | None = None
    ) -> float:
        """USD of rows that arrived in [since, until) and match every pair."""
        ...

    async def count(self, since: float, match: Mapping[str, str]) -> int: ...

    def set_rollup_keys(self, keys: Sequence[str]) -> None: ...

    async def close(self) -> None: ...


# --- helpers both stores use ---------------------------------------------------------


def clamp_limit(limit: int) -> int:
    return max(1, min(int(limit), MAX_PAGE))


def encode_cursor(ts: float, request_id: str) -> str:
    raw = orjson.dumps([ts, request_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        ts, request_id = orjson.loads(base64.urlsafe_b64decode(padded))
        if isinstance(ts, bool) or not isinstance(ts, int | float):
            raise ValueError("ts")
        if not isinstance(request_id, str):
            raise ValueError("request_id")
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise InvalidRequest("invalid cursor", param="cursor") from exc
    return float(ts), request_id


class StatusBounds(msgspec.Struct, frozen=True):
    """Codes in [low, high) match; with `outside`, codes outside it match instead."""

    low: int
    high: int
    outside: bool = False

    def matches(self, code: int) -> bool:
        return (self.low <= code < self.high) != self.outside


def status_bounds(status: int | str) -> StatusBounds:
    """`ok` is 2xx/3xx; `error` is everything else, including 0 (no answer at all)."""
    text = str(status).strip().lower()
    if text.isascii() and text.isdigit() and len(text) <= 3:
        return StatusBounds(int(text), int(text) + 1)
    if text in ("ok", "error"):
        return StatusBounds(200, 400, outside=text == "error")
    if text in STATUS_CLASSES[2:]:
        low = int(text[0]) * 100
        return StatusBounds(low, low + 100)
    raise InvalidRequest(
        f"status must be a code or one of {', '.join(STATUS_CLASSES)}", param="status"
    )


def split_match(match: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(envelope column equalities, metadata key equalities)."""
    columns = {k: v for k, v in match.items() if k in ENVELOPE_FIELDS}
    meta = {k: v for k, v in match.items() if k not in ENVELOPE_FIELDS}
    return columns, meta


def render_ts(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def api_row(values: Mapping[Any, Any]) -> dict[str, Any]:
    """A stored request as the API returns it: every LedgerRecord field, `ts` as an
    ISO-8601 UTC string, and `ts_unix` as the float."""
    row: dict[str, Any] = {}
    for name in RECORD_FIELDS:
        row[name] = values[name]
        if name == "ts":
            row["ts"] = render_ts(values["ts"])
            row["ts_unix"] = float(values["ts"])
    return row
