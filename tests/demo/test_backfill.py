"""The demo's backfill on SQLite and PostgreSQL: past days written with the gateway's
store (rollups included), outcomes for some sessions, and a rerun adds nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from sluicegate.db.engine import create_engine_for
from sluicegate.demo.backfill import DAY_S, backfill
from tests.support import fresh_postgres_database

NOW = time.time()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'demo.db'}"
    else:
        with fresh_postgres_database() as url:
            yield url


async def _figures(url: str) -> tuple[int, int, int, float, float]:
    engine = create_engine_for(url)
    try:
        async with engine.connect() as conn:
            raw = (await conn.execute(text("SELECT count(*), min(ts) FROM requests"))).one()
            rolled = (
                await conn.execute(
                    text("SELECT sum(requests) FROM rollup_usage WHERE grain = 'hour'")
                )
            ).scalar_one()
            outcomes = (await conn.execute(text("SELECT count(*) FROM outcomes"))).scalar_one()
            days = (
                await conn.execute(text("SELECT count(DISTINCT floor(ts / 86400)) FROM requests"))
            ).scalar_one()
    finally:
        await engine.dispose()
    return raw[0], int(rolled), outcomes, days, raw[1]


async def test_backfill_writes_each_past_day_once_with_rollups_and_outcomes(
    database_url: str,
) -> None:
    written = await backfill(database_url, 8, 50, seed=5, now=NOW)
    count, rolled, outcomes, days, first = await _figures(database_url)
    assert written == count == rolled == 8 * 50
    assert days == 8 and first >= (NOW // DAY_S - 8) * DAY_S and first < NOW // DAY_S * DAY_S
    assert 0 < outcomes < count  # some sessions produced something, most calls did not

    await backfill(database_url, 9, 50, seed=5, now=NOW)  # a restart: one day further back
    count_after, rolled_after, outcomes_after, days_after, _ = await _figures(database_url)
    assert count_after == rolled_after == 9 * 50 and days_after == 9
    assert outcomes_after >= outcomes
