"""The statements behind the session panels: `rollup_sessions` (one row per session id,
the whole session's figures) joined by session id with what `outcomes` says each
session produced.

    per_session        each selected session with its outcomes (a LEFT JOIN, grouped)
    group_statement    per_session summed per group (team, project, workflow_tag, ...)
    session_statement  one row per session, newest first, keyset paged
    count_statement    how many sessions a selection holds
    orphan_statement   outcomes in a window naming a session the ledger never saw

Outcomes are read for the selected sessions only (one probe of `ix_outcomes_session_id`
per session), never over the whole table. Every statement is a
single row, grouped with a LIMIT, or limited; grouped values and session ids compare
bytewise on both dialects (`COLLATE "C"` on PostgreSQL) so both answer identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Double,
    Select,
    Subquery,
    and_,
    asc,
    case,
    desc,
    exists,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
)

from sluicegate.analytics.window import Window
from sluicegate.db.schema import SESSION_GROUP_FIGURES, outcomes, rollup_sessions
from sluicegate.outcomes.model import OutcomeKind

S = rollup_sessions.c
O = outcomes.c  # noqa: E741  (the table's initial, as S for sessions)

# The figures a session row carries (never its user: no session panel shows people); the
# session groups sum the same ones.
SESSION_FIGURES = SESSION_GROUP_FIGURES
SESSION_IDENTITY = ("team", "project", "workflow_tag", "client_tool")
OUTCOME_COUNTS = tuple(kind.value for kind in OutcomeKind)


@dataclass(frozen=True, slots=True)
class SessionSelection:
    """Which sessions: those whose last request is in the window, with these identity
    values (`filters`, column -> value), of these teams and this user when scoped."""

    window: Window
    filters: tuple[tuple[str, str], ...] = ()
    teams: tuple[str, ...] | None = None
    user_id: str | None = None


def conditions(
    selection: SessionSelection, *, span: tuple[float, float] | None = None
) -> list[Any]:
    """The selection's WHERE; `span`: [since, until) in place of the window's (a baseline
    reads the days before the window with the same filters and scope)."""
    since, until = span or (selection.window.since, selection.window.until)
    found: list[Any] = [S.last_ts >= since, S.last_ts < until]
    found += [_equals(S[name], [value]) for name, value in selection.filters]
    if selection.teams is not None:
        found.append(_equals(S.team, selection.teams))
    if selection.user_id is not None:
        found.append(_equals(S.user_id, [selection.user_id]))
    return found


def _equals(column: ColumnElement[str], values: Sequence[str]) -> ColumnElement[bool]:
    """A value with a NUL matches nothing (no stored value holds one, and PostgreSQL
    cannot compare one)."""
    kept = [value for value in values if "\x00" not in value]
    return column.in_(kept) if kept else false()


def collated(column: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    return column.collate("C") if dialect == "postgresql" else column


def outcomes_of(session_ids: Select[Any]) -> Subquery:
    """Per session among `session_ids`: its outcomes, by kind, and the sum and count of
    its eval runs' pass rates (whenever they arrived: an outcome counts for its session)."""
    kinds = [
        func.sum(case((O.kind == kind, 1), else_=0)).label(f"n_{kind}") for kind in OUTCOME_COUNTS
    ]
    return (
        select(
            O.session_id.label("session_id"),
            func.count().label("outcomes"),
            *kinds,
            func.sum(O.pass_rate).label("pass_rate_sum"),
            func.count(O.pass_rate).label("rated"),
        )
        .where(O.session_id.in_(session_ids))
        .group_by(O.session_id)
        .subquery("session_outcomes")
    )


def per_session(selection: SessionSelection) -> Subquery:
    """One row per selected session: its identity, figures and outcomes (the session
    LEFT JOIN its outcomes, grouped by its key: PostgreSQL lets the other columns of a
    table grouped by its primary key be selected as they are)."""
    kinds = [func.sum(case((O.kind == kind, 1), else_=0)).label(kind) for kind in OUTCOME_COUNTS]
    columns = [S[name] for name in ("session_id", *SESSION_IDENTITY, *SESSION_FIGURES)]
    return (
        select(
            *columns,
            S.cost_usd,
            func.count(O.id).label("outcomes"),
            *kinds,
            func.sum(O.pass_rate).label("pass_rate_sum"),
            func.count(O.pass_rate).label("rated"),
        )
        .select_from(rollup_sessions.outerjoin(outcomes, O.session_id == S.session_id))
        .where(*conditions(selection))
        .group_by(S.session_id)
        .subquery("per_session")
    )


