"""Persistence for admin API tokens (`admin_tokens`); issuing, checking and the lookup
index live in `admin_tokens.py`.

Like virtual keys, every change stamps `updated_at` (`db/stamps.py`) so that replicas
polling `max_updated_at()` reload on every committed change. Creating and revoking a
token writes its audit row in the same transaction (`audit.store.insert_statement`): the
trail holds every token that was ever made or taken away, and nothing it did not happen.
`last_used_at` is written without a stamp: a use is not a change replicas need to load.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sluicegate.audit.store import AuditEntry, insert_statement
from sluicegate.db.errors import translate_errors
from sluicegate.db.rows import to_struct
from sluicegate.db.schema import admin_tokens
from sluicegate.db.stamps import lock_writes, write_stamp
from sluicegate.ledger.store import decode_cursor, encode_cursor

_C = admin_tokens.c
_PG_TOKENS_LOCK = 0x5106E6A7E + 2  # beside the keys' lock (+1)


class AdminTokenRow(msgspec.Struct, kw_only=True):
    id: str
    name: str
    role: str
    teams: list[str] = msgspec.field(default_factory=list)  # a team lead's teams
    user_id: str | None = None  # a member's own user
    token_hash: str
    token_prefix: str
    created_at: float
    created_by: str
    updated_at: float = 0.0  # stamped by the store on every change
    revoked_at: float | None = None
    last_used_at: float | None = None
    expires_at: float | None = None  # None: until revoked

    def state(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at is not None and self.expires_at <= now else "active"


class TokenPage(msgspec.Struct, kw_only=True):
    rows: list[AdminTokenRow]
    next_cursor: str | None


class SqlAdminTokenStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, row: AdminTokenRow, audit: AuditEntry, *, max_live: int) -> bool:
        """Write the token and its audit row; False (nothing written) when `max_live`
        tokens are live already."""
        values = msgspec.to_builtins(row)
        async with translate_errors("admin token insert"), self._engine.begin() as conn:
            await lock_writes(conn, _PG_TOKENS_LOCK)
            live = select(func.count()).select_from(admin_tokens).where(*_live(row.created_at))
            if (await conn.execute(live)).scalar_one() >= max_live:
                return False
            stamp = write_stamp(admin_tokens, row.updated_at)
            await conn.execute(admin_tokens.insert().values({**values, "updated_at": stamp}))
            await conn.execute(insert_statement(audit))
        return True

    async def revoke(
        self, token_id: str, now: float, audit: AuditEntry
    ) -> tuple[AdminTokenRow | None, bool]:
        """(the token, whether this call revoked it): a token revoked already is left as it
        was, with no new audit row; (None, False) when there is no such token."""
        statement = (
            update(admin_tokens)
            .where(_C.id == token_id, _C.revoked_at.is_(None))
            .values(revoked_at=now, updated_at=write_stamp(admin_tokens, now))
        )
        async with translate_errors("admin token revoke"), self._engine.begin() as conn:
            await lock_writes(conn, _PG_TOKENS_LOCK)
            revoked = (await conn.execute(statement)).rowcount == 1
            if revoked:
                await conn.execute(insert_statement(audit))
            return await _fetch(conn, token_id), revoked

    async def get(self, token_id: str) -> AdminTokenRow | None:
        async with translate_errors("admin token get"), self._engine.connect() as conn:
            return await _fetch(conn, token_id)

    async def live(self, now: float) -> list[AdminTokenRow]:
        """Every token neither revoked nor expired at `now` (at most the service's bound on
        live tokens)."""
        statement = select(admin_tokens).where(*_live(now))
        async with translate_errors("admin token load"), self._engine.connect() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        return [_row(r) for r in rows]

    async def page(
        self, limit: int, cursor: str | None, *, state: str | None, now: float
    ) -> TokenPage:
        """Oldest first, `limit` rows after `cursor`; `state` (active, expired, revoked)
        keeps only tokens in it at `now`, None every token."""
        conditions: list[ColumnElement[bool]] = []
        if state == "active":
            conditions.extend(_live(now))
        elif state == "expired":
            conditions.extend((_C.revoked_at.is_(None), _C.expires_at <= now))
        elif state == "revoked":
            conditions.append(_C.revoked_at.is_not(None))
        if cursor is not None:
            created, token_id = decode_cursor(cursor)
            conditions.append(
                or_(_C.created_at > created, and_(_C.created_at == created, _C.id > token_id))
            )
        statement = (
            select(admin_tokens).where(*conditions).order_by(_C.created_at, _C.id).limit(limit + 1)
        )
        async with translate_errors("admin token list"), self._engine.connect() as conn:
            rows = [_row(r) for r in (await conn.execute(statement)).mappings().all()]
        page = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_cursor(page[-1].created_at, page[-1].id)
        return TokenPage(rows=page, next_cursor=next_cursor)

    async def max_updated_at(self) -> float:
        statement = select(func.coalesce(func.max(_C.updated_at), 0.0))
        async with translate_errors("admin token max_updated_at"), self._engine.connect() as conn:
            return float((await conn.execute(statement)).scalar_one())

    async def touch(self, uses: Mapping[str, float]) -> None:
        """Raise each token's `last_used_at` to its time in `uses` (never lower it: another
        replica may have seen a later use)."""
        async with translate_errors("admin token touch"), self._engine.begin() as conn:
            for token_id, ts in uses.items():
                await conn.execute(
                    update(admin_tokens)
                    .where(
                        _C.id == token_id,
                        or_(_C.last_used_at.is_(None), _C.last_used_at < ts),
                    )
                    .values(last_used_at=ts)
                )


def _live(now: float) -> tuple[ColumnElement[bool], ...]:
    return _C.revoked_at.is_(None), or_(_C.expires_at.is_(None), _C.expires_at > now)


async def _fetch(conn: AsyncConnection, token_id: str) -> AdminTokenRow | None:
    found = (await conn.execute(select(admin_tokens).where(_C.id == token_id))).mappings().first()
    return _row(found) if found else None


def _row(values: RowMapping) -> AdminTokenRow:
    return to_struct(values, AdminTokenRow)
