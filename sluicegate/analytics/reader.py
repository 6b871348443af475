"""Figures summed in SQL from the chosen source, over a window, filtered and grouped.

    Plan (source, window, filters, restriction) + measures + grouping
        --statement--> one SELECT ... SUM(...) GROUP BY ... --run--> [Group]

Rollup rows are read per `Window.spans`: week rows (cuboids) for the whole weeks inside
it, day rows for whole days, hour rows for the hours at the ends (hour and day rows only
for a daily series, hour rows only for an hourly one). Raw rows are read
by `ts`. Grouped values are compared bytewise on both dialects (`COLLATE "C"` on
PostgreSQL, SQLite's default), so ties sort the same everywhere and the two databases
give identical answers. Every statement has a LIMIT or is a single total, and a time
bound (PostgreSQL's statement_timeout, and the caller's asyncio timeout).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Double,
    Select,
    and_,
    asc,
    case,
    cast,
    desc,
    false,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy import Integer as SqlInteger
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import StaticPool

from sluicegate.analytics.coverage import key_coverage
from sluicegate.analytics.dimensions import AnyDimension, MetadataDimension, raw_match
from sluicegate.analytics.measures import Figures, as_figure, raw_measure
from sluicegate.analytics.query import Filter
from sluicegate.analytics.scope import TEAM, USER
from sluicegate.analytics.sources import Source
from sluicegate.analytics.window import DAY, HOUR, Window
from sluicegate.db.errors import translate_errors
from sluicegate.db.schema import requests
from sluicegate.errors import StoreUnavailable

QUERY_TIMEOUT_S = 30.0
MAX_CELLS = 20_000  # groups x time steps that `cells` hands back at most
BACKSTOP_S = 5.0  # beyond the statement's bound: connecting, or a database that ignores it
QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement_timeout
Step = Literal["hour", "day"]
Order = Literal["figures", "names"]  # by cost then requests (descending), or by values
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class Plan:
    """Where and what to read, with the caller's restriction already applied."""

    source: Source
    window: Window
    filters: tuple[Filter, ...] = ()
    teams: tuple[str, ...] | None = None
    user_id: str | None = None


@dataclass(frozen=True, slots=True)
class Group:
    values: tuple[str, ...]  # one per grouped dimension ("" for no value)
    figures: Figures
    step: float | None = None  # the start of the time step, in a series