def group_statement(
    selection: SessionSelection, group: Sequence[str], dialect: str, *, limit: int | None
) -> Select[Any]:
    """Sessions, their figures and their outcomes summed per group of identity columns
    (no group: one total row), the costliest first."""
    P = per_session(selection).c
    traced = P.outcomes > 0
    zero: ColumnElement[float] = literal(0.0, Double())
    columns: list[Any] = [collated(P[name], dialect).label(f"g{i}") for i, name in enumerate(group)]
    columns += [
        func.count().label("sessions"),
        func.sum(case((traced, 1), else_=0)).label("traced_sessions"),
        *(func.sum(P[name]).label(name) for name in SESSION_FIGURES),
        func.sum(P.cost_usd).label("cost_usd"),
        func.sum(case((traced, P.cost_usd), else_=zero)).label("traced_cost_usd"),
        func.sum(P.outcomes).label("outcomes"),
        *(func.sum(P[kind]).label(kind) for kind in OUTCOME_COUNTS),
        func.sum(P.pass_rate_sum).label("pass_rate_sum"),
        func.sum(P.rated).label("rated"),
    ]
    stmt = select(*columns)
    if not group:
        return stmt
    names = [f"g{i}" for i in range(len(group))]
    order: list[Any] = [desc(literal_column("cost_usd")), desc(literal_column("sessions"))]
    stmt = stmt.group_by(*names).order_by(*order, *(asc(literal_column(n)) for n in names))
    return stmt if limit is None else stmt.limit(limit)


@dataclass(frozen=True, slots=True)
class Keyset:
    """Where a page of sessions (newest first) resumes: after this last_ts and id."""

    last_ts: float
    session_id: str


def session_statement(
    selection: SessionSelection,
    dialect: str,
    *,
    limit: int,
    after: Keyset | None = None,
    traced: bool | None = None,
) -> Select[Any]:
    """The newest sessions (last_ts, then id, descending), at most `limit`, each with its
    outcomes; `traced`: only sessions with (True) or without (False) an outcome."""
    sid = collated(S.session_id, dialect)
    where = [*conditions(selection), *_traced(traced)]
    if after is not None:
        where.append(
            or_(S.last_ts < after.last_ts, and_(S.last_ts == after.last_ts, sid < after.session_id))
        )
    identity = [S[name] for name in ("session_id", "first_ts", "last_ts", *SESSION_IDENTITY)]
    picked = (  # a CTE: read once, though the outcomes' IN and the join both use it
        select(*identity, *(S[name] for name in SESSION_FIGURES), S.cost_usd)
        .where(*where)
        .order_by(S.last_ts.desc(), sid.desc())
        .limit(limit)
        .cte("picked")
    )
    joined = outcomes_of(select(picked.c.session_id))
    P = picked.c
    outcome_columns = [
        func.coalesce(joined.c.outcomes, 0).label("outcomes"),
        *(func.coalesce(joined.c[f"n_{k}"], 0).label(k) for k in OUTCOME_COUNTS),
        joined.c.pass_rate_sum.label("pass_rate_sum"),
        func.coalesce(joined.c.rated, 0).label("rated"),
    ]
    stmt = select(*P, *outcome_columns).select_from(
        picked.outerjoin(joined, joined.c.session_id == P.session_id)
    )
    return stmt.order_by(P.last_ts.desc(), collated(P.session_id, dialect).desc())


def count_statement(selection: SessionSelection, *, traced: bool | None = None) -> Select[Any]:
    return select(func.count().label("sessions")).where(*conditions(selection), *_traced(traced))


def _traced(traced: bool | None) -> list[ColumnElement[bool]]:
    if traced is None:
        return []
    has = exists(select(O.id).where(O.session_id == S.session_id))
    return [has if traced else ~has]


def orphan_statement(window: Window) -> Select[Any]:
    """Outcomes that happened in the window and name a session with no ledger row."""
    known = exists(select(S.session_id).where(S.session_id == O.session_id))
    return select(func.count().label("orphans")).where(
        O.ts >= window.since, O.ts < window.until, ~known
    )
