"""The export routes: ledger rows and rollups as CSV or Parquet, streamed (docs/export.md).

    GET /api/export/requests?format=&since=&until=&<filters of /api/requests>&cursor=&limit=
    GET /api/export/rollups/{table}?format=&grain=&since=&until=&<dimension>=&cursor=&limit=

Who may: rows that name people (requests, the users and sessions rollups) are for admins
only, and each such export is audited; the usage and metadata rollups are also for the
finance and platform roles, and for team leads confined to their teams' rows (as the
analytics API confines their panels, `analytics/scope.py`: a team filter naming another
team is 403).

Resuming: the answer's headers say, before the first row, where it will end.
`X-Sluice-Export-Cursor` continues after its last row, `X-Sluice-Export-Complete` says
whether anything matched beyond it, and `X-Sluice-Export-Rows` how many rows it holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluicegate.analytics.rollups import GRAINS
from sluicegate.errors import InvalidRequest, NotFound, Overloaded, PermissionDenied
from sluicegate.export.cursor import decode_cursor, encode_cursor
from sluicegate.export.formats import FORMATS
from sluicegate.export.reader import PAGE_ROWS, ExportPlan, ExportReader
from sluicegate.export.sources import ROLLUP_TABLES, SOURCES, ExportSource
from sluicegate.export.stream import SEND_TIMEOUT_S, ExportStream
from sluicegate.server.admin_api import parse_time
from sluicegate.server.roles import (
    AdminPrincipal,
    AuditRecorder,
    Role,
    analytics_scope,
    audit_people_view,
    require_role,
)

MAX_EXPORT_ROWS = 1_000_000  # one export's default and most; continue with the cursor
MAX_CONCURRENT_EXPORTS = 4  # per process: each holds a page in memory while it runs
DEFAULT_GRAIN = "hour"
FLUSH_TIMEOUT_S = 5.0
_COMMON = ("format", "since", "until", "cursor", "limit")
# besides admin; a team lead's rows are its teams' only
_NO_PEOPLE_ROLES = (Role.FINANCE, Role.PLATFORM, Role.TEAM_LEAD)


@dataclass(frozen=True, slots=True)
class ExportQuery:
    """An export request, validated."""

    source: ExportSource
    format: str
    grain: str | None
    since: float | None
    until: float | None
    filters: dict[str, str]
    cursor: str | None
    limit: int
    teams: tuple[str, ...] | None = None  # rows of these teams only; None: every team


class ExportSlots:
    """At most `limit` exports at once in this process (each holds a page of rows)."""

    def __init__(self, limit: int) -> None:
        self._free = limit

    def take(self) -> None:
        if self._free <= 0:
            raise Overloaded(
                "too many exports are running on this gateway; try again shortly",
                retry_after=5.0,
            )
        self._free -= 1

    def give_back(self) -> None:
        self._free += 1


class ExportApi:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        audit: AuditRecorder,
        flush: Callable[[], Awaitable[None]] | None = None,
        page_rows: int = PAGE_ROWS,
        max_concurrent: int = MAX_CONCURRENT_EXPORTS,
        send_timeout_s: float = SEND_TIMEOUT_S,
    ) -> None:
        self._reader = ExportReader(engine, page_rows=page_rows)
        self._audit = audit
        self._flush = flush
        self._slots = ExportSlots(max_concurrent)
        self._send_timeout_s = send_timeout_s

    def routes(self) -> list[Route]:
        return [
            Route("/api/export/requests", self.requests, methods=["GET"]),
            Route("/api/export/rollups/{table}", self.rollups, methods=["GET"]),
        ]

    async def requests(self, request: Request) -> Response:
        return await self._export(request, SOURCES["requests"])

    async def rollups(self, request: Request) -> Response:
        table = request.path_params["table"]
        if table not in ROLLUP_TABLES:
            raise NotFound(
                f"no rollup table {table!r} to export (tables: {', '.join(ROLLUP_TABLES)})",
                param="table",
                code="export_table_not_found",
            )
        return await self._export(request, SOURCES[table])

    async def _export(self, request: Request, source: ExportSource) -> Response:
        principal = require_role(request, *(() if source.people else _NO_PEOPLE_ROLES))
        query = parse_export_query(request.query_params, source)
        query = replace(query, teams=export_teams(principal, query))
        if source.people:
            await audit_people_view(self._audit, request)
        export_format = FORMATS[query.format]
        encoder = export_format.encoder(source.columns)  # 501 here when its extra is missing
        self._slots.take()
        try:
            await self._read_your_writes()
            plan = await self._plan(query)
        except BaseException:
            self._slots.give_back()
            raise
        return ExportStream(
            plan,
            self._reader,
            encoder,
            media_type=export_format.media_type,
            headers=answer_headers(query, plan, export_format.extension),
            manifest=manifest(query, plan),
            on_done=self._slots.give_back,
            send_timeout_s=self._send_timeout_s,
        )

    async def _read_your_writes(self) -> None:
        """Rows the gateway has answered are in the export (bounded: a ledger that cannot
        be written to does not hold the export up)."""
        if self._flush is not None:
            with contextlib.suppress(TimeoutError, RuntimeError):
                await asyncio.wait_for(self._flush(), FLUSH_TIMEOUT_S)

    async def _plan(self, query: ExportQuery) -> ExportPlan:
        source = query.source
        start = None if query.cursor is None else decode_cursor(query.cursor, source, query.grain)
        conditions = source.conditions(
            query.filters, query.since, query.until, query.grain, query.teams
        )
        return await self._reader.plan(source, query.grain, conditions, start, query.limit)


def parse_export_query(q: QueryParams, source: ExportSource) -> ExportQuery:
    allowed = {*_COMMON, *source.filters, *(("grain",) if source.grained else ())}
    for name in q:
        if name not in allowed:
            raise InvalidRequest(
                f"unknown parameter {name!r} for an export of {source.name} "
                f"(parameters: {', '.join(sorted(allowed))})",
                param=name,
            )
        if len(q.getlist(name)) > 1:
            raise InvalidRequest(f"{name} is given more than once", param=name)
    export_format = q.get("format") or "csv"
    if export_format not in FORMATS:
        raise InvalidRequest(
            f"format must be one of {', '.join(FORMATS)}, not {export_format!r}", param="format"
        )
    since, until = parse_time(q.get("since"), "since"), parse_time(q.get("until"), "until")
    if since is not None and until is not None and since >= until:
        raise InvalidRequest("the window is empty: until must be after since", param="until")
    return ExportQuery(
        source=source,
        format=export_format,
        grain=_grain(q.get("grain"), source),
        since=since,
        until=until,
        filters={name: q[name] for name in source.filters if name in q},
        cursor=q.get("cursor") or None,
        limit=_limit(q.get("limit")),
    )


def export_teams(principal: AdminPrincipal, query: ExportQuery) -> tuple[str, ...] | None:
    """The teams whose rows the caller may export (None: every team's): a team lead's
    own, from a source whose rows name their team; a team filter naming another is 403."""
    teams = analytics_scope(principal).teams
    if teams is None:
        return None
    if not query.source.has_teams:  # no way to confine it: not for a team lead
        raise PermissionDenied(
            f"an export of {query.source.name} cannot be confined to teams",
            code="role_forbidden",
        )
    asked = query.filters.get("team")
    if asked is not None and asked not in teams:
        raise PermissionDenied(
            f"team {asked!r} is not one of this token's teams ({', '.join(teams)})",
            param="team",
            code="team_forbidden",
        )
    return teams


def _grain(value: str | None, source: ExportSource) -> str | None:
    if not source.grained:
        return None
    grain = value or DEFAULT_GRAIN
    if grain not in GRAINS:
        raise InvalidRequest(f"grain must be one of {', '.join(GRAINS)}", param="grain")
    return grain


def _limit(value: str | None) -> int:
    if value is None or value == "":
        return MAX_EXPORT_ROWS
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_EXPORT_ROWS:
        raise InvalidRequest(
            f"limit must be a whole number of rows from 1 to {MAX_EXPORT_ROWS}", param="limit"
        )
    return int(value)


def answer_headers(query: ExportQuery, plan: ExportPlan, extension: str) -> dict[str, str]:
    headers = {
        "content-disposition": f'attachment; filename="{file_name(query, extension)}"',
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        "x-sluice-export-rows": str(plan.rows),
        "x-sluice-export-complete": "true" if plan.complete else "false",
    }
    cursor = next_cursor(query, plan)
    if cursor is not None:
        headers["x-sluice-export-cursor"] = cursor
    return headers


def next_cursor(query: ExportQuery, plan: ExportPlan) -> str | None:
    """After the export's last row; with nothing to export, the cursor it was given."""
    if plan.end is None:
        return query.cursor
    return encode_cursor(query.source, query.grain, plan.end)


def file_name(query: ExportQuery, extension: str) -> str:
    """sluicegate-requests-20261201T000000Z-20261207T000000Z.csv (`start` when no since;
    until defaults to now)."""
    since = _stamp(query.since) if query.since is not None else "start"
    until = _stamp(query.until if query.until is not None else time.time())
    grain = f"-{query.grain}" if query.grain else ""
    return f"sluicegate-{query.source.name}{grain}-{since}-{until}.{extension}"


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y%m%dT%H%M%SZ")


def manifest(query: ExportQuery, plan: ExportPlan) -> dict[str, Any]:
    """What the export holds, for the Parquet footer (`rows` is added at the end)."""
    return {
        "source": query.source.name,
        "grain": query.grain,
        "since": query.since,
        "until": query.until,
        "filters": query.filters,
        "teams": None if query.teams is None else list(query.teams),
        "cursor": query.cursor,
        "next_cursor": next_cursor(query, plan),
        "complete": plan.complete,
        "planned_rows": plan.rows,
        "exported_at": time.time(),
    }
