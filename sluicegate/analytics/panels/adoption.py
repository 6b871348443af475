"""`adoption`: how many of each team's people use each AI tool (seed 000, panel 1).

Units are client tool x team x day: the panel counts users, never names or ranks them.
Per tool and team (the default grouping `client_tool,team`; `team,client_tool`,
`client_tool` or `team` alone also):

    active_users    distinct users with a request in the window
    known_users     the team's known users (analytics/known_users.py: seen in the last
                    28 days, or holding a key); every team's, when not grouped by team
    adoption        active_users / known_users
    daily_active    distinct users per UTC day, averaged over the days the window
                    touches (a day it covers in part counts as a day)
    requests, error_rate, rate_limit_hits, budget_hits
                    friction: every request of the tool and team, with a user or not

Rows are every tool seen times every team known, so a tool nobody in a team uses shows
as 0%; a "(no value)" tool (requests that named none) where it has users. `series`:
active users per day and group. Breakdowns: each tool across the teams, and the gaps:
each tool's adoption below the leading tool's, per team, in percentage points.

Who sees it: every role but `member` (a team lead its own teams). A member gets 403:
the panel counts a team's people; its own usage by tool is the tags panel's
`group_by=client_tool`.

Actions: a tool far below another in a team (with the friction its users meet: rate
limits, budgets, errors), requests that named no client tool, and a team with known
users and no activity.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from sluicegate.analytics.config import AnalyticsSettings
from sluicegate.analytics.dimensions import DIMENSIONS, AnyDimension
from sluicegate.analytics.known_users import KnownUsers, known_users
from sluicegate.analytics.measures import Figures
from sluicegate.analytics.panels import controls
from sluicegate.analytics.panels.adoption_counts import MAX_POINTS, Counts, Point, user_counts
from sluicegate.analytics.panels.base import (
    Action,
    Breakdown,
    Column,
    Control,
    ControlKind,
    Layer,
    PanelAnswer,
    PanelContext,
    Where,
)
from sluicegate.analytics.panels.common import (
    NO_VALUE_LABEL,
    answer_of,
    group_of,
    label_of,
    plan,
    share,
)
from sluicegate.analytics.query import MAX_LIMIT, Filter
from sluicegate.analytics.scope import ScopedQuery
from sluicegate.analytics.window import DAY, Window, iso
from sluicegate.errors import InvalidRequest, PermissionDenied

USER = DIMENSIONS["user_id"]
TOOL = DIMENSIONS["client_tool"]
TEAM = DIMENSIONS["team"]
GROUPINGS = (TOOL.name, TEAM.name)
FRICTION = ("requests", "errors", "rate_limit_hits", "budget_hits")
TOOL_HEADER = "X-Sluice-Tool"
GAP_PP = 20.0  # a tool this many points below the leading one in a team is a question
MIN_KNOWN = 5  # fewer known users than this say nothing about a team
LIMITED_ALERT = 0.05  # share of a tool's requests a rate limit or budget acted on
ERROR_ALERT = 0.10  # share of a tool's requests that failed
NO_TOOL_ALERT = 0.01  # share of requests that named no client tool
MAX_GAPS = 50
MAX_GAP_ACTIONS = 5
MAX_IDLE_ACTIONS = 5


class AdoptionRow(msgspec.Struct, kw_only=True):
    group: dict[str, str | None]
    label: str
    kind: Literal["group", "total"]
    active_users: int
    known_users: int
    adoption: float | None  # active / known
    daily_active: float
    daily_adoption: float | None
    requests: int
    error_rate: float | None
    rate_limit_hits: int
    budget_hits: int


class ToolRow(msgspec.Struct, kw_only=True):
    label: str  # the tool
    active_users: int
    known_users: int
    adoption: float | None


class GapRow(msgspec.Struct, kw_only=True):
    label: str  # "claude-code vs cursor"
    team: str | None  # None: every team together
    tool: str
    leader: str  # the tool with the highest adoption there
    adoption: float
    leader_adoption: float
    gap_pp: float  # percentage points below the leader
    known_users: int


class AdoptionPoint(msgspec.Struct, kw_only=True):
    start: str
    start_unix: float
    group: dict[str, str | None]
    label: str
    active_users: int
    adoption: float | None


COLUMNS = [
    Column("label", "tool / team"),
    Column("active_users", "active"),
    Column("known_users", "known"),
    Column("adoption", "adoption share"),
    Column("daily_active", "daily active"),
    Column("daily_adoption", "daily share"),
    Column("requests", "requests"),
    Column("error_rate", "error rate"),
    Column("rate_limit_hits", "rate limited"),
]
TOOL_COLUMNS = [
    Column("label", "tool"),
    Column("active_users", "active"),
    Column("known_users", "known"),
    Column("adoption", "adoption share"),
]
GAP_COLUMNS = [
    Column("team", "team"),
    Column("label", "tool vs leader"),
    Column("gap_pp", "points below"),
    Column("adoption", "adoption share"),
    Column("leader_adoption", "leader share"),
]


class AdoptionPanel:
    name = "adoption"
    title = "Adoption"
    layer = Layer.ACTIVITY
    question = (
        "How many of each team's people use each AI tool, over the window and on a "
        "typical day, and where does one tool lag another?"
    )
    default_limit = 200

    def default_group_by(self, settings: AnalyticsSettings) -> str:
        return "client_tool,team"

    async def answer(self, context: PanelContext, query: ScopedQuery) -> PanelAnswer[Any]:
        if query.user_id is not None:
            raise PermissionDenied(
                "the adoption panel counts each team's people, which a member does not "
                "see; its own usage by tool is the tags panel with group_by=client_tool",
                code="role_forbidden",
            )
        q = query.query
        dims = _grouping(q.group_by)
        reader = context.reader
        users, notes = plan(
            context, query, ("requests",), group=[USER, *dims], derives_no_value=True
        )
        # independent reads, run at once (AnalyticsReader.together): the answer waits
        # for the slowest, not for their sum
        known, counted, (friction, more) = await reader.together(
            known_users(reader, q.window, _known_teams(query)),
            user_counts(reader, users, dims, _days(q.window)),
            _friction(context, query, dims),
        )
        if known.cut:
            notes.append("more teams than can be counted at once: some are left out")
        if counted.points_cut:
            notes.append(f"the series stops at {MAX_POINTS} points: narrow the window")
        counts = counted.groups
        if counts.cut:
            notes.append(f"only the first {MAX_LIMIT} tool x team groups are counted")
        notes += more
        rows, cut = _rows(dims, counts, known, friction, q.limit)
        if cut:
            notes.append(f"{cut} more tool x team rows past the limit ({q.limit}) are not shown")
        totals = _row((), (), counted.overall, known, friction.total, kind="total")
        source = users.source.name
        answer = answer_of(
            self, query, source=source, columns=COLUMNS, rows=rows, totals=totals, notes=notes
        )
        answer.series = _series(counted.points, dims, known)
        tools = _tools(counted.tools, known) if TOOL in dims else []
        gaps = _gaps(dims, rows, tools)
        answer.breakdowns = [
            Breakdown("tools", "each tool across the teams", tools, TOOL_COLUMNS),
            Breakdown("gaps", "points below the leading tool", gaps[:MAX_GAPS], GAP_COLUMNS),
        ]
        answer.actions = [
            *_gap_actions(context, dims, gaps, friction),
            *_no_tool_action(friction),
            *_idle_actions(dims, rows),
        ]
        return answer


PANEL = AdoptionPanel()


# -- reading ---------------------------------------------------------------------------


def _grouping(group_by: Sequence[AnyDimension]) -> tuple[AnyDimension, ...]:
    names = [d.name for d in group_by]
    if not names or any(name not in GROUPINGS for name in names):
        raise InvalidRequest(
            "group_by: the adoption panel groups by client_tool and team (either, or both "
            f"in either order), not {','.join(names)}",
            param="group_by",
        )
    return tuple(group_by)


def _days(window: Window) -> int:
    """The UTC days the window touches."""
    return int(math.ceil(window.until / DAY) - math.floor(window.since / DAY))


def _known_teams(query: ScopedQuery) -> list[str] | None:
    asked = query.query.filter_on(TEAM.name)
    if asked is not None:
        return [asked]  # scoped() refused a team outside the caller's teams
    return None if query.teams is None else list(query.teams)


@dataclasses.dataclass(frozen=True, slots=True)
class _Friction:
    groups: dict[tuple[str, ...], Figures]
    total: Figures
    no_tool: int  # requests that named no client tool


async def _friction(
    context: PanelContext, query: ScopedQuery, dims: Sequence[AnyDimension]
) -> tuple[_Friction, list[str]]:
    read, notes = plan(context, query, FRICTION, group=dims)
    reader = context.reader
    no_tool = dataclasses.replace(read, filters=(*read.filters, Filter(TOOL, "")))
    groups, total, without_tool = await reader.together(
        reader.groups(read, FRICTION, dims, limit=MAX_LIMIT, order="names"),
        reader.total(read, FRICTION),
        reader.total(no_tool, ("requests",)),
    )
    return _Friction(
        groups={g.values: g.figures for g in groups},
        total=total,
        no_tool=int(without_tool["requests"]),
    ), [f"friction figures: {note}" for note in notes]


def _series(points: list[Point], dims: Sequence[AnyDimension], known: KnownUsers) -> list[Any]:
    """The points, in their order (by day, then group). A series repeats a few days and
    groups thousands of times: each one's text and known users are worked out once."""
    days = {step: iso(step) for step in {p.step for p in points}}
    keys = {p.values for p in points}
    groups = {v: (group_of(dims, v), label_of(v), _known_of(dims, v, known)) for v in keys}
    series: list[Any] = []
    for p in points:
        group, label, of = groups[p.values]
        series.append(
            AdoptionPoint(
                start=days[p.step],
                start_unix=p.step,
                group=group,
                label=label,
                active_users=p.users,
                adoption=share(p.users, of),
            )
        )
    return series


