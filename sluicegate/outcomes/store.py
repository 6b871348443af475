"""Where outcomes are kept: the `OutcomeStore` contract and its SQL implementation
(SQLite and PostgreSQL, SQLAlchemy Core).

Semantics:
- `record` is idempotent on (source, external_id): the first outcome sent is stored, and
  sending one again (a retried POST, a redelivered webhook) returns the stored row,
  unchanged, with `created=False`.
- `list` is newest first, ordered by (ts, id) descending, paged by an opaque cursor, at
  most `MAX_PAGE` rows a page; `since` is inclusive and `until` exclusive, on `ts`.
- `by_session` aggregates one window per session, ordered by session id, at most
  `MAX_SESSION_PAGE` sessions a page.
- A `teams` scope keeps the outcomes of sessions that have a ledger row of one of those
  teams: one probe of `ix_requests_session_id_team` per outcome, never a ledger scan.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import time
import uuid
from typing import Any, Protocol

import msgspec
from sqlalchemy import ColumnElement, Select, and_, case, exists, false, func, or_, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sluicegate.analytics.session_groups import add_contribution, lock_session_groups
from sluicegate.db.errors import StoreRejected, translate_errors
from sluicegate.db.schema import outcomes, requests
from sluicegate.db.upsert import dialect_insert
from sluicegate.errors import InvalidRequest
from sluicegate.ledger.store import decode_cursor, encode_cursor
from sluicegate.model.storable import storable
from sluicegate.outcomes.model import (
    NewOutcome,
    Outcome,
    OutcomeFilters,
    OutcomeKind,
    OutcomePage,
    Recorded,
    SessionOutcomes,
    SessionPage,
)

MAX_PAGE = 1000
MAX_SESSION_PAGE = 5000

_C = outcomes.c


class OutcomeStore(Protocol):
    async def record(self, outcome: NewOutcome) -> Recorded: ...

    async def list(self, filters: OutcomeFilters, limit: int, cursor: str | None) -> OutcomePage:
        """Newest first, at most `limit` (1..MAX_PAGE) a page."""
        ...

    async def by_session(
        self,
        since: float,
        until: float,
        *,
        workflow_tag: str | None = None,
        teams: tuple[str, ...] | None = None,
        limit: int = MAX_SESSION_PAGE,
        cursor: str | None = None,
    ) -> SessionPage:
        """Per session with an outcome in [since, until): counts per kind, the mean eval
        pass rate, the value sum and the workflow; ordered by session id."""
        ...


class SqlOutcomeStore:
    """The `outcomes` table. The engine belongs to the caller, who disposes it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._insert = _insert_ignoring_duplicates(engine.dialect.name)

    async def record(self, outcome: NewOutcome) -> Recorded:
        now = time.time()
        # Text from a webhook's sender is stored as storable (a NUL or lone surrogate made
        # U+FFFD, the same way every time, so a re-sent outcome still matches); what the
        # API receives is refused with a 400 before it gets here.
        values = {
            **storable(msgspec.to_builtins(outcome)),
            "id": "out_" + uuid.uuid4().hex[:24],
            "ts": now if outcome.ts is None else outcome.ts,
            "received_at": now,
        }
        async with translate_errors("outcome record"), self._engine.begin() as conn:
            # the session's group row changes with its outcomes (analytics/session_groups)
            session = [values["session_id"]]
            await lock_session_groups(conn)
            await add_contribution(conn, session, -1)
            inserted = (await conn.execute(self._insert, values)).rowcount == 1
            await add_contribution(conn, session, 1)
            row = await _stored(conn, outcome)
        if row is None:  # inserted or already there, it is in the table: a store fault
            raise StoreRejected("outcome record: the stored outcome could not be read back")
        return Recorded(outcome=_outcome(row), created=inserted)

    async def list(self, filters: OutcomeFilters, limit: int, cursor: str | None) -> OutcomePage:
        limit = max(1, min(int(limit), MAX_PAGE))
        conditions = _filter_conditions(filters)
        if cursor is not None:
            ts, outcome_id = decode_cursor(cursor)
            conditions.append(or_(_C.ts < ts, and_(_C.ts == ts, _C.id < outcome_id)))
        statement = (
            select(outcomes)
            .where(*conditions)
            .order_by(_C.ts.desc(), _C.id.desc())
            .limit(limit + 1)
        )
        rows = await self._rows("outcome list", statement)
        page = [_outcome(r) for r in rows[:limit]]
        next_cursor = encode_cursor(page[-1].ts, page[-1].id) if len(rows) > limit else None
        return OutcomePage(data=page, next_cursor=next_cursor)

    async def by_session(
        self,
        since: float,
        until: float,
        *,
        workflow_tag: str | None = None,
        teams: tuple[str, ...] | None = None,
        limit: int = MAX_SESSION_PAGE,
        cursor: str | None = None,
    ) -> SessionPage:
        limit = max(1, min(int(limit), MAX_SESSION_PAGE))
        filters = OutcomeFilters(since=since, until=until, workflow_tag=workflow_tag, teams=teams)
        conditions = _filter_conditions(filters)
        if cursor is not None:
            conditions.append(_C.session_id > decode_session_cursor(cursor))
        kinds = {kind: func.sum(case((_C.kind == kind.value, 1), else_=0)) for kind in OutcomeKind}
        statement = (
            select(
                _C.session_id,
                func.count().label("outcomes"),
                *(column.label(f"n_{kind.value}") for kind, column in kinds.items()),
                func.avg(_C.pass_rate).label("eval_pass_rate"),
                func.sum(_C.value).label("value_sum"),
                func.max(_C.workflow_tag).label("workflow_tag"),
                func.min(_C.ts).label("first_ts"),
                func.max(_C.ts).label("last_ts"),
            )
            .where(*conditions)
            .group_by(_C.session_id)
            .order_by(_C.session_id)
            .limit(limit + 1)
        )
        rows = await self._rows("outcome by_session", statement)
        page = [_session(r) for r in rows[:limit]]
        more = len(rows) > limit
        return SessionPage(
            data=page, next_cursor=encode_session_cursor(page[-1].session_id) if more else None
        )

    async def _rows(self, operation: str, statement: Select[Any]) -> builtins.list[RowMapping]:
        async with translate_errors(operation), self._engine.connect() as conn:
            return list((await conn.execute(statement)).mappings().all())


