"""`rollup_session_groups`: sessions summed per bucket of their last request and identity
(team, project, workflow tag, client tool), with their outcomes, in hour and day rows: a
30-day outcome join reads a few rows per group instead of every session.

The rule that keeps it exact: a group row is the sum, over the sessions whose current
`rollup_sessions` row falls in it, of each session's *contribution* (1 session, its
figures, its cost, its outcomes so far, traced or not). Anything that changes a session
(a ledger batch with its requests, an outcome naming it) runs, in its own transaction,

    subtract the contribution of those sessions   (their stored rows, as they are)
    change them                                   (the session upsert / the outcome insert)
    add their contribution back                   (the rows as they are now)

so a session that moves to a later bucket, gains an identity value or its first outcome
leaves its old row and lands in its new one, and the figures are those the raw join
gives, whatever the order batches and outcomes arrive in. Nothing is "final": a session
is never assumed idle. Rows emptied this way stay with zeros; the reader skips groups
with no session. On PostgreSQL the three steps hold an advisory lock, so that two
replicas (or a replica and the outcome intake) cannot subtract the same old state twice;
SQLite has one writer already.

`sluicegate ledger rebuild-rollups` and migration 0016 fill the table from scratch with
the same contribution over every session (`refill`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import sqlite3
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Double,
    Insert,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from sluicegate.analytics.rollup_sql import apply_deltas
from sluicegate.analytics.rollups import GRAINS, RollupDeltas
from sluicegate.analytics.session_sql import (
    OUTCOME_COUNTS,
    SESSION_FIGURES,
    SessionSelection,
    collated,
)
from sluicegate.analytics.window import Window
from sluicegate.db.schema import (
    SESSION_GROUP_COUNTS,
    SESSION_GROUP_DIMENSIONS,
    SESSION_GROUP_FIGURES,
    SESSION_GROUP_OUTCOMES,
    SESSION_GROUP_SUMS,
    outcomes,
    rollup_session_groups,
    rollup_sessions,
)
from sluicegate.db.upsert import dialect_insert

if (SESSION_GROUP_FIGURES, SESSION_GROUP_OUTCOMES) != (SESSION_FIGURES, OUTCOME_COUNTS):
    raise RuntimeError("rollup_session_groups: columns out of step with session_sql.py")

GROUP_GRAINS = ("hour", "day")
SESSION_GROUPS_LOCK = 0x5E55_6A0B  # pg_advisory_xact_lock key of the three steps
G = rollup_session_groups.c
S = rollup_sessions.c
O = outcomes.c  # noqa: E741  (as in session_sql)
_SQLITE = sqlite.dialect(paramstyle="qmark")


# -- writing -----------------------------------------------------------------------------


async def apply_with_session_groups(conn: AsyncConnection, deltas: RollupDeltas) -> None:
    """`apply_deltas`, the session groups kept: the bucketed tables first (their row locks
    before the groups' lock, as every writer takes them), then the sessions' three steps."""
    if not deltas.sessions:
        await apply_deltas(conn, deltas)
        return
    await apply_deltas(conn, dataclasses.replace(deltas, sessions={}))
    sessions = RollupDeltas(sessions=deltas.sessions)
    ids = sorted(sessions.sessions)
    await lock_session_groups(conn)
    await add_contribution(conn, ids, -1)
    await apply_deltas(conn, sessions)
    await add_contribution(conn, ids, 1)


async def lock_session_groups(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SESSION_GROUPS_LOCK})


async def add_contribution(conn: AsyncConnection, session_ids: Collection[str], sign: int) -> None:
    """Add (sign 1) or take away (-1) what these sessions' stored rows contribute."""
    if not session_ids:
        return
    dialect = conn.dialect.name
    ids = json.dumps(list(session_ids))
    for grain in GROUP_GRAINS:
        await conn.execute(contribution_upsert(dialect, grain, sign, True), {"ids": ids})


async def refill(conn: AsyncConnection) -> None:
    """Every group row recomputed from every session (the caller holds writers off)."""
    await lock_session_groups(conn)
    await conn.execute(rollup_session_groups.delete())
    for grain in GROUP_GRAINS:
        await conn.execute(contribution_upsert(conn.dialect.name, grain, 1, False))


class SqliteSessionGroups:
    """The three steps on a plain `sqlite3` connection (the SQLite ledger's bulk path),
    with the statements above compiled once for SQLite."""

    def __init__(self) -> None:
        self._statements: dict[tuple[str, int], tuple[str, list[Any]]] = {}
        for grain in GROUP_GRAINS:
            for sign in (-1, 1):
                compiled = contribution_upsert("sqlite", grain, sign, True).compile(dialect=_SQLITE)
                # every bind but `ids` is the statement's own constant
                names = list(compiled.positiontup or ())
                constants = [None if n == "ids" else compiled.params[n] for n in names]
                self._statements[(grain, sign)] = (compiled.string, constants)

    def add(self, connection: sqlite3.Connection, session_ids: Sequence[str], sign: int) -> None:
        if not session_ids:
            return
        ids = json.dumps(list(session_ids))
        for grain in GROUP_GRAINS:
            sql, constants = self._statements[(grain, sign)]
            connection.execute(sql, [ids if c is None else c for c in constants])


@functools.cache
def contribution_upsert(dialect: str, grain: str, sign: int, selected: bool) -> Insert:
    """INSERT INTO rollup_session_groups the `grain` rows of the sessions named by the
    JSON array parameter `ids` (`selected`; else every session) times `sign`, ON CONFLICT
    adding to the stored row."""
    per = _per_session(dialect, selected)
    width = float(GRAINS[grain])
    if dialect == "postgresql":
        bucket: ColumnElement[Any] = func.floor(per.c.last_ts / width) * width
    else:  # last_ts >= 0: truncation is the floor
        bucket = cast(cast(per.c.last_ts / width, Integer()), Double()) * width
    traced = per.c.outcomes > 0
    n: ColumnElement[int] = literal_column(str(sign))
    zero: ColumnElement[float] = literal(0.0, Double())
    dimensions = [per.c[d] for d in SESSION_GROUP_DIMENSIONS]
    source = (
        select(
            literal(grain, String()).label("grain"),
            bucket.label("bucket"),
            *dimensions,
            (n * func.count()).label("sessions"),
            (n * func.sum(case((traced, 1), else_=0))).label("traced_sessions"),
            *(
                (n * func.sum(per.c[m])).label(m)
                for m in (*SESSION_GROUP_FIGURES, "outcomes", *SESSION_GROUP_OUTCOMES, "rated")
            ),
            (n * func.sum(per.c.cost_usd)).label("cost_usd"),
            (n * func.sum(case((traced, per.c.cost_usd), else_=zero))).label("traced_cost_usd"),
            (n * func.sum(per.c.pass_rate_sum)).label("pass_rate_sum"),
        )
        .where(literal_column("1") == 1)  # SQLite: an upsert's SELECT needs a WHERE
        .group_by(literal_column("bucket"), *dimensions)
        .order_by(literal_column("bucket"), *dimensions)  # one lock order for every writer
    )
    names = [
        "grain",
        "bucket",
        *SESSION_GROUP_DIMENSIONS,
        *SESSION_GROUP_COUNTS,
        *SESSION_GROUP_SUMS,
    ]
    insert = dialect_insert(rollup_session_groups, dialect).from_select(names, source)
    added = {m: G[m] + insert.excluded[m] for m in (*SESSION_GROUP_COUNTS, *SESSION_GROUP_SUMS)}
    keys = ["grain", "bucket", *SESSION_GROUP_DIMENSIONS]
    return insert.on_conflict_do_update(index_elements=keys, set_=added)


def _per_session(dialect: str, selected: bool) -> Any:
    """One row per session: its identity, figures, cost and outcomes (session_sql's
    per_session, for a set of ids instead of a window)."""
    kinds = [
        func.coalesce(func.sum(case((O.kind == k, 1), else_=0)), 0).label(k)
        for k in SESSION_GROUP_OUTCOMES
    ]
    stmt = (
        select(
            S.last_ts,
            *(S[d] for d in SESSION_GROUP_DIMENSIONS),
            *(S[m] for m in SESSION_GROUP_FIGURES),
            S.cost_usd,
            func.count(O.id).label("outcomes"),
            *kinds,
            func.coalesce(func.sum(O.pass_rate), 0.0).label("pass_rate_sum"),
            func.count(O.pass_rate).label("rated"),
        )
        .select_from(rollup_sessions.outerjoin(outcomes, O.session_id == S.session_id))
        .group_by(S.session_id)
    )
    if selected:
        stmt = stmt.where(S.session_id.in_(_ids(dialect)))
    return stmt.subquery("per_session")


def _ids(dialect: str) -> Select[Any]:
    """The session ids of the JSON array parameter `ids`."""
    if dialect == "postgresql":
        array = cast(bindparam("ids", type_=String()), postgresql.JSONB)
        return select(func.jsonb_array_elements_text(array))
    return select(literal_column("value")).select_from(
        func.json_each(bindparam("ids", type_=String()))
    )


# -- reading -----------------------------------------------------------------------------


def covers(selection: SessionSelection) -> bool:
    """The group rows answer a selection that names no user (a member's own sessions
    are read from the sessions themselves)."""
    return selection.user_id is None


def spans_condition(window: Window) -> ColumnElement[bool]:
    """The rows of the window: whole days from day rows, the hours at either end from
    hour rows (whole hours: the window is snapped to them)."""
    return or_(
        *(
            and_(G.grain == span.grain, G.bucket >= span.start, G.bucket < span.end)
            for span in window.spans("day")
        )
    )


def group_rollup_statement(
    selection: SessionSelection, group: Sequence[str], dialect: str, *, limit: int | None
) -> Select[Any]:
    """session_sql.group_statement's answer from the group rows (same labels, order)."""
    where: list[Any] = [spans_condition(selection.window)]
    where += [G[name].in_(_kept([value])) for name, value in selection.filters]
    if selection.teams is not None:
        where.append(G.team.in_(_kept(selection.teams)))
    columns: list[Any] = [collated(G[name], dialect).label(f"g{i}") for i, name in enumerate(group)]
    columns += [func.sum(G[m]).label(m) for m in (*SESSION_GROUP_COUNTS, *SESSION_GROUP_SUMS)]
    stmt = select(*columns).where(*where)
    if not group:
        return stmt
    names: list[ColumnElement[Any]] = [literal_column(f"g{i}") for i in range(len(group))]
    stmt = (
        stmt.group_by(*names)
        .having(func.sum(G.sessions) > 0)
        .order_by(
            literal_column("cost_usd").desc(),
            literal_column("sessions").desc(),
            *(n.asc() for n in names),
        )
    )
    return stmt if limit is None else stmt.limit(limit)


def count_rollup_statement(selection: SessionSelection, traced: bool | None) -> Select[Any]:
    """How many sessions (with / without an outcome) the group rows hold for a selection."""
    figure = {
        None: G.sessions,
        True: G.traced_sessions,
        False: G.sessions - G.traced_sessions,
    }[traced]
    where: list[Any] = [spans_condition(selection.window)]
    where += [G[name].in_(_kept([value])) for name, value in selection.filters]
    if selection.teams is not None:
        where.append(G.team.in_(_kept(selection.teams)))
    return select(func.coalesce(func.sum(figure), 0).label("sessions")).where(*where)


def _kept(values: Sequence[str]) -> list[str]:
    """A value with a NUL matches nothing (PostgreSQL cannot compare one)."""
    return [v for v in values if "\x00" not in v]