def _tools(tools: list[tuple[str, int]], known: KnownUsers) -> list[ToolRow]:
    """Each tool's users across the teams asked, as a share of all their known users."""
    return [
        ToolRow(
            label=label_of((tool,)),
            active_users=users,
            known_users=known.total,
            adoption=share(users, known.total),
        )
        for tool, users in tools
    ]


# -- rows ------------------------------------------------------------------------------


def _rows(
    dims: Sequence[AnyDimension],
    counts: Counts,
    known: KnownUsers,
    friction: _Friction,
    limit: int,
) -> tuple[list[AdoptionRow], int]:
    """Every tool seen x every team known (named tools only; the no-tool value where it
    has users), in the order of the grouping; and how many were left past `limit`."""
    seen = set(counts.active) | set(friction.groups)
    values: dict[str, set[str]] = {}
    for i, dim in enumerate(dims):
        values[dim.name] = {v[i] for v in seen}
        if dim is TEAM:
            values[dim.name] |= set(known.by_team)
        if dim is TOOL:
            values[dim.name].discard("")
    keys = set(itertools.product(*(sorted(values[d.name]) for d in dims))) | seen
    ordered = sorted(keys)
    rows = [_row(dims, key, counts, known, friction.groups.get(key, {})) for key in ordered]
    return rows[:limit], max(len(rows) - limit, 0)


