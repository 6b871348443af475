from __future__ import annotations

import pytest

from sluicegate.config.registry import DocumentRegistry
from sluicegate.config.service import ConfigService
from sluicegate.config.version_store import MemoryConfigVersionStore
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