class AnalyticsReader:
    def __init__(self, engine: AsyncEngine, *, timeout_s: float = QUERY_TIMEOUT_S) -> None:
        self._engine = engine
        self._timeout_s = timeout_s

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    @property
    def engine(self) -> AsyncEngine:
        """What a cache of figures read through it is kept per (one per database)."""
        return self._engine

    async def together(self, a: Awaitable[A], b: Awaitable[B], c: Awaitable[C]) -> tuple[A, B, C]:
        """Three reads at once, each on its own connection, so that an answer waits for
        the slowest and not for their sum; one after the other on an in-memory SQLite
        database (one shared connection). A failure is raised as it is (the first in
        argument order) once every read has ended: none is cancelled mid-statement
        (SQLite's would run on in its thread), and each is bounded by the reader's
        time bound."""
        if isinstance(self._engine.pool, StaticPool):
            return await a, await b, await c
        x, y, z = await asyncio.gather(a, b, c, return_exceptions=True)
        for outcome in (x, y, z):
            if isinstance(outcome, BaseException):
                raise outcome
        return x, y, z  # type: ignore[return-value]  # no exceptions: gather's A, B, C

    async def groups(
        self,
        plan: Plan,
        measures: Sequence[str],
        group: Sequence[AnyDimension],
        *,
        limit: int,
        order: Order = "figures",
        without_empty: AnyDimension | None = None,
        excluded: Filter | None = None,
        among: tuple[AnyDimension, Sequence[str]] | None = None,
    ) -> list[Group]:
        """At most `limit` groups, in `order`; `without_empty`: leave out rows with no
        value for that dimension; `excluded`: leave out rows with that value; `among`:
        only rows whose dimension has one of these values."""
        stmt = statement(
            plan,
            measures,
            group,
            self.dialect,
            without_empty=without_empty,
            excluded=excluded,
            among=among,
        )
        stmt = stmt.order_by(*_order(measures, len(group), order)).limit(limit)
        return [_group(row, measures, len(group)) for row in await self.run(stmt)]

    async def groups_and_totals(
        self,
        plan: Plan,
        measures: Sequence[str],
        group: Sequence[AnyDimension],
        *,
        limit: int,
        order: Order = "figures",
        tagged_by: AnyDimension,
    ) -> tuple[list[Group], Figures, Figures]:
        """In one scan: at most `limit` groups of the rows with a value for `tagged_by`
        (as `groups(..., without_empty=tagged_by)`), the total of those rows over every
        group, and the total of every row (with or without a value).

        The grouped statement is read by an outer one over its groups: groups without a
        value are flagged and sorted last (and dropped here), and the totals are windows
        over all the groups (`SUM(m) OVER ()`, computed before the LIMIT), where separate
        totals would read the rows again (three scans of the window for a key read from
        raw rows)."""
        if tagged_by not in group:
            raise ValueError("tagged_by must be one of the grouped dimensions")
        grouped = statement(plan, measures, group, self.dialect).subquery("grouped")
        flag = case((grouped.c[f"g{list(group).index(tagged_by)}"] == "", 1), else_=0)
        outer: list[ColumnElement[Any]] = [*grouped.c, flag.label("untagged")]
        for name in measures:
            figure = grouped.c[f"m_{name}"]
            outer.append(func.sum(figure).over().label(f"t_{name}"))
            outer.append(func.sum(case((flag == 1, figure), else_=0)).over().label(f"e_{name}"))
        stmt = select(*outer).order_by(
            asc(literal_column("untagged")), *_order(measures, len(group), order)
        )
        rows = await self.run(stmt.limit(limit))
        first = rows[0] if rows else {}
        totals = {name: as_figure(name, first.get(f"t_{name}")) for name in measures}
        empties = {name: as_figure(name, first.get(f"e_{name}")) for name in measures}
        tagged = {name: totals[name] - empties[name] for name in measures}
        groups = [_group(row, measures, len(group)) for row in rows if not row["untagged"]]
        return groups, tagged, totals

    async def cells(
        self, plan: Plan, measures: Sequence[str], group: Sequence[AnyDimension], step: Step
    ) -> list[Group] | None:
        """Figures per group and time step, in no particular order; None when there are
        more than MAX_CELLS of them (the caller then reads what it needs another way)."""
        stmt = statement(plan, measures, group, self.dialect, step=step).limit(MAX_CELLS + 1)
        rows = await self.run(stmt)
        if len(rows) > MAX_CELLS:
            return None
        return [_group(row, measures, len(group)) for row in rows]

    async def total(
        self, plan: Plan, measures: Sequence[str], *, without_empty: AnyDimension | None = None
    ) -> Figures:
        stmt = statement(plan, measures, (), self.dialect, without_empty=without_empty)
        rows = await self.run(stmt)
        return _group(rows[0], measures, 0).figures

    async def series(
        self, plan: Plan, measures: Sequence[str], step: Step, *, limit: int
    ) -> list[Group]:
        """Figures per time step (hour or UTC day) through the window, oldest first."""
        stmt = statement(plan, measures, (), self.dialect, step=step)
        stmt = stmt.order_by(asc(literal_column("step"))).limit(limit)
        return [_group(row, measures, 0) for row in await self.run(stmt)]

    async def distinct(
        self,
        plan: Plan,
        counted: AnyDimension,
        group: Sequence[AnyDimension],
        *,
        limit: int,
        step: Step | None = None,
        summed_steps: bool = False,
    ) -> list[Group]:
        """How many distinct non-empty values of `counted` each group has (figure
        `distinct`), at most `limit` groups in the order of their values; per time step
        with `step`; with `summed_steps`, the per-step counts added up per group (a user
        active on three days counts three)."""
        if summed_steps and step is None:
            raise ValueError("summed_steps needs a step")
        stmt = distinct_statement(plan, counted, group, self.dialect, step=step)
        names = [f"g{i}" for i in range(len(group))]
        if summed_steps:
            inner = stmt.subquery("per_step")
            outer = [inner.c[name] for name in names]
            total = func.sum(inner.c.m_distinct).label("m_distinct")
            stmt = select(*outer, total).group_by(*outer)
        elif step is not None:
            names.append("step")
        stmt = stmt.order_by(*(asc(literal_column(n)) for n in names)).limit(limit)
        return [_group(row, ("distinct",), len(group)) for row in await self.run(stmt)]

    async def rolled_up_since(self, keys: Collection[str]) -> dict[str, float]:
        """Since when the rollup rows of each of `keys` are complete (by arrival time); a
        key with none, or no longer rolled up, is absent (analytics/coverage.py)."""
        async with (
            asyncio.timeout(self._timeout_s + BACKSTOP_S),
            translate_errors("analytics query"),
            self._engine.connect() as conn,
        ):
            coverage = await key_coverage(conn, keys)
        return {k: c.covered_since for k, c in coverage.items() if c.covered_until is None}

    async def run(self, stmt: Select[Any] | CompoundSelect[Any]) -> Sequence[Any]:
        """The rows of one statement, within the reader's time bound: past it the
        database stops the statement (PostgreSQL's statement_timeout; SQLite is
        interrupted, or its worker thread would run it to the end holding the connection)
        and the caller gets a 503 saying so."""
        try:
            async with (
                asyncio.timeout(self._timeout_s + BACKSTOP_S),  # connecting, and the rest
                translate_errors("analytics query"),
                self._engine.connect() as conn,
            ):
                watchdog = await self._watchdog(conn)
                try:
                    result = await conn.execute(stmt)
                    return result.mappings().all()
                finally:
                    if watchdog is not None:
                        watchdog.cancel()
        except StoreUnavailable as exc:
            if not _stopped(exc):
                raise
        except TimeoutError:
            pass
        raise StoreUnavailable(
            f"the analytics query took over {self._timeout_s:g} s: narrow the window "
            "or the grouping",
            code="analytics_timeout",
        )

    async def _watchdog(self, conn: AsyncConnection) -> asyncio.Task[None] | None:
        """What stops the statement on time: PostgreSQL's own timeout, or a task that
        interrupts SQLite's connection."""
        if conn.dialect.name == "postgresql":
            ms = str(max(1, int(self._timeout_s * 1000)))
            # JIT off: its compiling cost more than it saved on these statements (43 ms
            # of a 176 ms raw read at 10M rows; their estimated cost passes jit_above_cost)
            await conn.execute(
                select(
                    func.set_config("statement_timeout", ms, True),
                    func.set_config("jit", "off", True),
                )
            )
            return None
        driver = (await conn.get_raw_connection()).driver_connection
        if driver is None:  # a connection already closed: nothing to run, nothing to stop
            return None

        async def interrupt() -> None:
            await asyncio.sleep(self._timeout_s)
            await driver.interrupt()  # aiosqlite: sqlite3's interrupt, from this thread

        return asyncio.create_task(interrupt())