def _row(
    dims: Sequence[AnyDimension],
    key: tuple[str, ...],
    counts: Counts,
    known: KnownUsers,
    figures: Figures,
    kind: Literal["group", "total"] = "group",
) -> AdoptionRow:
    active = counts.active.get(key, 0)
    daily = counts.daily.get(key, 0.0)
    of = _known_of(dims, key, known)
    requests = int(figures.get("requests", 0))
    return AdoptionRow(
        group=group_of(dims, key),
        label=label_of(key) if kind == "group" else "total",
        kind=kind,
        active_users=active,
        known_users=of,
        adoption=share(active, of),
        daily_active=daily,
        daily_adoption=share(daily, of),
        requests=requests,
        error_rate=share(figures.get("errors", 0), requests),
        rate_limit_hits=int(figures.get("rate_limit_hits", 0)),
        budget_hits=int(figures.get("budget_hits", 0)),
    )


def _known_of(dims: Sequence[AnyDimension], key: Sequence[str], known: KnownUsers) -> int:
    for dim, value in zip(dims, key, strict=True):
        if dim is TEAM:
            return known.by_team.get(value, 0)
    return known.total


def _gaps(
    dims: Sequence[AnyDimension], rows: list[AdoptionRow], tools: list[ToolRow]
) -> list[GapRow]:
    """Each named tool's adoption below the leading tool's: per team when grouped by
    team, else across the teams; the widest gaps first."""
    if TOOL not in dims:
        return []
    by_team: dict[str | None, list[tuple[str, float, int]]] = {}
    if TEAM in dims:
        for row in rows:
            named, team = row.group.get(TOOL.name), row.group.get(TEAM.name) or ""
            if named and row.adoption is not None:
                by_team.setdefault(team, []).append((named, row.adoption, row.known_users))
    else:
        for t in tools:
            if t.label != NO_VALUE_LABEL and t.adoption is not None:
                by_team.setdefault(None, []).append((t.label, t.adoption, t.known_users))
    gaps = []
    for place, entries in by_team.items():
        leader, best, _ = min(entries, key=lambda e: (-e[1], e[0]))  # ties: by name
        for tool, adoption, known in entries:
            if tool != leader and best > adoption:
                gaps.append(
                    GapRow(
                        label=f"{tool} vs {leader}",
                        team=place,
                        tool=tool,
                        leader=leader,
                        adoption=adoption,
                        leader_adoption=best,
                        gap_pp=round((best - adoption) * 100, 1),
                        known_users=known,
                    )
                )
    return sorted(gaps, key=lambda g: (-g.gap_pp, g.team or "", g.tool))


