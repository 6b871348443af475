"""The adoption panel against direct SQL over the same raw rows and key table, on SQLite
and PostgreSQL: distinct users per tool x team over the window and per day, each team's
known users (seen in 28 days, or holding a key live in the window), the gaps between
tools and the actions they raise; and who may see what. Read from rollup_tool_users
(hour, day and week rows) and, as before it, from rollup_users: the same answers."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import msgspec
import pytest
from sqlalchemy import ColumnElement, func, literal, or_, select, union
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics import sources
from sluicegate.analytics.known_users import known_days
from sluicegate.analytics.panels import adoption_counts
from sluicegate.analytics.panels.adoption import AdoptionRow
from sluicegate.analytics.window import DAY, HOUR, Window, iso
from sluicegate.db.schema import api_keys
from sluicegate.errors import InvalidRequest, PermissionDenied
from sluicegate.server.roles import AdminPrincipal, Role
from tests.analytics.adoption_traffic import DAY0, WEEK, adoption_records, insert_keys
from tests.analytics.landing import land
from tests.analytics.panel_support import ADMIN, FINANCE, R, ask, context, in_window, snapshot

WEEK_PARAMS = (("since", iso(DAY0)), ("until", iso(DAY0 + WEEK)))
ODD = (
    ("since", iso(DAY0 + 7 * HOUR + 13 * 60)),
    ("until", str(DAY0 + 5 * DAY + 5 * HOUR + 41 * 60)),
)
LIMITS = """
name: limits
type: gateway-rate-limit-config
rules:
  - id: per-user
    limit: {requests: 100, window: 1m, scope: user}
"""
LEAD = AdminPrincipal("lead", Role.TEAM_LEAD, teams=("data",))


@pytest.fixture
async def landed(engine: AsyncEngine) -> AsyncEngine:
    await land(engine, adoption_records())
    await insert_keys(engine)
    return engine


def _without_tool_users(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader's tables as they were before rollup_tool_users (migration 0015)."""
    kept = tuple(s for s in sources.PLAIN_SOURCES if s is not sources.TOOL_USERS_SOURCE)
    monkeypatch.setattr(sources, "PLAIN_SOURCES", kept)