def _stopped(exc: StoreUnavailable) -> bool:
    """The database stopped the statement for its time bound."""
    cause = exc.__cause__
    if not isinstance(cause, sa_exc.DBAPIError):
        return False
    state = str(getattr(cause.orig, "sqlstate", None) or "")
    return state == QUERY_CANCELED or "interrupted" in str(cause.orig)


def statement(
    plan: Plan,
    measures: Sequence[str],
    group: Sequence[AnyDimension],
    dialect: str,
    *,
    step: Step | None = None,
    without_empty: AnyDimension | None = None,
    excluded: Filter | None = None,
    among: tuple[AnyDimension, Sequence[str]] | None = None,
) -> Select[Any]:
    """SELECT g0.., [step], SUM(measure).. FROM source WHERE window, filters, restriction
    GROUP BY g0.., [step] (grouped by label, so an expression with bound parameters is
    written once)."""
    source = plan.source
    measured = [_measure(source, name, dialect).label(f"m_{name}") for name in measures]
    conditions = _conditions(plan, step)
    if without_empty is not None:
        conditions.append(column_of(source, without_empty) != "")
    if excluded is not None:
        conditions.append(~_match(source, excluded.dimension, [excluded.value]))
    if among is not None:
        conditions.append(_match(source, among[0], among[1]))
    return _grouped(plan, group, dialect, step, measured, conditions)


def distinct_statement(
    plan: Plan,
    counted: AnyDimension,
    group: Sequence[AnyDimension],
    dialect: str,
    *,
    step: Step | None = None,
    one_row_each: bool = False,
) -> Select[Any]:
    """SELECT g0.., [step], COUNT(DISTINCT counted) FROM source WHERE window, filters,
    restriction, counted non-empty GROUP BY g0.., [step]. `one_row_each`: the rows read
    hold each value of `counted` once per group and step (the caller knows the table's
    key), so they are counted as rows, without a set of values per group."""
    column = column_of(plan.source, counted)
    conditions = [*_conditions(plan, step), column != ""]
    # bytewise on PostgreSQL: the same values are distinct (collations here are
    # deterministic), and sorting them per group needs no locale's rules
    count = func.count() if one_row_each else func.count(bytewise(column, dialect).distinct())
    counting = [count.label("m_distinct")]
    return _grouped(plan, group, dialect, step, counting, conditions)


def pairs_statement(
    plan: Plan, counted: AnyDimension, group: Sequence[AnyDimension], dialect: str
) -> Select[Any]:
    """SELECT g0.., counted (as g{len(group)}) FROM source WHERE window, filters,
    restriction, counted non-empty GROUP BY all of them: each group's distinct values
    of `counted`, to be counted several ways."""
    conditions = [*_conditions(plan, None), column_of(plan.source, counted) != ""]
    return _grouped(plan, (*group, counted), dialect, None, (), conditions)