# -- actions ---------------------------------------------------------------------------


def _gap_actions(
    context: PanelContext, dims: Sequence[AnyDimension], gaps: list[GapRow], friction: _Friction
) -> list[Action]:
    actions = []
    for gap in gaps:
        if gap.gap_pp < GAP_PP or gap.known_users < MIN_KNOWN:
            continue
        where = f"team {gap.team or '(no team)'}" if gap.team is not None else "all teams"
        message = (
            f"{gap.tool} adoption in {where} is {gap.gap_pp:.0f} pp below {gap.leader} "
            f"({gap.adoption:.0%} vs {gap.leader_adoption:.0%} of {gap.known_users} known "
            "users): tooling friction or use-case fit?"
        )
        figures = friction.groups.get(_key(dims, gap), {})
        actions.append(_friction_action(context, message, gap.tool, figures))
        if len(actions) == MAX_GAP_ACTIONS:
            break
    return actions


def _key(dims: Sequence[AnyDimension], gap: GapRow) -> tuple[str, ...]:
    return tuple(gap.tool if d is TOOL else gap.team or "" for d in dims)


def _friction_action(context: PanelContext, message: str, tool: str, figures: Figures) -> Action:
    """The gap's action names the control its users run into, when there is one."""
    requests = figures.get("requests", 0)
    limited = figures.get("rate_limit_hits", 0) + figures.get("budget_hits", 0)
    if requests and limited / requests >= LIMITED_ALERT:
        by_limits = figures.get("rate_limit_hits", 0) >= figures.get("budget_hits", 0)
        kind: ControlKind = "rate_limit" if by_limits else "budget"
        types = controls.RATE_LIMITS if by_limits else (controls.BUDGETS,)
        docs = controls.documents(context.config, *types)
        doc_type, name = docs[0] if docs else (types[0], None)
        message += (
            f" {limited / requests:.0%} of its requests there met a "
            f"{'rate limit' if by_limits else 'budget'}: check {name or 'the rules in force'}"
        )
        return Action(message, Control(kind, name or "none in force"), Where(doc_type, name))
    if requests and figures.get("errors", 0) / requests >= ERROR_ALERT:
        message += f" {figures['errors'] / requests:.0%} of its requests there failed"
    return Action(message, Control("config", f"client_tool={tool}"))


def _no_tool_action(friction: _Friction) -> list[Action]:
    requests = int(friction.total["requests"])
    if not requests or friction.no_tool / requests < NO_TOOL_ALERT:
        return []
    message = (
        f"{friction.no_tool:,} requests ({friction.no_tool / requests:.0%}) carried no client "
        f"tool: ask their callers to send {TOOL_HEADER} (common SDKs and coding agents are "
        "recognised by their User-Agent)"
    )
    return [Action(message, Control("config", "client_tool"), Where("header", TOOL_HEADER))]


def _idle_actions(dims: Sequence[AnyDimension], rows: list[AdoptionRow]) -> list[Action]:
    """Teams with known users and nobody active in any tool."""
    if TEAM not in dims:
        return []
    teams: dict[str, tuple[int, int]] = {}
    for row in rows:
        team = row.group.get(TEAM.name)
        if team:
            active, _ = teams.get(team, (0, 0))
            teams[team] = (active + row.active_users, row.known_users)
    actions = []
    for team, (active, known) in sorted(teams.items()):
        if active == 0 and known >= MIN_KNOWN:
            message = (
                f"team {team}: {known} known users and none active over the window: "
                "access, onboarding, or no use case yet?"
            )
            actions.append(Action(message, Control("config", f"team={team}")))
            if len(actions) == MAX_IDLE_ACTIONS:
                break
    return actions
