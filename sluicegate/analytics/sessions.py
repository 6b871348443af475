"""Sessions as the outcome-join and leverage panels read them, as typed data.

    ScopedQuery --selection_of--> SessionSelection --read_*--> SessionFigures / GroupFigures

A session is the requests that carried one session id (`X-Sluice-Session-ID`); its row in
`rollup_sessions` holds the whole session's figures, and its identity (team, project,
workflow tag, client tool) is the first non-empty value its requests carried. A session
belongs to a window when its last request does. Session panels filter and group by
those identity columns only, and never show a user: the caller's scope still narrows
them (a team lead's teams, a member's own sessions). Sums and counts come from
`rollup_session_groups` (a few rows per group and day) unless the selection names a
user; listings and scores read the sessions themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from sluicegate.analytics.dimensions import AnyDimension, Dimension
from sluicegate.analytics.measures import as_figure
from sluicegate.analytics.reader import AnalyticsReader
from sluicegate.analytics.scope import ScopedQuery
from sluicegate.analytics.session_groups import (
    count_rollup_statement,
    covers,
    group_rollup_statement,
)
from sluicegate.analytics.session_sql import (
    OUTCOME_COUNTS,
    SESSION_FIGURES,
    SESSION_IDENTITY,
    Keyset,
    SessionSelection,
    count_statement,
    group_statement,
    orphan_statement,
    session_statement,
)
from sluicegate.analytics.window import Window
from sluicegate.errors import InvalidRequest

SOURCE = "rollup_sessions"
GROUPS_SOURCE = "rollup_session_groups"  # sums and counts when no user is named
MAX_SESSION_PAGE = 1000  # sessions listed per page

__all__ = ["SOURCE", "Keyset", "SessionSelection"]


class SessionFigures(msgspec.Struct, kw_only=True, frozen=True):
    """One session: identity (never a user), figures, and the outcomes joined to it."""

    session_id: str
    first_ts: float
    last_ts: float
    team: str | None
    project: str
    workflow_tag: str | None
    client_tool: str | None
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    retry_tokens: int
    wasted_input_tokens: int
    rate_limit_hits: int
    budget_hits: int
    guardrail_blocks: int
    cost_usd: float
    outcomes: int
    pr_merged: int
    ticket_closed: int
    incident_resolved: int
    eval_run: int
    eval_pass_rate: float | None  # the mean of its eval runs' pass rates


class GroupFigures(msgspec.Struct, kw_only=True, frozen=True):
    """Sessions of one group summed (`values`: one per grouped column, "" for none)."""

    values: tuple[str, ...]
    sessions: int
    traced_sessions: int  # with at least one outcome
    figures: dict[str, int]  # SESSION_FIGURES summed
    cost_usd: float
    traced_cost_usd: float
    outcomes: int
    counts: dict[str, int]  # outcomes by kind
    pass_rate_sum: float  # over every eval run
    eval_runs_rated: int


def selection_of(scoped: ScopedQuery, panel: str) -> SessionSelection:
    """The sessions a query asks for; a 400 naming a filter a session does not carry."""
    query = scoped.query
    for f in query.filters:
        if f.dimension.name not in SESSION_IDENTITY:
            raise InvalidRequest(
                f"{f.dimension.name}: the {panel} panel reads whole sessions, which are "
                f"filtered by {', '.join(SESSION_IDENTITY)} only",
                param=f.dimension.name,
            )
    return SessionSelection(
        window=query.window,
        filters=tuple((f.dimension.name, f.value) for f in query.filters),
        teams=scoped.teams,
        user_id=scoped.user_id,
    )


def grouping_of(
    group_by: Sequence[AnyDimension], panel: str, allowed: Sequence[str]
) -> tuple[Dimension, ...]:
    """The query's grouping when every dimension is one of `allowed`; else a 400."""
    for dim in group_by:
        if dim.name not in allowed:
            raise InvalidRequest(
                f"group_by: the {panel} panel groups sessions by {', '.join(allowed)} only "
                f"(not {dim.name})",
                param="group_by",
            )
    return tuple(d for d in group_by if isinstance(d, Dimension))


class SessionReader:
    """Runs the session statements through the analytics reader (its time bound and
    error translation)."""

    def __init__(self, reader: AnalyticsReader) -> None:
        self._reader = reader

    def source(self, selection: SessionSelection) -> str:
        """The table `groups`, `total` and `count` read for this selection."""
        return GROUPS_SOURCE if covers(selection) else SOURCE

    async def groups(
        self, selection: SessionSelection, group: Sequence[str], *, limit: int
    ) -> list[GroupFigures]:
        dialect = self._reader.dialect
        if covers(selection):
            stmt = group_rollup_statement(selection, group, dialect, limit=limit)
        else:
            stmt = group_statement(selection, group, dialect, limit=limit)
        return [_group(row, len(group)) for row in await self._reader.run(stmt)]

    async def total(self, selection: SessionSelection) -> GroupFigures:
        dialect = self._reader.dialect
        if covers(selection):
            stmt = group_rollup_statement(selection, (), dialect, limit=None)
        else:
            stmt = group_statement(selection, (), dialect, limit=None)
        return _group((await self._reader.run(stmt))[0], 0)

    async def sessions(
        self,
        selection: SessionSelection,
        *,
        limit: int,
        after: Keyset | None = None,
        traced: bool | None = None,
    ) -> list[SessionFigures]:
        """Newest first, at most `limit`."""
        stmt = session_statement(
            selection, self._reader.dialect, limit=limit, after=after, traced=traced
        )
        return [_session(row) for row in await self._reader.run(stmt)]

    async def count(self, selection: SessionSelection, *, traced: bool | None = None) -> int:
        if covers(selection):
            stmt = count_rollup_statement(selection, traced)
        else:
            stmt = count_statement(selection, traced=traced)
        rows = await self._reader.run(stmt)
        return int(rows[0]["sessions"])

    async def orphan_outcomes(self, window: Window) -> int:
        return int((await self._reader.run(orphan_statement(window)))[0]["orphans"])


def _int(value: Any) -> int:
    return int(value or 0)  # PostgreSQL sums bigint into numeric (Decimal)


def _group(row: Any, groups: int) -> GroupFigures:
    return GroupFigures(
        values=tuple(str(row[f"g{i}"] or "") for i in range(groups)),
        sessions=_int(row["sessions"]),
        traced_sessions=_int(row["traced_sessions"]),
        figures={name: _int(row[name]) for name in SESSION_FIGURES},
        cost_usd=as_figure("cost_usd", row["cost_usd"]),
        traced_cost_usd=as_figure("cost_usd", row["traced_cost_usd"]),
        outcomes=_int(row["outcomes"]),
        counts={kind: _int(row[kind]) for kind in OUTCOME_COUNTS},
        pass_rate_sum=float(row["pass_rate_sum"] or 0.0),
        eval_runs_rated=_int(row["rated"]),
    )


def _session(row: Any) -> SessionFigures:
    rated = _int(row["rated"])
    return SessionFigures(
        session_id=row["session_id"],
        first_ts=float(row["first_ts"]),
        last_ts=float(row["last_ts"]),
        team=row["team"] or None,
        project=row["project"],
        workflow_tag=row["workflow_tag"] or None,
        client_tool=row["client_tool"] or None,
        **{name: _int(row[name]) for name in SESSION_FIGURES},
        cost_usd=float(row["cost_usd"] or 0.0),
        outcomes=_int(row["outcomes"]),
        **{kind: _int(row[kind]) for kind in OUTCOME_COUNTS},
        eval_pass_rate=float(row["pass_rate_sum"]) / rated if rated else None,
    )
