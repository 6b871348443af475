"""What can be exported, one entry per source in `SOURCES`: the table, the keyset that
orders and resumes it, its time window, the filters it takes, and whether its rows name
people (user ids), which decides who may export it (server/export_api.py).

Keysets are unique and stable while rows land, so that a cursor resumes exactly where
an export ended:
- requests: (ts, request_id), oldest first; `since` inclusive, `until` exclusive on ts.
- usage, users, metadata rollups: (bucket, id) within one grain; the window selects the
  buckets that start in [since, until).
- sessions: session_id (its first and last times move as requests land); the window
  selects sessions active in it: last_ts >= since and first_ts < until.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Table

from sluicegate.db.schema import (
    METADATA_DIMENSIONS,
    SESSION_IDENTITY,
    USAGE_DIMENSIONS,
    USER_DIMENSIONS,
    requests,
    rollup_metadata,
    rollup_sessions,
    rollup_usage,
    rollup_users,
)
from sluicegate.export.columns import ExportColumn, export_columns
from sluicegate.ledger.sql_store import filter_conditions
from sluicegate.ledger.store import EQUALITY_FILTERS, RequestFilters

Condition = ColumnElement[bool]
Filters = Mapping[str, str]
Window = Callable[[float | None, float | None], list[Condition]]


@dataclass(frozen=True, slots=True)
class ExportSource:
    name: str
    table: Table
    key: tuple[str, ...]  # keyset columns, ascending
    time_columns: tuple[str, ...]
    filters: tuple[str, ...]  # query parameters this source filters on
    people: bool  # its rows name individual users
    grained: bool  # one row per grain (hour, day) bucket
    where: Callable[[Filters], list[Condition]]
    window: Window
    columns: tuple[ExportColumn, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", export_columns(self.table, self.time_columns))

    def key_positions(self) -> tuple[int, ...]:
        names = [c.name for c in self.table.columns]
        return tuple(names.index(k) for k in self.key)

    def key_types(self) -> tuple[type, ...]:
        """The Python type of each key value (a cursor's values are checked against them)."""
        return tuple(self.table.c[k].type.python_type for k in self.key)

    @property
    def has_teams(self) -> bool:
        """Its rows say which team they are of (an export can be confined to teams)."""
        return "team" in self.table.c

    def conditions(
        self,
        filters: Filters,
        since: float | None,
        until: float | None,
        grain: str | None,
        teams: tuple[str, ...] | None = None,
    ) -> list[Condition]:
        """Rows that match `filters` in the window, of `grain`, of `teams` (None: any)."""
        conditions = [*self.where(filters), *self.window(since, until)]
        if self.grained and grain is not None:
            conditions.append(self.table.c.grain == grain)
        if teams is not None:
            conditions.append(self.table.c.team.in_(teams))
        return conditions


REQUEST_FILTERS = (*EQUALITY_FILTERS, "model", "status")  # as GET /api/requests


def _request_conditions(filters: Filters) -> list[Condition]:
    """The ledger's own filters (status classes, `model` as requested or sent)."""
    chosen = RequestFilters(
        project=filters.get("project"),
        team=filters.get("team"),
        user_id=filters.get("user_id"),
        session_id=filters.get("session_id"),
        workflow_tag=filters.get("workflow_tag"),
        key_id=filters.get("key_id"),
        model=filters.get("model"),
        status=filters.get("status"),
    )
    return filter_conditions(chosen)


def _equal(table: Table) -> Callable[[Filters], list[Condition]]:
    """Equality on dimension columns ("" selects rows without a value)."""

    def where(filters: Filters) -> list[Condition]:
        return [table.c[name] == value for name, value in filters.items()]

    return where


def _within(column: str, table: Table) -> Window:
    def window(since: float | None, until: float | None) -> list[Condition]:
        c = table.c[column]
        return [
            *([c >= since] if since is not None else []),
            *([c < until] if until is not None else []),
        ]

    return window


def _active_sessions(since: float | None, until: float | None) -> list[Condition]:
    c = rollup_sessions.c
    return [
        *([c.last_ts >= since] if since is not None else []),
        *([c.first_ts < until] if until is not None else []),
    ]


def _rollup(name: str, table: Table, dimensions: tuple[str, ...], people: bool) -> ExportSource:
    return ExportSource(
        name=name,
        table=table,
        key=("bucket", "id"),
        time_columns=("bucket",),
        filters=dimensions,
        people=people,
        grained=True,
        where=_equal(table),
        window=_within("bucket", table),
    )


SOURCES: dict[str, ExportSource] = {
    "requests": ExportSource(
        name="requests",
        table=requests,
        key=("ts", "request_id"),
        time_columns=("ts",),
        filters=REQUEST_FILTERS,
        people=True,
        grained=False,
        where=_request_conditions,
        window=_within("ts", requests),
    ),
    "usage": _rollup("usage", rollup_usage, USAGE_DIMENSIONS, people=False),
    "users": _rollup("users", rollup_users, USER_DIMENSIONS, people=True),
    "metadata": _rollup("metadata", rollup_metadata, METADATA_DIMENSIONS, people=False),
    "sessions": ExportSource(
        name="sessions",
        table=rollup_sessions,
        key=("session_id",),
        time_columns=("first_ts", "last_ts"),
        filters=("session_id", *SESSION_IDENTITY),
        people=True,
        grained=False,
        where=_equal(rollup_sessions),
        window=_active_sessions,
    ),
}
ROLLUP_TABLES = tuple(name for name in SOURCES if name != "requests")
