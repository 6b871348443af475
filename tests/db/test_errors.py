"""Driver errors never leave a store: an unreachable or unmigrated database is
StoreUnavailable, rows the database refuses are StoreRejected."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.alerts.store import AlertRow, SqlAlertStore
from sluicegate.config.problems import VersionConflict
from sluicegate.config.version_store import SqlConfigVersionStore
from sluicegate.db.engine import create_engine_for
from sluicegate.db.errors import StoreRejected
from sluicegate.errors import StoreUnavailable
from sluicegate.identity.key_store import KeyRow, SqlKeyStore
from sluicegate.ledger.sql_store import SqlLedgerStore
from sluicegate.ledger.store import RequestFilters
from sluicegate.model.record import LedgerRecord
from tests.support import free_port


@pytest.fixture(params=["postgres-wrong-port", "sqlite-unmigrated"])
async def broken_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    if request.param == "postgres-wrong-port":
        url = f"postgresql://postgres@127.0.0.1:{free_port()}/sluice"
    else:
        url = f"sqlite:///{tmp_path}/empty.db"
    engine = create_engine_for(url)
    yield engine
    await engine.dispose()


def _calls(engine: AsyncEngine) -> list[Callable[[], Awaitable[Any]]]:
    ledger, keys = SqlLedgerStore(engine), SqlKeyStore(engine)
    versions, alerts = SqlConfigVersionStore(engine), SqlAlertStore(engine)
    return [
        lambda: ledger.write_batch([LedgerRecord(request_id="r", ts=1.0)]),
        lambda: ledger.query(RequestFilters(), 10, None),
        lambda: ledger.sum_cost(0.0, {"team": "t"}),
        lambda: ledger.count(0.0, {}),
        lambda: keys.insert(KeyRow(id="k", key_hash="h", key_prefix="sg-")),
        lambda: keys.list(),
        lambda: keys.update("k", name="x"),
        lambda: keys.max_updated_at(),
        lambda: versions.append([], "", "me", version=1),
        lambda: versions.latest_version_number(),
        lambda: versions.history(),
        lambda: alerts.append(AlertRow(ts=1.0, kind="k", rule_id="r", severity="s", message="m")),
        lambda: alerts.list(),
    ]


async def test_an_unusable_database_is_store_unavailable(broken_engine: AsyncEngine) -> None:
    for call in _calls(broken_engine):
        with pytest.raises(StoreUnavailable) as caught:
            await call()
        assert not isinstance(caught.value, StoreRejected)
        assert (caught.value.status, caught.value.code) == (503, "store_unavailable")


async def test_rows_the_database_refuses_are_store_rejected(engine: AsyncEngine) -> None:
    store = SqlLedgerStore(engine)
    bad = [
        LedgerRecord(request_id="big", ts=1.0, input_tokens=2**70),  # beyond BIGINT
        LedgerRecord(request_id="obj", ts=1.0, guardrail_events=[{"x": object()}]),
    ]
    if engine.dialect.name == "postgresql":  # PostgreSQL text cannot hold NUL
        bad.append(LedgerRecord(request_id="nul", ts=1.0, error_message="a\x00b"))
    for rec in bad:
        with pytest.raises(StoreRejected):
            await store.write_batch([LedgerRecord(request_id="fine", ts=1.0), rec])
    assert await store.count(0.0, {}) == 0  # a refused batch is refused whole


async def test_values_the_database_refuses_are_a_4xx_not_an_outage(engine: AsyncEngine) -> None:
    """Reads too: a value the database cannot take (PostgreSQL: past INTEGER, a NUL in
    text) is the caller's data, answered 400, never a 503 that says the store is down."""
    versions, keys = SqlConfigVersionStore(engine), SqlKeyStore(engine)
    calls = [lambda: versions.get(2**70)]
    if engine.dialect.name == "postgresql":
        calls += [lambda: versions.get(2**40), lambda: keys.get("key_\x00")]
    for call in calls:
        with pytest.raises(StoreRejected) as caught:
            await call()
        exc = caught.value
        assert (exc.status, exc.error_type, exc.code) == (
            400,
            "invalid_request_error",
            "store_rejected",
        )


async def test_only_a_taken_version_number_is_a_version_conflict(engine: AsyncEngine) -> None:
    versions = SqlConfigVersionStore(engine)
    await versions.append([], "", "ann", version=1)
    with pytest.raises(VersionConflict):  # the primary key: a concurrent writer won
        await versions.append([], "", "bob", version=1)
    with pytest.raises(StoreRejected) as caught:  # NOT NULL: bad rows, not a race
        await versions.append([], "", None, version=2)  # type: ignore[arg-type]
    assert not isinstance(caught.value, VersionConflict)
    assert await versions.latest_version_number() == 1
