"""The adoption panel's distinct-user counts, read in one statement.

    window_users  distinct (group, user) over the window (week rows inside it, days and
                  hours at the ends)
                  -> active users per group, per tool, and across every group
    day_users     distinct users per group and UTC day (day rows, hours at the ends)
                  -> the series (its first MAX_POINTS points by group, then day), and
                     the days summed per group
    and distinct users per UTC day across every group, summed

Each CTE is read once and counted several ways (both databases materialize a CTE named
more than once), where separate statements would read the same rows again: three times
the window's rows, twice the days'. Over 90 days the series holds more points than it
shows, and its days are still summed from the one read. Every part has a LIMIT or is
one row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Double,
    Select,
    String,
    asc,
    cast,
    func,
    literal_column,
    null,
    select,
    union_all,
)

from sluicegate.analytics.dimensions import DIMENSIONS, AnyDimension
from sluicegate.analytics.query import MAX_LIMIT
from sluicegate.analytics.reader import AnalyticsReader, Plan, distinct_statement, pairs_statement
from sluicegate.analytics.sources import TOOL_USERS_SOURCE
from sluicegate.analytics.window import DAY, Window
from sluicegate.db.schema import TOOL_USER_DIMENSIONS

USER, TOOL = DIMENSIONS["user_id"], DIMENSIONS["client_tool"]
MAX_POINTS = 5000  # series points (days x groups)
# What each row of the statement is (its `part` column).
ACTIVE, TOOLS, EVERYONE, POINTS, DAYS, EVERYONE_DAYS = range(6)
Key = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Point:
    step: float  # the UTC day's start
    values: Key
    users: int


@dataclass(frozen=True, slots=True)
class Counts:
    """Distinct users per group over the window, and per day (the mean over the days)."""

    active: dict[Key, int]
    daily: dict[Key, float]
    cut: bool  # MAX_LIMIT groups or more: some are left out


@dataclass(frozen=True, slots=True)
class UserCounts:
    groups: Counts
    overall: Counts  # the key (): every group together
    tools: list[tuple[str, int]]  # active users per tool across the groups, by name
    points: list[Point]  # by day, then group
    points_cut: bool  # the series stops at MAX_POINTS


async def user_counts(
    reader: AnalyticsReader, users: Plan, dims: Sequence[AnyDimension], days: int
) -> UserCounts:
    """The counts for `dims` (each row names its part; `days`: the UTC days the window
    touches, what the daily means are over)."""
    rows = await reader.run(_statement(users, dims, reader.dialect))
    names = [f"g{i}" for i in range(len(dims))]
    active: dict[Key, int] = {}
    summed: dict[Key, int] = {}
    tools: list[tuple[str, int]] = []
    points: list[Point] = []
    everyone = everyone_days = 0
    for row in rows:
        part, count = row["part"], int(row["n"] or 0)
        key = tuple(str(row[name] or "") for name in names)
        if part == ACTIVE:
            active[key] = count
        elif part == DAYS:
            summed[key] = count
        elif part == POINTS:
            points.append(Point(float(row["step"]), key, count))
        elif part == TOOLS:
            tools.append((key[0], count))
        elif part == EVERYONE:
            everyone = count
        else:
            everyone_days = count
    points.sort(key=lambda p: (p.step, p.values))
    tools.sort()
    return UserCounts(
        groups=Counts(active, _means(summed, days), len(active) >= MAX_LIMIT),
        overall=Counts({(): everyone}, _means({(): everyone_days}, days), False),
        tools=tools,
        points=points,
        points_cut=len(points) >= MAX_POINTS,
    )


def _means(summed: dict[Key, int], days: int) -> dict[Key, float]:
    return {key: round(n / days, 3) for key, n in summed.items()}


def _statement(users: Plan, dims: Sequence[AnyDimension], dialect: str) -> CompoundSelect[Any]:
    width = len(dims)
    names = [f"g{i}" for i in range(width)]
    window_users = pairs_statement(users, USER, dims, dialect).cte("window_users")
    one_row_each = _one_row_each(users, dims)
    day_users = _by_day(users, dims, dialect, one_row_each).cte("day_users")
    w, d = window_users.c, day_users.c
    grouped = [w[n] for n in names]
    user = w[f"g{width}"]
    parts = [
        _part(ACTIVE, width, grouped, None, func.count(), window_users, grouped, MAX_LIMIT),
        _part(EVERYONE, width, [], None, func.count(user.distinct()), window_users),
        _part(
            POINTS,
            width,
            [d[n] for n in names],
            d.step,
            d.m_distinct,
            day_users,
            [*(d[n] for n in names), d.step],
            MAX_POINTS,
            grouped_by=False,
        ),
        _part(
            DAYS,
            width,
            [d[n] for n in names],
            None,
            func.sum(d.m_distinct),
            day_users,
            [d[n] for n in names],
            MAX_LIMIT,
        ),
    ]
    every_day = _by_day(users, (), dialect, False).subquery("every_day")
    parts.append(_part(EVERYONE_DAYS, width, [], None, func.sum(every_day.c.m_distinct), every_day))
    if TOOL in dims:
        tool = w[names[list(dims).index(TOOL)]]
        counted = func.count(user.distinct())
        parts.append(_part(TOOLS, width, [tool], None, counted, window_users, [tool], MAX_LIMIT))
    return union_all(*parts)


def _by_day(
    users: Plan, dims: Sequence[AnyDimension], dialect: str, one_row_each: bool
) -> Select[Any] | CompoundSelect[Any]:
    """Distinct users per group and UTC day: the whole days inside the window apart from
    the hours at its ends, so that whole days read day rows alone (their bucket is the
    day: SQLite groups them in its index's order) and, when `one_row_each`, count them
    as rows."""
    window = users.window
    first, end = math.ceil(window.since / DAY) * DAY, math.floor(window.until / DAY) * DAY
    if first >= end:
        return distinct_statement(users, USER, dims, dialect, step="day")
    days = _within(users, first, end)
    parts = [distinct_statement(days, USER, dims, dialect, step="day", one_row_each=one_row_each)]
    for since, until in ((window.since, first), (end, window.until)):
        if since < until:
            hours = _within(users, since, until)
            parts.append(distinct_statement(hours, USER, dims, dialect, step="day"))
    return parts[0] if len(parts) == 1 else union_all(*parts)


def _within(users: Plan, since: float, until: float) -> Plan:
    return replace(users, window=Window(since, until, since, until))


def _one_row_each(users: Plan, dims: Sequence[AnyDimension]) -> bool:
    """Whether a day row holds each user once per group: rollup_tool_users' rows are
    one per (user, team, client tool) and bucket, so when grouped by both."""
    held = {*(d.name for d in dims), USER.name}
    return users.source is TOOL_USERS_SOURCE and held == set(TOOL_USER_DIMENSIONS)


def _part(
    part: int,
    width: int,
    values: Sequence[ColumnElement[Any]],
    step: ColumnElement[Any] | None,
    counted: ColumnElement[Any],
    source: Any,
    by: Sequence[ColumnElement[Any]] = (),
    limit: int | None = None,
    *,
    grouped_by: bool = True,
) -> Select[Any]:
    """One part's rows as (part, g0.., step, n): values missing are typed NULLs, so that
    the parts line up on PostgreSQL too. `by`: grouped by (unless `grouped_by` is False:
    the rows are read as they are) and ordered by, with `limit` (then in a subquery:
    SQLite takes no ORDER BY in a member of a compound)."""
    padded = [*values, *(cast(null(), String()) for _ in range(width - len(values)))]
    columns = [
        literal_column(str(part)).label("part"),
        *(v.label(f"g{i}") for i, v in enumerate(padded)),
        (step if step is not None else cast(null(), Double())).label("step"),
        cast(counted, BigInteger()).label("n"),
    ]
    stmt = select(*columns).select_from(source)
    if by and grouped_by:
        stmt = stmt.group_by(*by)
    if limit is None:
        return stmt
    inner = stmt.order_by(*(asc(b) for b in by)).limit(limit).subquery(f"part{part}")
    return select(*inner.c)
