"""Reading an export: its plan, then its rows in keyset pages (SQLAlchemy Core, either
dialect).

The plan fixes, before the first byte is sent, the key of the last row the export will
cover: the `limit`-th row after the cursor, or the last row matching at all. That key is
the cursor the answer's headers give for the next export, so an export that is cut short
by its limit continues exactly after it. Pages are then read up to that key, `page_rows`
at a time, each in a connection of its own (no transaction is held across pages, so a
slow client never holds back the writer or SQLite's checkpoints). Only one page is ever
held in memory. JSON columns are read as text (see `_as_read`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Column, ColumnElement, Select, Text, and_, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sluicegate.db.errors import translate_errors
from sluicegate.errors import StoreUnavailable
from sluicegate.export.cursor import Key
from sluicegate.export.sources import Condition, ExportSource

PAGE_ROWS = 5_000
READ_TIMEOUT_S = 60.0  # one page or one planning query

Row = Sequence[Any]


@dataclass(frozen=True, slots=True)
class ExportPlan:
    source: ExportSource
    grain: str | None
    conditions: tuple[Condition, ...]  # filters and window
    start: Key | None  # rows after this key (the cursor given), or from the first
    end: Key | None  # the key of the last row covered; None: nothing to export
    rows: int  # rows in (start, end] when planned
    complete: bool  # no row matched beyond `end` when planned


class ExportReader:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        page_rows: int = PAGE_ROWS,
        timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        self._engine = engine
        self.page_rows = page_rows
        self._timeout_s = timeout_s

    async def plan(
        self,
        source: ExportSource,
        grain: str | None,
        conditions: list[Condition],
        start: Key | None,
        limit: int,
    ) -> ExportPlan:
        keys = _key_columns(source)
        matching = [*conditions, *after_key(keys, start)]
        ordered = select(*keys).where(*matching)
        end: Key | None = None
        async with self._connection() as conn:
            # Counting (at most limit + 1) walks the index on the first key column alone;
            # finding the limit-th key in full order costs more, so only when needed.
            bounded = select(keys[0]).where(*matching).limit(limit + 1).subquery()
            counted = await conn.execute(select(func.count()).select_from(bounded))
            matched = int(counted.scalar_one())
            rows, complete = min(matched, limit), matched <= limit
            if rows:
                if complete:  # the last matching row
                    last = ordered.order_by(*(k.desc() for k in keys)).limit(1)
                else:  # the limit-th
                    last = ordered.order_by(*keys).offset(limit - 1).limit(1)
                found = (await conn.execute(last)).first()
                end = tuple(found) if found is not None else None
        return ExportPlan(source, grain, tuple(conditions), start, end, rows, complete)

    async def pages(self, plan: ExportPlan) -> AsyncGenerator[list[Row]]:
        """The plan's rows, oldest key first, at most `page_rows` a page."""
        if plan.end is None:
            return
        source = plan.source
        keys = _key_columns(source)
        positions = source.key_positions()
        position = plan.start
        while True:
            statement: Select[Any] = (
                select(*_as_read(source))
                .where(*plan.conditions, *after_key(keys, position), *upto_key(keys, plan.end))
                .order_by(*keys)
                .limit(self.page_rows)
            )
            async with self._connection() as conn:
                rows: list[Row] = list((await conn.execute(statement)).all())
            if not rows:
                return
            yield rows
            if len(rows) < self.page_rows:
                return
            position = tuple(rows[-1][i] for i in positions)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        """A connection for one query or two, bounded in time (a database that stops
        answering ends the export with a 503 before it starts, or cuts it short after)."""
        try:
            async with (
                asyncio.timeout(self._timeout_s),
                translate_errors("export read"),
                self._engine.connect() as conn,
            ):
                yield conn
        except TimeoutError:
            raise StoreUnavailable(
                f"export read: the database did not answer within {self._timeout_s:.0f} s"
            ) from None


def _as_read(source: ExportSource) -> list[ColumnElement[Any]]:
    """The table's columns, JSON ones as their text: parsing them is left to the encoder,
    in its worker thread, instead of the driver on the event loop."""
    return [
        cast(c, Text).label(c.name) if isinstance(c.type, JSON) else c for c in source.table.columns
    ]


def _key_columns(source: ExportSource) -> list[Column[Any]]:
    return [source.table.c[name] for name in source.key]


def after_key(keys: Sequence[Column[Any]], key: Key | None) -> list[Condition]:
    """Rows whose key is greater than `key` (lexicographically); the leading bound alone
    lets the database use the index on the first key column."""
    if key is None:
        return []
    return [keys[0] >= key[0], _beyond(keys, key, strictly_after=True)]


def upto_key(keys: Sequence[Column[Any]], key: Key) -> list[Condition]:
    """Rows whose key is at most `key`."""
    return [keys[0] <= key[0], _beyond(keys, key, strictly_after=False)]


def _beyond(keys: Sequence[Column[Any]], key: Key, *, strictly_after: bool) -> Condition:
    first, value = keys[0], key[0]
    if len(keys) == 1:
        return (first > value) if strictly_after else (first <= value)
    rest = _beyond(keys[1:], key[1:], strictly_after=strictly_after)
    outside: ColumnElement[bool] = (first > value) if strictly_after else (first < value)
    return or_(outside, and_(first == value, rest))
