"""A team's known users: the people adoption is a share of. Counted, never named.

A user is known in a team when either
- the rollups hold a request of theirs in that team on one of the 28 UTC days up to the
  window's last day (or on any day of the window, when it is longer): the week and day
  rows of `rollup_tool_users` (`sources.people_source`), whole weeks from week rows, or
- they hold a virtual key with that team (`api_keys`) that was live at some point in the
  window: made before its end, and neither revoked nor expired before its start.

A user with no team is known in the team "" (no team). Every user active in the window
is therefore known, so a share of known users active never passes 100%. One statement
per count: per team, and across the teams asked (a user of two teams counts once there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    and_,
    false,
    func,
    literal,
    null,
    or_,
    select,
    true,
    union,
    union_all,
)

from sluicegate.analytics.dimensions import DIMENSIONS
from sluicegate.analytics.reader import AnalyticsReader, bytewise, column_of
from sluicegate.analytics.sources import people_source
from sluicegate.analytics.window import DAY, Window
from sluicegate.db.schema import api_keys

TEAM, USER = DIMENSIONS["team"], DIMENSIONS["user_id"]
LOOKBACK_DAYS = 28
MAX_TEAMS = 1000  # teams counted per answer (more: the rest are left out, with a note)


@dataclass(frozen=True, slots=True)
class KnownUsers:
    by_team: dict[str, int]
    total: int  # across every team asked
    cut: bool  # more teams than MAX_TEAMS: some were left out


def known_days(window: Window) -> tuple[float, float]:
    """[first, end) of the UTC days whose rollup rows say who is known."""
    last = (window.until - 1) // DAY * DAY
    first = min(window.since // DAY * DAY, last - (LOOKBACK_DAYS - 1) * DAY)
    return float(first), float(last + DAY)


async def known_users(
    reader: AnalyticsReader, window: Window, teams: Sequence[str] | None
) -> KnownUsers:
    """Known users of `teams` (None: every team) for `window`: one statement, the
    (team, user) pairs gathered once and counted per team and across them (the row
    whose team is NULL; no team is stored as NULL)."""
    people = _people(window, teams).cte("known_pairs")
    user = bytewise(people.c.user_id, reader.dialect)  # distinct without a locale's rules
    per_team = (
        select(people.c.team, func.count(user.distinct()).label("users"))
        .group_by(people.c.team)
        .order_by(people.c.team)
        .limit(MAX_TEAMS + 1)
        .subquery("per_team")
    )
    everyone = select(null().label("team"), func.count(user.distinct()).label("users"))
    rows = await reader.run(union_all(select(per_team.c.team, per_team.c.users), everyone))
    counted = [row for row in rows if row["team"] is not None]
    total = next((int(row["users"] or 0) for row in rows if row["team"] is None), 0)
    by_team = {str(row["team"]): int(row["users"]) for row in counted[:MAX_TEAMS]}
    return KnownUsers(by_team, total, len(counted) > MAX_TEAMS)


def _people(window: Window, teams: Sequence[str] | None) -> CompoundSelect[Any]:
    """(team, user_id) pairs: seen in the rollups, or holding a key, as defined above."""
    first, end = known_days(window)
    source, k = people_source(), api_keys.c
    u = source.table.c
    team, user = column_of(source, TEAM), column_of(source, USER)
    # [first, end) is whole days: whole weeks inside it come from week rows, the rest
    # from day rows (a user seen in a week inside it was seen on one of its days)
    days = Window(first, end, first, end).spans(source.coarsest)
    in_days = or_(*(and_(u.grain == g, u.bucket >= a, u.bucket < b) for g, a, b in days))
    seen = select(team.label("team"), user.label("user_id")).where(in_days, _in(team, teams))
    key_team = func.coalesce(k.team, literal(""))
    holding = select(key_team.label("team"), k.user_id.label("user_id")).where(
        k.user_id.is_not(None),
        k.user_id != "",
        k.created_at < window.until,
        or_(k.revoked_at.is_(None), k.revoked_at > window.since),
        or_(k.expires_at.is_(None), k.expires_at > window.since),
        _in(key_team, teams),
    )
    return union(seen, holding)


def _in(column: ColumnElement[str], values: Sequence[str] | None) -> ColumnElement[bool]:
    """`column` is one of `values` (None: no condition); a value with a NUL matches
    nothing, as the reader's filters (PostgreSQL cannot compare one)."""
    if values is None:
        return true()
    kept = [v for v in values if "\x00" not in v]
    return column.in_(kept) if kept else false()