def _insert_ignoring_duplicates(dialect: str) -> Any:
    keys = ["source", "external_id"]
    return dialect_insert(outcomes, dialect).on_conflict_do_nothing(index_elements=keys)


async def _stored(conn: AsyncConnection, outcome: NewOutcome) -> RowMapping | None:
    statement = select(outcomes).where(
        _C.source == outcome.source.value, _C.external_id == storable(outcome.external_id)
    )
    return (await conn.execute(statement)).mappings().first()


def _filter_conditions(f: OutcomeFilters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if f.source is not None:
        conditions.append(_C.source == f.source.value)
    if f.kind is not None:
        conditions.append(_C.kind == f.kind.value)
    if f.session_id is not None:
        conditions.append(_C.session_id == f.session_id)
    if f.workflow_tag is not None:
        conditions.append(_C.workflow_tag == f.workflow_tag)
    if f.since is not None:
        conditions.append(_C.ts >= f.since)
    if f.until is not None:
        conditions.append(_C.ts < f.until)
    if f.teams is not None:
        conditions.append(_of_teams(f.teams))
    return conditions


def _of_teams(teams: tuple[str, ...]) -> ColumnElement[bool]:
    """The outcome's session has a ledger row of one of `teams` (none: nothing matches)."""
    if not teams:
        return false()
    R = requests.c
    return exists(select(R.request_id).where(R.session_id == _C.session_id, R.team.in_(teams)))


def _outcome(row: RowMapping) -> Outcome:
    return msgspec.convert({str(k): v for k, v in row.items()}, Outcome)


def _session(row: RowMapping) -> SessionOutcomes:
    value_sum = row["value_sum"]
    pass_rate = row["eval_pass_rate"]
    return SessionOutcomes(
        session_id=row["session_id"],
        outcomes=int(row["outcomes"]),
        counts={kind: int(row[f"n_{kind.value}"] or 0) for kind in OutcomeKind},
        eval_pass_rate=None if pass_rate is None else float(pass_rate),
        value_sum=None if value_sum is None else float(value_sum),
        workflow_tag=row["workflow_tag"],
        first_ts=float(row["first_ts"]),
        last_ts=float(row["last_ts"]),
    )


def encode_session_cursor(session_id: str) -> str:
    return base64.urlsafe_b64encode(session_id.encode()).decode().rstrip("=")


def decode_session_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        session_id = base64.urlsafe_b64decode(padded).decode()
    except (ValueError, binascii.Error) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidRequest("invalid cursor", param="cursor") from exc
    if not session_id or "\x00" in session_id:  # no stored session id is either
        raise InvalidRequest("invalid cursor", param="cursor")
    return session_id
