"""The admin audit trail, kept in the gateway's database (`admin_audit`).

One row per audited admin action: when, who (the principal's name, role and admin token
id; none for the admin key), what (`AuditAction`), the path and query it was asked with,
and what it concerned (a token id). Rows are only ever appended; ids grow, so the listing
pages newest first by id with the last id seen as its cursor.

Writers outside this module (the token store) add a row inside their own transaction
with `insert_statement`, so an action and its audit row are written together or not at
all.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec
from sqlalchemy import ColumnElement, Insert, insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.db.errors import translate_errors
from sluicegate.db.schema import admin_audit
from sluicegate.errors import InvalidRequest
from sluicegate.ledger.store import render_ts

_C = admin_audit.c

MAX_PAGE = 1000
MAX_PATH_CHARS = 2048  # a longer path and query is kept cut, marked with "…"
MAX_ID = 2**31 - 1  # the id column is a 32-bit INTEGER


class AuditAction(StrEnum):
    """What is audited (a new kind of audited action is one member here)."""

    PEOPLE_VIEW = "people.view"  # figures of individual users: ledger rows, per-user groups
    TOKEN_CREATE = "token.create"
    TOKEN_REVOKE = "token.revoke"


class AuditEntry(msgspec.Struct, kw_only=True, frozen=True):
    ts: float
    principal: str
    role: str
    token_id: str | None
    action: AuditAction
    path: str
    target: str | None = None  # what the action concerned, e.g. the token created


class AuditFilters(msgspec.Struct, kw_only=True, frozen=True):
    action: AuditAction | None = None
    principal: str | None = None
    token_id: str | None = None
    since: float | None = None  # inclusive
    until: float | None = None  # exclusive


class AuditPage(msgspec.Struct, kw_only=True):
    data: list[dict[str, Any]]
    next_cursor: str | None


def insert_statement(entry: AuditEntry) -> Insert:
    values = msgspec.to_builtins(entry)
    if len(entry.path) > MAX_PATH_CHARS:
        values["path"] = entry.path[: MAX_PATH_CHARS - 1] + "…"
    return insert(admin_audit).values(values)


def parse_cursor(cursor: str) -> int:
    """A cursor is the id of the last row of the previous page."""
    if not (cursor.isascii() and cursor.isdigit()) or not 1 <= int(cursor) <= MAX_ID:
        raise InvalidRequest(
            f"cursor: {cursor[:40]!r} is not a cursor this API gave", param="cursor"
        )
    return int(cursor)


class SqlAuditStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, entry: AuditEntry) -> None:
        """Append one row; StoreUnavailable when it cannot be written (the caller refuses
        what it was about to show: a view the trail cannot record is not served)."""
        async with translate_errors("audit record"), self._engine.begin() as conn:
            await conn.execute(insert_statement(entry))

    async def page(self, filters: AuditFilters, limit: int, cursor: str | None) -> AuditPage:
        """Newest first, at most `limit` (1 to MAX_PAGE) rows after `cursor`."""
        limit = max(1, min(limit, MAX_PAGE))
        conditions = _conditions(filters)
        if cursor is not None:
            conditions.append(_C.id < parse_cursor(cursor))
        statement = select(admin_audit).where(*conditions).order_by(_C.id.desc()).limit(limit + 1)
        async with translate_errors("audit list"), self._engine.connect() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        page = rows[:limit]
        next_cursor = str(page[-1]["id"]) if len(rows) > limit else None
        return AuditPage(data=[api_row(r) for r in page], next_cursor=next_cursor)


def _conditions(filters: AuditFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.action is not None:
        conditions.append(_C.action == filters.action.value)
    if filters.principal is not None:
        conditions.append(_C.principal == filters.principal)
    if filters.token_id is not None:
        conditions.append(_C.token_id == filters.token_id)
    if filters.since is not None:
        conditions.append(_C.ts >= filters.since)
    if filters.until is not None:
        conditions.append(_C.ts < filters.until)
    return conditions


def api_row(values: RowMapping) -> dict[str, Any]:
    return {
        "id": values["id"],
        "ts": render_ts(values["ts"]),
        "ts_unix": float(values["ts"]),
        "principal": values["principal"],
        "role": values["role"],
        "token_id": values["token_id"],
        "action": values["action"],
        "path": values["path"],
        "target": values["target"],
    }
