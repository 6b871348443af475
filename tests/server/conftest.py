from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sluicegate.server.app import Gateway
from sluicegate.server.settings import Settings
from tests.server.inprocess import ADMIN_KEY, InProcessGateway, emulator_upstream, serving


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": f"sqlite:///{tmp_path}/gateway.db",
        "admin_key": ADMIN_KEY,
        "emulator": True,  # the default catalogue's providers are the emulator's URLs
        "spool_dir": str(tmp_path / "spool"),
        "poll_interval_s": 60.0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[InProcessGateway]:
    """A fresh gateway (SQLite, counters in memory) with the emulator as its upstream."""
    async with serving(Gateway(settings_for(tmp_path), upstream=emulator_upstream())) as running:
        yield running
