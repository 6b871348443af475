from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from sluicegate.db.engine import async_url, create_engine_for
from sluicegate.errors import ConfigError


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:///./sluice.db", "sqlite+aiosqlite"),
        ("sqlite:///:memory:", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite"),
        ("postgresql://u:p@db:5432/sluice", "postgresql+asyncpg"),
        ("postgres://u@db/sluice", "postgresql+asyncpg"),
        ("postgresql+psycopg2://u@db/sluice", "postgresql+asyncpg"),
    ],
)
def test_urls_get_the_async_driver(given: str, driver: str) -> None:
    url = async_url(given)
    assert url.drivername == driver
    assert url.database == make_url(given).database


@pytest.mark.parametrize("bad", ["mysql://u@h/db", "not a url"])
def test_other_databases_are_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError):
        create_engine_for(bad)


async def test_sqlite_connections_get_the_pragmas(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path}/p.db")
    try:
        async with engine.connect() as conn:

            async def pragma(name: str) -> object:
                return (await conn.execute(text(f"PRAGMA {name}"))).scalar_one()

            assert await pragma("journal_mode") == "wal"
            assert await pragma("synchronous") == 1  # NORMAL
            assert await pragma("busy_timeout") == 5000
            assert await pragma("foreign_keys") == 1
    finally:
        await engine.dispose()


async def test_memory_sqlite_is_one_database_across_connections() -> None:
    engine = create_engine_for("sqlite:///:memory:")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT x FROM t"))).scalar_one() == 1
    finally:
        await engine.dispose()
