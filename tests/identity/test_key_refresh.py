"""The key refresh through a database outage, on SQLite and PostgreSQL: keys loaded
before it keep working, and the log says so in a few lines (a warning when it starts, a
reminder at most every `outage_log_every` seconds, a line when it ends), not a traceback
per poll. The outage is real: the keys table is renamed away and back."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.identity.key_store import SqlKeyStore
from sluicegate.identity.keys import KeyService
from tests.db.databases import databases, engine  # noqa: F401  (fixtures)

LOGGER = "sluicegate.identity.keys"


async def rename(db: AsyncEngine, old: str, new: str) -> None:
    async with db.begin() as conn:
        await conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


async def wait_for(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_an_outage_is_logged_once_then_rarely_then_its_end(
    engine: AsyncEngine,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    keys = KeyService(SqlKeyStore(engine), admin_key=None, outage_log_every=0.3)
    await keys.start(poll_interval=0.01)
    try:
        _, raw = await keys.create(user_id="ana")
        caplog.set_level(logging.WARNING, logger=LOGGER)
        await rename(engine, "api_keys", "api_keys_away")
        try:
            await asyncio.sleep(1.0)  # ~100 failed polls
            assert keys.authenticate(raw).user_id == "ana"  # the last loaded keys serve on
        finally:
            await rename(engine, "api_keys_away", "api_keys")
        await wait_for(lambda: "works again" in caplog.text, timeout=5.0)
    finally:
        await keys.stop()
    records = [r for r in caplog.records if r.name == LOGGER]
    messages = [r.getMessage() for r in records]
    assert messages[0].startswith("key refresh failed; serving the last loaded keys"), messages
    reminders = [m for m in messages if m.startswith("key refresh still failing after")]
    assert 1 <= len(reminders) <= 4, messages
    assert [m for m in messages if "works again" in m] == [messages[-1]]
    assert len(messages) == len(reminders) + 2
    assert not any(r.exc_info for r in records)  # a known store error: no traceback
