from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.db.engine import create_engine_for
from sluicegate.db.migrate import current_revision, head_revision, upgrade, upgrade_engine
from sluicegate.db.schema import metadata
from sluicegate.identity.key_store import SqlKeyStore
from tests.db.databases import SQL_BACKENDS, Databases

TABLES = {"requests", "api_keys", "config_versions", "alerts", "outcomes", "alembic_version"}


def _drift(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, metadata)


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _check_migrated(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        assert await conn.run_sync(_tables) == TABLES
        assert await conn.run_sync(_drift) == []  # the revisions build exactly schema.py
    assert await current_revision(engine) == head_revision()


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_upgrade_builds_the_schema_and_is_idempotent(
    backend: str, databases: Databases
) -> None:
    url = databases.url(backend)
    engine = create_engine_for(url)
    try:
        assert await current_revision(engine) is None
        await upgrade(url)
        await upgrade(url)
        await _check_migrated(engine)
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_replicas_migrating_at_once_serialize(databases: Databases) -> None:
    url = databases.url("postgres")
    await asyncio.gather(*(upgrade(url) for _ in range(4)))
    engine = create_engine_for(url)
    try:
        await _check_migrated(engine)
    finally:
        await engine.dispose()


async def test_memory_sqlite_is_migrated_on_the_engine_that_uses_it() -> None:
    engine = create_engine_for("sqlite:///:memory:")
    try:
        await upgrade_engine(engine)
        await _check_migrated(engine)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_keys_made_before_pins_pin_nothing_new(backend: str, databases: Databases) -> None:
    """0004 adds the pins: a key written at 0003 reads back with `pinned == []` (its user
    and team stay pinned by the reader, its project stays a default)."""
    url = databases.url(backend)
    await upgrade(url, "0003")
    engine = create_engine_for(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO api_keys (id, key_hash, key_prefix, user_id, project, models,"
                    " is_admin, created_at, updated_at, metadata) VALUES ('key_old', 'h', 'sg-',"
                    " 'ann', 'p', '[]', false, 1.0, 1.0, '{}')"
                )
            )
        await upgrade(url)
        row = await SqlKeyStore(engine).get("key_old")
        assert row is not None and (row.pinned, row.project, row.environment) == ([], "p", None)
    finally:
        await engine.dispose()
