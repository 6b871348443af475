"""Replicas applying at the same time over one real database: no change is lost.

Each replica is a ConfigService with its own engine (its own connection pool) on the same
migrated SQLite file or PostgreSQL database, as two gateway processes would be. Their
in-process locks do not see each other, so only the store's version check keeps a change
from being silently overwritten.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from sqlalchemy import insert, text

from sluicegate.config.problems import (
    ConfigConflict,
    ConfigNotFound,
    ConfigValidationError,
    Problem,
)
from sluicegate.config.registry import DocumentRegistry
from sluicegate.config.service import ApplyResult, ConfigService
from sluicegate.config.version_store import SqlConfigVersionStore
from sluicegate.db.engine import create_engine_for
from sluicegate.db.migrate import upgrade
from sluicegate.db.schema import config_versions
from tests.config.documents import BOTH, BUDGET, RATE_LIMITS, TEST_TYPES
from tests.config.racing import RivalWritesFirst
from tests.support import fresh_postgres_database

ROUNDS = 6


def budget(name: str, ceiling: int) -> str:
    return f"name: {name}\ntype: test-budget\nceiling_usd: {ceiling}\n"


class Replicas:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engines = [create_engine_for(url), create_engine_for(url)]
        registry = DocumentRegistry(TEST_TYPES)
        self.a, self.b = (ConfigService(SqlConfigVersionStore(e), registry) for e in self.engines)

    async def close(self) -> None:
        for engine in self.engines:
            await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Replicas]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path}/shared.db"
        else:
            url = stack.enter_context(fresh_postgres_database())
        await upgrade(url)
        replicas = Replicas(url)
        try:
            yield replicas
        finally:
            await replicas.close()


async def assert_applied_as_reported(
    service: ConfigService, result: ApplyResult, name: str, ceiling: int
) -> None:
    """The version the caller was told about exists, is based on the version before it,
    holds the caller's document, and its diff is the caller's change alone."""
    assert result.applied and result.previous_version == result.version - 1
    written = await service.get(result.version)
    assert {"name": name, "type": "test-budget", "ceiling_usd": ceiling} in written.documents
    assert [(d.name, d.action) for d in result.documents if d.action != "unchanged"] == [
        (name, "created")
    ]
    assert [(c.type, c.name) for c in result.changes] == [("test-budget", name)]


async def test_concurrent_applies_on_two_replicas_lose_nothing(
    replicas: Replicas, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sluicegate.config.service")
    a, b = replicas.a, replicas.b
    expected: dict[str, int] = {}
    reported: list[int] = []
    for round_ in range(ROUNDS):
        names = (f"a-{round_}", f"b-{round_}")
        results = await asyncio.gather(
            a.apply(budget(names[0], round_ + 1), applied_by="replica-a"),
            b.apply(budget(names[1], round_ + 100), applied_by="replica-b"),
            a.apply(budget(f"{names[0]}-2", round_ + 1), applied_by="replica-a"),
            b.apply(budget(f"{names[1]}-2", round_ + 100), applied_by="replica-b"),
        )
        for result, (name, ceiling) in zip(
            results,
            [
                (names[0], round_ + 1),
                (names[1], round_ + 100),
                (f"{names[0]}-2", round_ + 1),
                (f"{names[1]}-2", round_ + 100),
            ],
        ):
            await assert_applied_as_reported(a, result, name, ceiling)
            expected[name] = ceiling
            reported.append(result.version)

    assert sorted(reported) == list(range(1, 4 * ROUNDS + 1))  # distinct, none skipped
    for service in (a, b):
        latest = await service.current()
        assert latest.version == 4 * ROUNDS
        assert {d["name"]: d["ceiling_usd"] for d in latest.documents} == expected
    history = await a.history(100)
    assert [v.version for v in history] == list(range(4 * ROUNDS, 0, -1))
    # the replicas did race: some changes were rebased onto the other replica's version
    assert any("written concurrently" in r.getMessage() for r in caplog.records)


async def test_concurrent_apply_delete_and_rollback_rebase_onto_the_live_set(
    replicas: Replicas,
) -> None:
    a, b = replicas.a, replicas.b
    await a.apply(BOTH, applied_by="seed")  # v1: team-limits, eng-budget
    for round_ in range(ROUNDS):
        created = f"extra-{round_}"
        removed, added = await asyncio.gather(
            a.delete("test-budget", "eng-budget", "replica-a"),
            b.apply(budget(created, round_ + 1), applied_by="replica-b"),
        )
        assert removed.applied and added.applied
        latest = await b.current()
        names = {d["name"] for d in latest.documents}
        assert created in names and "eng-budget" not in names
        assert "eng-budget" not in {d["name"] for d in (await a.get(removed.version)).documents}
        assert created in {d["name"] for d in (await b.get(added.version)).documents}

        # put eng-budget back (from v1) while the other replica adds another document
        restored, again = await asyncio.gather(
            a.rollback(1, "replica-a"),
            b.apply(budget(f"{created}-again", 7), applied_by="replica-b"),
        )
        assert restored.applied and again.applied
        names = {d["name"] for d in (await a.current()).documents}
        if restored.version > again.version:  # the rollback went last: v1's set exactly
            assert names == {"team-limits", "eng-budget"}
        else:  # the apply went last, onto the restored set
            assert names == {"team-limits", "eng-budget", f"{created}-again"}
        # start the next round from v1's set again
        await a.rollback(1, "replica-a")


async def test_a_database_numbered_by_its_sequence_keeps_working(replicas: Replicas) -> None:
    """Rows written before versions were explicit (numbered by SERIAL / AUTOINCREMENT)
    are continued from, and applies keep numbering after them."""
    async with replicas.engines[0].begin() as conn:
        for n in range(3):
            await conn.execute(
                insert(config_versions).values(
                    applied_at=1.0, applied_by="old", comment=None, documents=[], source=f"# {n}"
                )
            )
    result = await replicas.a.apply(budget("after-upgrade", 1), applied_by="new")
    assert (result.version, result.previous_version) == (4, 3)
    results = await asyncio.gather(
        replicas.a.apply(budget("x", 1), applied_by="a"),
        replicas.b.apply(budget("y", 1), applied_by="b"),
    )
    assert sorted(r.version for r in results) == [5, 6]
    names = {d["name"] for d in (await replicas.b.current()).documents}
    assert names == {"after-upgrade", "x", "y"}
    async with replicas.engines[0].connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM config_versions"))).scalar_one()
    assert count == 6


# --- exact interleavings, forced with a rival writer (see tests/config/racing.py) ---------
HOURLY = RATE_LIMITS.replace("window: 1m", "window: 1h")


async def test_a_change_that_loses_the_race_is_rebased_and_reports_what_it_wrote(
    sqlite_store, registry
) -> None:
    await ConfigService(sqlite_store, registry).apply(BOTH, applied_by="alice")  # v1
    racing = RivalWritesFirst(sqlite_store, times=2)  # the rival writes v2 and v3 first
    result = await ConfigService(racing, registry).apply(HOURLY, applied_by="bob")
    assert racing.rival_versions == [2, 3]
    assert (result.version, result.previous_version, result.applied) == (4, 3, True)
    assert result.message == "applied version 4: 1 changed"
    # the diff is against v3, the version it was rebased onto: the rival's budgets are
    # not part of this change
    assert result.diff.startswith("--- test-rate-limit/team-limits (v3)\n")
    assert [(c.type, c.name) for c in result.changes] == [("test-rate-limit", "team-limits")]
    latest = await sqlite_store.latest()
    assert latest.version == 4 and latest.applied_by == "bob"
    assert {d["name"] for d in latest.documents} == {
        "team-limits",
        "eng-budget",
        "rival-2",
        "rival-3",
    }
    assert (
        next(d for d in latest.documents if d["name"] == "team-limits")["rules"][0]["limit"][
            "window"
        ]
        == "1h"
    )


async def test_a_rebase_onto_the_same_change_applies_nothing(sqlite_store, registry) -> None:
    await ConfigService(sqlite_store, registry).apply(BOTH, applied_by="alice")
    same = {"name": "eng-budget", "type": "test-budget", "ceiling_usd": 50}
    racing = RivalWritesFirst(sqlite_store, times=1, rival_document=lambda v: same)
    result = await ConfigService(racing, registry).apply(
        BUDGET.replace("500", "50"), applied_by="bob"
    )
    assert (result.applied, result.changed, result.version) == (False, False, 2)
    assert result.message == "no changes; version 2 stays live"
    assert await sqlite_store.latest_version_number() == 2


async def test_a_rebased_delete_of_a_document_deleted_meanwhile_is_not_found(
    sqlite_store, registry
) -> None:
    await ConfigService(sqlite_store, registry).apply(BOTH, applied_by="alice")

    class RivalDeletes(RivalWritesFirst):
        async def _rival_append(self, version: int) -> None:
            latest = await self.inner.latest()
            kept = [d for d in latest.documents if d["name"] != "eng-budget"]
            await self.inner.append(kept, "# rival delete", "rival", None, version=version)
            self.rival_versions.append(version)

    racing = RivalDeletes(sqlite_store, times=1)
    with pytest.raises(ConfigNotFound, match="in version 2"):
        await ConfigService(racing, registry).delete("test-budget", "eng-budget", "bob")
    assert await sqlite_store.latest_version_number() == 2


async def test_a_rebased_change_is_validated_against_the_new_set(sqlite_store, registry) -> None:
    def one_budget_at_most(documents):
        budgets = [d for d in documents if d.type == "test-budget"]
        return [Problem(d.name, d.type, "", "only one budget allowed") for d in budgets[1:]]

    await ConfigService(sqlite_store, registry).apply(RATE_LIMITS, applied_by="alice")
    racing = RivalWritesFirst(sqlite_store, times=1)  # the rival adds budget rival-2
    service = ConfigService(racing, registry, checks=[one_budget_at_most])
    with pytest.raises(ConfigValidationError, match="only one budget allowed"):
        await service.apply(BUDGET, applied_by="bob")
    latest = await sqlite_store.latest()
    assert (latest.version, latest.applied_by) == (2, "rival")


async def test_a_change_that_keeps_losing_gives_up_with_a_conflict(sqlite_store, registry) -> None:
    racing = RivalWritesFirst(sqlite_store)
    service = ConfigService(racing, registry, max_attempts=3)
    with pytest.raises(ConfigConflict) as caught:
        await service.apply(BOTH, applied_by="bob")
    assert type(caught.value) is ConfigConflict  # not the store's VersionConflict
    assert caught.value.status == 409 and caught.value.code == "config_conflict"
    assert caught.value.message.startswith("config changed concurrently; retry")
    assert racing.rival_versions == [1, 2, 3]
    assert [v.applied_by for v in await sqlite_store.history()] == ["rival"] * 3