def _conditions(plan: Plan, step: Step | None) -> list[ColumnElement[bool]]:
    """The window, the metadata key read, the filters and the caller's restriction."""
    source = plan.source
    conditions = [_window(source, plan.window, step)]
    if source.meta_key is not None:
        conditions.append(source.table.c.meta_key == source.meta_key)
    conditions += [_match(source, f.dimension, [f.value]) for f in plan.filters]
    if plan.teams is not None:
        conditions.append(_match(source, TEAM, plan.teams))
    if plan.user_id is not None:
        conditions.append(_match(source, USER, [plan.user_id]))
    return conditions


def _grouped(
    plan: Plan,
    group: Sequence[AnyDimension],
    dialect: str,
    step: Step | None,
    figures: Sequence[ColumnElement[Any]],
    conditions: Sequence[ColumnElement[bool]],
) -> Select[Any]:
    source = plan.source
    columns: list[ColumnElement[Any]] = [
        bytewise(column_of(source, dim), dialect).label(f"g{i}") for i, dim in enumerate(group)
    ]
    if step is not None:
        columns.append(_step(source, plan.window, step, dialect).label("step"))
    stmt = select(*columns, *figures).select_from(source.table).where(*conditions)
    grouped = [f"g{i}" for i in range(len(group))] + (["step"] if step else [])
    return stmt.group_by(*grouped) if grouped else stmt


def _match(source: Source, dim: AnyDimension, values: Sequence[str]) -> ColumnElement[bool]:
    """Rows whose `dim` is one of `values`. A value with a NUL matches nothing (the ledger
    stores none, and PostgreSQL cannot even compare one: `analytics_scope` gives a member
    without a user such an impossible id)."""
    values = [value for value in values if "\x00" not in value]
    if not values:
        return false()
    if source.raw:
        return raw_match(dim, values)
    return column_of(source, dim).in_(values)


def column_of(source: Source, dim: AnyDimension) -> ColumnElement[Any]:
    if source.raw:
        return dim.raw()
    if isinstance(dim, MetadataDimension):
        return source.table.c.meta_value
    return source.table.c[dim.columns[source.columns_key]]


def _measure(source: Source, name: str, dialect: str) -> ColumnElement[Any]:
    if source.raw:
        expression = raw_measure(name, dialect)
        if expression is None:  # sources.fits() checked this
            raise ValueError(f"raw rows have no measure {name!r}")
        return expression
    return func.sum(source.table.c[name])


def _window(source: Source, window: Window, step: Step | None) -> ColumnElement[bool]:
    if source.raw:
        ts = requests.c.ts
        return and_(ts >= window.since, ts < window.until)
    c = source.table.c
    # a series step must not be coarser than the rows read: no week rows in a daily one
    spans = window.spans(step or source.coarsest)
    # a cuboid's name in every branch, so that each is one range of its index (SQLite
    # reads an OR of ranges only when every branch has one)
    rows_of = [] if source.cuboid is None else [c.cuboid == source.cuboid.name]
    return or_(*(and_(*rows_of, c.grain == g, c.bucket >= a, c.bucket < b) for g, a, b in spans))


def _step(source: Source, window: Window, step: Step, dialect: str) -> ColumnElement[Any]:
    width = HOUR if step == "hour" else DAY
    ts = requests.c.ts if source.raw else source.table.c.bucket
    if not source.raw and all(span.grain == step for span in window.spans(step)):
        return ts  # every row read is one step: its bucket is the step's start, and a
        # bare column lets SQLite group in its index's order
    if dialect == "postgresql":
        return func.floor(ts / literal(float(width), Double())) * width
    return cast(ts / width, SqlInteger()) * width  # truncation is floor for times >= 0


def bytewise(column: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """Bytewise comparison, as SQLite's default: PostgreSQL's database collation could
    order "a-b" and "ab" differently."""
    return column.collate("C") if dialect == "postgresql" else column


def _order(measures: Sequence[str], groups: int, order: Order) -> list[Any]:
    names: list[Any] = [asc(literal_column(f"g{i}")) for i in range(groups)]
    if order == "names":
        return names
    ranked = [m for m in ("cost_usd", "requests") if m in measures]
    by_figures: list[Any] = [desc(literal_column(f"m_{m}")) for m in ranked]
    return [*by_figures, *names]


def _group(row: Any, measures: Sequence[str], groups: int) -> Group:
    step = row.get("step")
    return Group(
        values=tuple(str(row[f"g{i}"] or "") for i in range(groups)),
        figures={name: as_figure(name, row[f"m_{name}"]) for name in measures},
        step=None if step is None else float(step),
    )
