"""The control room's sign-in sessions in the database (`ui_sessions`, migration 0021), so
that a session opened on one replica works on every other and survives a restart.

A row holds the SHA-256 of the session id (the cookie's value never reaches the
database), the hash of the credential signed in with, and an absolute expiry. Rows are
bounded: each sign-in deletes the expired rows and keeps at most `max_per_credential`
sessions of its credential (the oldest go first).
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.db.errors import translate_errors
from sluicegate.db.schema import ui_sessions

_C = ui_sessions.c


class SqlUiSessionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(
        self,
        id_hash: str,
        credential_hash: str,
        *,
        now: float,
        expires_at: float,
        max_per_credential: int,
    ) -> None:
        """Store a new session; drop expired ones, and this credential's oldest past the
        bound, in the same transaction."""
        async with translate_errors("ui session insert"), self._engine.begin() as conn:
            await conn.execute(delete(ui_sessions).where(_C.expires_at <= now))
            await conn.execute(
                ui_sessions.insert().values(
                    id_hash=id_hash,
                    credential_hash=credential_hash,
                    created_at=now,
                    expires_at=expires_at,
                )
            )
            older = (
                select(_C.id_hash)
                .where(_C.credential_hash == credential_hash)
                .order_by(_C.created_at.desc(), _C.id_hash.desc())
                .offset(max_per_credential)
            )
            surplus = list((await conn.execute(older)).scalars())
            if surplus:
                await conn.execute(delete(ui_sessions).where(_C.id_hash.in_(surplus)))

    async def credential_of(self, id_hash: str, now: float) -> str | None:
        """The credential hash of a live session; None when there is none (or it expired)."""
        statement = select(_C.credential_hash).where(_C.id_hash == id_hash, _C.expires_at > now)
        async with translate_errors("ui session read"), self._engine.connect() as conn:
            return (await conn.execute(statement)).scalar_one_or_none()

    async def delete(self, id_hash: str) -> None:
        async with translate_errors("ui session delete"), self._engine.begin() as conn:
            await conn.execute(delete(ui_sessions).where(_C.id_hash == id_hash))

    async def count(self, credential_hash: str) -> int:
        statement = select(_C.id_hash).where(_C.credential_hash == credential_hash)
        async with translate_errors("ui session count"), self._engine.connect() as conn:
            return len((await conn.execute(statement)).all())
