"""Real databases for store tests: one migrated SQLite file and one migrated PostgreSQL
database per test session, created on first use and emptied before each test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics import loop_baseline
from sluicegate.db.engine import create_engine_for
from sluicegate.db.migrate import upgrade
from sluicegate.db.schema import metadata
from tests.support import fresh_postgres_database

SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
ALL_BACKENDS = ["memory", *SQL_BACKENDS]


class Databases:
    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._engines: dict[str, AsyncEngine] = {}
        self._stack = ExitStack()

    def url(self, backend: str) -> str:
        """A new, empty database of this kind (not migrated)."""
        if backend == "sqlite":
            return f"sqlite:///{self._directory}/db-{len(list(self._directory.iterdir()))}.db"
        if backend == "postgres":
            return self._stack.enter_context(fresh_postgres_database())
        raise ValueError(backend)

    async def engine(self, backend: str) -> AsyncEngine:
        """The session's migrated database of this kind, emptied."""
        if backend not in self._engines:
            url = self.url(backend)
            await upgrade(url)
            self._engines[backend] = create_engine_for(url)
        engine = self._engines[backend]
        names = ", ".join(t.name for t in metadata.sorted_tables)
        async with engine.begin() as conn:  # empty, and number versions from 1 again
            if conn.dialect.name == "postgresql":
                await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY"))
            else:
                for table in metadata.sorted_tables:
                    await conn.execute(table.delete())
                await conn.execute(text("DELETE FROM sqlite_sequence"))
        loop_baseline.forget(engine)  # what the panels cached of the rows just deleted
        return engine

    async def close(self) -> None:
        for engine in self._engines.values():
            await engine.dispose()
        self._stack.close()


@pytest.fixture(scope="session")
async def databases(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Databases]:
    dbs = Databases(tmp_path_factory.mktemp("db"))
    yield dbs
    await dbs.close()


@pytest.fixture(params=SQL_BACKENDS)
async def engine(request: pytest.FixtureRequest, databases: Databases) -> AsyncEngine:
    """An emptied, migrated database: SQLite and PostgreSQL."""
    return await databases.engine(request.param)
