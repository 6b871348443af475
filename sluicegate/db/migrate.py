"""Alembic migrations, run programmatically (no alembic.ini).

`upgrade(url)` brings a database to head; replicas starting together on PostgreSQL
serialize on an advisory lock, so exactly one of them creates the tables.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.db.engine import create_engine_for
from sluicegate.db.errors import translate_errors

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_PG_MIGRATION_LOCK = 0x5106E6A7E  # any constant bigint shared by every replica


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}: a packaging error")
    return head


async def upgrade(url: str, revision: str = "head") -> None:
    """Run the migrations on the database at `url` up to `revision`.

    An in-memory SQLite database lives only as long as its engine: migrate it with
    `upgrade_engine` on the engine the gateway will use."""
    engine = create_engine_for(url)
    try:
        await upgrade_engine(engine, revision)
    finally:
        await engine.dispose()


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    async with translate_errors("database migration"), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        await conn.run_sync(_run_upgrade, revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    async with translate_errors("database revision"), engine.connect() as conn:
        return await conn.run_sync(_current)


def _run_upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
