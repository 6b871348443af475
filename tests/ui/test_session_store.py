"""The UI's session rows on SQLite and PostgreSQL: found only while live, bounded per
credential (the oldest go first), expired rows dropped at the next sign-in, and a
session that outlives its credential's validity resolved to nobody."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.db.schema import ui_sessions
from sluicegate.ui.session_store import SqlUiSessionStore


async def _rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(ui_sessions))).scalar_one())


async def test_sessions_are_found_while_live_and_bounded_per_credential(
    engine: AsyncEngine,
) -> None:
    store = SqlUiSessionStore(engine)
    for n in range(5):
        await store.insert(
            f"s{n}", "cred-a", now=100.0 + n, expires_at=1000.0, max_per_credential=3
        )
    await store.insert("other", "cred-b", now=200.0, expires_at=1000.0, max_per_credential=3)
    assert await store.count("cred-a") == 3
    assert [await store.credential_of(f"s{n}", 300.0) for n in range(5)] == [
        None,
        None,
        "cred-a",
        "cred-a",
        "cred-a",
    ]
    assert await store.credential_of("other", 300.0) == "cred-b"
    assert await store.credential_of("s4", 1000.0) is None  # expired at its expiry
    await store.delete("s4")
    assert await store.credential_of("s4", 300.0) is None


async def test_a_sign_in_drops_expired_sessions(engine: AsyncEngine) -> None:
    store = SqlUiSessionStore(engine)
    await store.insert("old", "cred-a", now=0.0, expires_at=10.0, max_per_credential=3)
    await store.insert("older", "cred-b", now=0.0, expires_at=5.0, max_per_credential=3)
    await store.insert("new", "cred-c", now=20.0, expires_at=50.0, max_per_credential=3)
    assert await _rows(engine) == 1
