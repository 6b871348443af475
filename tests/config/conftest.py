from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sluicegate.config.registry import DocumentRegistry
from sluicegate.config.service import ConfigService
from sluicegate.config.version_store import MemoryConfigVersionStore, SqlConfigVersionStore
from sluicegate.db.engine import create_engine_for
from sluicegate.db.migrate import upgrade
from tests.config.documents import TEST_TYPES


@pytest.fixture
def registry() -> DocumentRegistry:
    return DocumentRegistry(TEST_TYPES)


@pytest.fixture
def store() -> MemoryConfigVersionStore:
    return MemoryConfigVersionStore()


@pytest.fixture
def service(store: MemoryConfigVersionStore, registry: DocumentRegistry) -> ConfigService:
    return ConfigService(store, registry)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqlConfigVersionStore]:
    """The SQL version store over a migrated SQLite file of its own."""
    url = f"sqlite:///{tmp_path}/config.db"
    await upgrade(url)
    engine = create_engine_for(url)
    yield SqlConfigVersionStore(engine)
    await engine.dispose()