@pytest.fixture(params=["rollup_tool_users", "rollup_users"])
def users_rollup(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The table adoption counts people from: the narrow rollup, or the one before it."""
    if request.param == "rollup_users":
        _without_tool_users(monkeypatch)
    return str(request.param)


def _effective(answer: Any) -> Window:
    w = answer.window
    return Window(w.since_unix, w.until_unix, w.since_unix, w.until_unix)


def _text(column: ColumnElement[Any]) -> ColumnElement[str]:
    return func.coalesce(column, literal(""))


async def _raw_people(engine: AsyncEngine, window: Window) -> list[tuple[float, str, str, str]]:
    """(ts, tool, team, user) of every raw request with a user in the window."""
    stmt = select(R.ts, _text(R.client_tool), _text(R.team), R.user_id).where(
        in_window(window), R.user_id.is_not(None), R.user_id != ""
    )
    async with engine.connect() as conn:
        return [(float(ts), tool, team, user) for ts, tool, team, user in await conn.execute(stmt)]


async def _raw_known(engine: AsyncEngine, window: Window) -> dict[str, int]:
    """Known users per team by SQL over raw requests (not the rollups) and the keys."""
    first, end = known_days(window)
    seen = select(_text(R.team).label("team"), R.user_id.label("user_id")).where(
        R.ts >= first, R.ts < end, R.user_id.is_not(None), R.user_id != ""
    )
    k = api_keys.c
    keys = select(_text(k.team).label("team"), k.user_id.label("user_id")).where(
        k.user_id.is_not(None),
        k.created_at < window.until,
        or_(k.revoked_at.is_(None), k.revoked_at > window.since),
        or_(k.expires_at.is_(None), k.expires_at > window.since),
    )
    pairs = union(seen, keys).subquery()
    stmt = select(pairs.c.team, func.count(pairs.c.user_id.distinct())).group_by(pairs.c.team)
    async with engine.connect() as conn:
        return {str(team): int(n) for team, n in await conn.execute(stmt)}


def _by_group(rows: list[AdoptionRow]) -> dict[tuple[str, str], AdoptionRow]:
    return {(r.group["client_tool"] or "", r.group["team"] or ""): r for r in rows}


@pytest.mark.parametrize("params", [WEEK_PARAMS, ODD], ids=["week", "odd-hours"])
async def test_active_and_known_users_equal_sql_over_raw_rows(
    landed: AsyncEngine, params: tuple[tuple[str, str], ...], users_rollup: str
) -> None:
    answer = await ask(context(landed), "adoption", *params)
    assert answer.source == users_rollup and answer.group_by == ["client_tool", "team"]
    window = _effective(answer)
    people = await _raw_people(landed, window)
    active: dict[tuple[str, str], set[str]] = defaultdict(set)
    daily: dict[tuple[str, str, int], set[str]] = defaultdict(set)
    for ts, tool, team, user in people:
        active[(tool, team)].add(user)
        daily[(tool, team, int(ts // DAY))].add(user)
    days = int(-(-window.until // DAY) - window.since // DAY)
    known = await _raw_known(landed, window)
    rows = _by_group(answer.rows)
    for (tool, team), users in active.items():
        row = rows[(tool, team)]
        assert row.active_users == len(users), (tool, team)
        per_day = sum(len(u) for (t, g, _), u in daily.items() if (t, g) == (tool, team))
        assert row.daily_active == pytest.approx(per_day / days, abs=1e-3)
        assert row.known_users == known[team]
        assert row.adoption == pytest.approx(len(users) / known[team], abs=1e-6)
    # every tool seen x every team known; the rest are zero, never missing
    tools = {t for t, _ in active if t}
    for tool in tools:
        for team in known:
            row = rows[(tool, team)]
            if (tool, team) not in active:
                assert row.active_users == 0 and row.adoption == 0.0
    assert {team for _, team in rows} == set(known)
    everyone = {user for _, _, _, user in people}
    assert answer.totals.active_users == len(everyone)
    async with landed.connect() as conn:
        requests = (await conn.execute(select(func.count()).where(in_window(window)))).scalar()
    assert answer.totals.requests == requests  # friction counts requests without a user too
    assert sum(r.requests for r in answer.rows) == requests
    points = {(p.group["client_tool"] or "", p.group["team"] or "", int(p.start_unix // DAY)): p
              for p in answer.series or []}  # fmt: skip
    assert {k: p.active_users for k, p in points.items()} == {k: len(u) for k, u in daily.items()}


async def test_the_known_week_gives_its_shares_gaps_and_actions(
    landed: AsyncEngine, users_rollup: str
) -> None:
    answer = await ask(context(landed, config=snapshot(LIMITS)), "adoption", *WEEK_PARAMS)
    rows = _by_group(answer.rows)
    assert (rows[("cursor", "data")].active_users, rows[("cursor", "data")].known_users) == (14, 20)
    assert rows[("claude-code", "data")].adoption == 0.45
    assert rows[("", "data")].active_users == 2  # d15, d16: no tool named
    assert rows[("cursor", "search")].known_users == 9  # w1's key was live in the week
    assert (
        rows[("cursor", "infra")].known_users == 6 and rows[("cursor", "infra")].active_users == 0
    )
    assert answer.totals.known_users == 35 and answer.totals.active_users == 24
    gaps = {(g.team, g.tool): g for g in {b.name: b for b in answer.breakdowns}["gaps"].rows}
    assert gaps[("data", "claude-code")].gap_pp == 25.0
    assert gaps[("data", "claude-code")].leader == "cursor"
    assert gaps[("search", "cursor")].leader == "claude-code"
    tools = {t.label: t for t in {b.name: b for b in answer.breakdowns}["tools"].rows}
    assert tools["cursor"].active_users == 20 and tools["cursor"].known_users == 35
    actions = [msgspec.to_builtins(a) for a in answer.actions]
    data_gap = actions[0]
    assert data_gap["message"].startswith(
        "claude-code adoption in team data is 25 pp below cursor (45% vs 70% of 20 known "
        "users): tooling friction or use-case fit?"
    )
    # its users there meet a rate limit: the action names the document that holds it
    assert data_gap["control"] == {"kind": "rate_limit", "name": "limits"}
    assert data_gap["where"] == {"type": "gateway-rate-limit-config", "name": "limits"}
    search_gap = actions[1]
    assert search_gap["message"].startswith("cursor adoption in team search is 22 pp below")
    assert search_gap["control"] == {"kind": "config", "name": "client_tool=cursor"}
    no_tool = [a for a in actions if a["where"] == {"type": "header", "name": "X-Sluice-Tool"}]
    assert len(no_tool) == 1 and "carried no client tool" in no_tool[0]["message"]
    idle = [a for a in actions if a["control"]["name"] == "team=infra"]
    assert idle and idle[0]["message"].startswith("team infra: 6 known users and none active")


async def test_a_series_past_its_points_keeps_every_daily_mean_and_total(
    landed: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_POINTS the series stops (the first points by group, then day, shown by
    day), and the daily means, the totals and each tool's users are still every day's
    and every group's, as SQL over the raw rows counts them."""
    monkeypatch.setattr(adoption_counts, "MAX_POINTS", 7)
    answer = await ask(context(landed), "adoption", *WEEK_PARAMS)
    assert any("the series stops" in note for note in answer.notes)
    window = _effective(answer)
    people = await _raw_people(landed, window)
    daily: dict[tuple[str, str, int], set[str]] = defaultdict(set)
    every_day: dict[int, set[str]] = defaultdict(set)
    by_tool: dict[str, set[str]] = defaultdict(set)
    for ts, tool, team, user in people:
        daily[(tool, team, int(ts // DAY))].add(user)
        every_day[int(ts // DAY)].add(user)
        by_tool[tool].add(user)
    first = sorted(daily)[:7]  # by group, then day
    shown = [(p.group["client_tool"] or "", p.group["team"] or "", int(p.start_unix // DAY))
             for p in answer.series or []]  # fmt: skip
    assert shown == sorted(first, key=lambda k: (k[2], k[0], k[1]))
    assert [p.active_users for p in answer.series or []] == [len(daily[k]) for k in shown]
    days = int(-(-window.until // DAY) - window.since // DAY)
    for (tool, team), row in _by_group(answer.rows).items():
        per_day = sum(len(u) for (t, g, _), u in daily.items() if (t, g) == (tool, team))
        assert row.daily_active == pytest.approx(per_day / days, abs=1e-3), (tool, team)
    everyone = sum(len(u) for u in every_day.values())
    assert answer.totals.daily_active == pytest.approx(everyone / days, abs=1e-3)
    tools = {b.name: b for b in answer.breakdowns}["tools"].rows
    assert [(t.label, t.active_users) for t in tools] == [
        (tool or "(no value)", len(users)) for tool, users in sorted(by_tool.items())
    ]


async def test_grouping_by_team_or_tool_alone(landed: AsyncEngine) -> None:
    by_team = await ask(context(landed), "adoption", *WEEK_PARAMS, ("group_by", "team"))
    teams = {r.group["team"]: r for r in by_team.rows}
    assert (teams["data"].active_users, teams["data"].known_users) == (16, 20)
    assert teams["infra"].adoption == 0.0
    by_tool = await ask(context(landed), "adoption", *WEEK_PARAMS, ("group_by", "client_tool"))
    tools = {r.group["client_tool"]: r for r in by_tool.rows}
    assert tools["claude-code"].active_users == 17 and tools["claude-code"].known_users == 35
    gaps = {b.name: b for b in by_tool.breakdowns}["gaps"].rows
    assert [(g.team, g.tool, g.leader) for g in gaps] == [(None, "claude-code", "cursor")]
    with pytest.raises(InvalidRequest) as refused:
        await ask(context(landed), "adoption", ("group_by", "project"))
    assert refused.value.param == "group_by"


async def test_filters_narrow_the_active_users_and_raw_rows_answer_past_the_rollup(
    landed: AsyncEngine,
) -> None:
    answer = await ask(context(landed), "adoption", *WEEK_PARAMS, ("model", "gpt-4o"))
    assert answer.source == "requests"  # rollup_users has no model: raw rows, noted
    assert any("read from raw requests" in note for note in answer.notes)
    window = _effective(answer)
    stmt = (
        select(
            _text(R.client_tool).label("tool"),
            _text(R.team).label("team"),
            func.count(R.user_id.distinct()),
        )
        .where(in_window(window), R.model == "gpt-4o", R.user_id.is_not(None))
        .group_by("tool", "team")
    )
    async with landed.connect() as conn:
        expected = {(tool, team): n for tool, team, n in await conn.execute(stmt)}
    rows = _by_group(answer.rows)
    assert {k: rows[k].active_users for k in expected} == expected
    data = await ask(context(landed), "adoption", *WEEK_PARAMS, ("team", "data"))
    assert {r.group["team"] for r in data.rows} == {"data"} and data.totals.known_users == 20


async def test_a_team_lead_sees_its_teams_a_member_is_refused(landed: AsyncEngine) -> None:
    lead = await ask(context(landed), "adoption", *WEEK_PARAMS, principal=LEAD)
    assert {r.group["team"] for r in lead.rows} == {"data"}
    assert lead.totals.known_users == 20 and lead.scope.teams == ["data"]
    with pytest.raises(PermissionDenied) as other:
        await ask(context(landed), "adoption", *WEEK_PARAMS, ("team", "search"), principal=LEAD)
    assert other.value.code == "team_forbidden"
    member = AdminPrincipal("d01", Role.MEMBER, user_id="d01")
    with pytest.raises(PermissionDenied) as refused:
        await ask(context(landed), "adoption", *WEEK_PARAMS, principal=member)
    assert refused.value.code == "role_forbidden" and "tags panel" in refused.value.message
    finance = await ask(context(landed), "adoption", *WEEK_PARAMS, principal=FINANCE)
    assert finance.totals.known_users == 35  # every team, counted, never named
    assert "d01" not in msgspec.json.encode(finance).decode()


async def test_a_window_longer_than_the_lookback_keeps_every_active_user_known(
    landed: AsyncEngine, users_rollup: str
) -> None:
    long = (("since", iso(DAY0 - 45 * DAY)), ("until", iso(DAY0 + WEEK)))
    answer = await ask(context(landed), "adoption", *long, ("group_by", "team"))
    teams = {r.group["team"]: r for r in answer.rows}
    # "gone" (40 days back) is active in this window, so known; so are the keys revoked
    # or expired inside it
    assert (teams["data"].active_users, teams["data"].known_users) == (21, 23)
    assert all(r.adoption is None or r.adoption <= 1.0 for r in answer.rows)


SHAPES: dict[str, tuple[tuple[str, str], ...]] = {
    "week": WEEK_PARAMS,
    "odd hours": ODD,
    "30 days": (("since", iso(DAY0 - 23 * DAY + 5 * HOUR)), ("until", iso(DAY0 + WEEK))),
    "52 days by team": (("since", iso(DAY0 - 45 * DAY)), *WEEK_PARAMS[1:], ("group_by", "team")),
    "by tool": (*WEEK_PARAMS, ("group_by", "team,client_tool")),
    "tool filter": (*WEEK_PARAMS, ("client_tool", "cursor"), ("group_by", "team")),
}


@pytest.mark.parametrize("shape", SHAPES)
async def test_the_narrow_rollup_answers_as_rollup_users_did(
    landed: AsyncEngine, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    """Every figure, series point, breakdown and action the same, week rows read or not,
    for an admin and a team lead."""
    asked = [(ADMIN, SHAPES[shape]), (LEAD, SHAPES[shape])]
    narrow = [await ask(context(landed), "adoption", *p, principal=who) for who, p in asked]
    _without_tool_users(monkeypatch)
    wide = [await ask(context(landed), "adoption", *p, principal=who) for who, p in asked]
    for new, old in zip(narrow, wide, strict=True):
        assert (new.source, old.source) == ("rollup_tool_users", "rollup_users")
        assert new.totals.active_users > 0
        assert _figures(new) == _figures(old)


def _figures(answer: Any) -> dict[str, Any]:
    built = msgspec.to_builtins(answer)
    del built["source"]
    return dict(built)
