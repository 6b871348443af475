from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sluicegate.server.app import Gateway
from tests.db.databases import databases, engine  # noqa: F401  (fixtures)
from tests.server.conftest import settings_for
from tests.server.inprocess import InProcessGateway, emulator_upstream, serving


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[InProcessGateway]:
    """A fresh gateway (SQLite, counters in memory) with the emulator as its upstream."""
    async with serving(Gateway(settings_for(tmp_path), upstream=emulator_upstream())) as running:
        yield running
