"""`ledger rebuild-rollups`: the rollups recomputed from the ledger equal those kept as
records landed, repair damaged or missing rows (all of them, or from a day on), stay exact
while a writer lands batches during the rebuild, and cover the configured keys."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, insert, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from sluicegate.analytics.coverage import key_coverage
from sluicegate.analytics.rebuild import RollupRebuild, analytics_in_force
from sluicegate.cli.main import app as cli
from sluicegate.config.registry import DocumentRegistry
from sluicegate.config.service import ConfigService
from sluicegate.config.version_store import SqlConfigVersionStore
from sluicegate.db.engine import create_engine_for
from sluicegate.db.migrate import alembic_config, upgrade_engine
from sluicegate.db.schema import (
    rollup_cuboids,
    rollup_metadata,
    rollup_sessions,
    rollup_tool_users,
    rollup_usage,
    rollup_users,
)
from sluicegate.db.writer_lock import holding_off_writers
from sluicegate.ledger.sql_store import SqlLedgerStore
from sluicegate.ledger.writer import LedgerWriter
from tests.analytics.reference import (
    Tables,
    assert_same_rollups,
    expected_rollups,
    stored_rollups,
)
from tests.analytics.team_traffic import HOUR, START, traffic

KEYS = ("customer_id",)
ANALYTICS = """
name: analytics
type: gateway-analytics-config
rollup_metadata_keys: [customer_id]
"""
DAY = 86400.0
WEEK = 7 * DAY


async def _configure(engine: AsyncEngine, text: str = ANALYTICS) -> None:
    service = ConfigService(SqlConfigVersionStore(engine), DocumentRegistry())
    await service.apply(text, applied_by="test")


async def _land(engine: AsyncEngine, count: int = 1200, **options: object) -> None:
    store = SqlLedgerStore(engine)
    store.set_rollup_keys(KEYS)
    records = traffic(count, **options)  # type: ignore[arg-type]
    for start in range(0, len(records), 150):
        await store.write_batch(records[start : start + 150])
    await store.close()


async def _tables(engine: AsyncEngine) -> Tables:
    async with engine.connect() as conn:
        return await stored_rollups(conn)


async def _expected(engine: AsyncEngine) -> Tables:
    async with engine.connect() as conn:
        return await expected_rollups(conn, KEYS)


async def _damage(engine: AsyncEngine) -> None:
    """Wrong figures, rows for hours and sessions the ledger does not have, rows lost."""
    async with engine.begin() as conn:
        for table in (rollup_usage, rollup_users, rollup_tool_users, rollup_metadata):
            await conn.execute(update(table).values(requests=table.c.requests + 7))
        await conn.execute(update(rollup_sessions).values(input_tokens=-1))
        await conn.execute(rollup_usage.delete().where(rollup_usage.c.team == "data"))
        await conn.execute(
            insert(rollup_sessions).values(
                session_id="ghost",
                first_ts=1.0,
                last_ts=2.0,
                user_id="",
                team="",
                project="UNTAGGED",
                workflow_tag="",
                client_tool="",
                requests=3,
                errors=0,
                input_tokens=0,
                output_tokens=0,
                cache_read_tokens=0,
                cache_write_tokens=0,
                reasoning_tokens=0,
                retry_tokens=0,
                wasted_input_tokens=0,
                rate_limit_hits=0,
                budget_hits=0,
                guardrail_blocks=0,
                sessions_killed=0,
                cost_usd=0.0,
            )  # fmt: skip
        )
        ghost = {c.name: 0 for c in rollup_users.columns} | {
            "id": "h0:ghost", "grain": "hour", "bucket": START - 50 * DAY, "user_id": "u0",
            "team": "", "project": "UNTAGGED", "workflow_tag": "", "client_tool": "",
            "cost_usd": 0.0, "requests": 5,
        }  # fmt: skip
        await conn.execute(insert(rollup_users).values(**ghost))
        await conn.execute(
            insert(rollup_users).values(**{**ghost, "id": "d0:ghost", "grain": "day"})
        )


async def test_a_rebuild_equals_the_rollups_kept_as_records_landed(engine: AsyncEngine) -> None:
    await _configure(engine)
    await _land(engine)
    incremental = await _tables(engine)
    assert_same_rollups(incremental, await _expected(engine))
    report = await RollupRebuild(engine, page_size=100, sessions_per_piece=7).run()
    assert report.rows == 1200 and report.sessions == 30 and report.metadata_keys == KEYS
    assert_same_rollups(await _tables(engine), incremental)


async def test_a_full_rebuild_repairs_every_row_and_drops_what_the_ledger_lacks(
    engine: AsyncEngine,
) -> None:
    await _configure(engine)
    await _land(engine)
    await _damage(engine)
    progress: list[tuple[str, int, int]] = []
    await RollupRebuild(engine, page_size=250, progress=lambda *p: progress.append(p)).run()
    assert_same_rollups(await _tables(engine), await _expected(engine))
    assert progress[0] == ("rows", 0, 1200) and progress[-1] == ("sessions", 30, 30)
    assert ("rows", 1200, 1200) in progress
    async with engine.connect() as conn:
        coverage = (await key_coverage(conn))["customer_id"]
    assert coverage.covered_since == 0.0 and coverage.covered_until is None


async def test_a_rebuild_since_a_day_leaves_earlier_buckets_alone(engine: AsyncEngine) -> None:
    await _configure(engine)
    await _land(engine, span_s=3 * DAY)  # three days of traffic
    await _damage(engine)
    damaged = await _tables(engine)
    since = START + DAY + 5 * HOUR  # snapped to the start of that day
    report = await RollupRebuild(engine, page_size=333).run(since)
    assert report.since == START + DAY
    repaired, expected = await _tables(engine), await _expected(engine)
    for name in ("usage", "cuboids", "users", "tool_users", "metadata"):
        for key, row in expected[name].items():
            if key[1] >= START + DAY and key[0] != "week":
                assert repaired[name][key]["requests"] == row["requests"], (name, key)
        for key, row in damaged[name].items():
            if key[1] < START + DAY and key[0] != "week":  # earlier buckets: as damaged
                assert repaired[name][key] == row
        # a week the rebuilt days fall in is the sum of its days, damaged ones included
        for key, row in repaired[name].items():
            if key[0] == "week":
                days = [
                    r["requests"]
                    for k, r in repaired[name].items()
                    if k[0] == "day" and k[2:] == key[2:] and key[1] <= k[1] < key[1] + WEEK
                ]
                assert row["requests"] == sum(days), (name, key)
    # sessions active since the day are recomputed whole; the ghost had no request since
    for key, row in expected["sessions"].items():
        if row["last_ts"] >= START + DAY:
            assert repaired["sessions"][key]["input_tokens"] == row["input_tokens"]
    assert ("ghost",) in repaired["sessions"]


async def test_a_rebuild_while_a_writer_lands_batches_stays_exact(engine: AsyncEngine) -> None:
    """Batches land throughout the rebuild, at recent and old times alike (a spool
    replaying): each is counted once, whichever piece it meets."""
    await _configure(engine)
    await _land(engine, 800)
    store = SqlLedgerStore(engine)
    store.set_rollup_keys(KEYS)
    writer = LedgerWriter(store, batch_size=25, flush_interval=0.001)
    await writer.start()
    live = traffic(1600, seed=23)  # the same 30 hours as the ledger already holds
    done = asyncio.Event()

    async def keep_writing() -> None:
        for i, record in enumerate(live):
            writer.record(record)
            if i % 25 == 0:
                await asyncio.sleep(0.002)
        await writer.flush()
        done.set()

    writing = asyncio.create_task(keep_writing())
    rebuild = RollupRebuild(engine, page_size=50, sessions_per_piece=3, lock_timeout_s=5)
    await rebuild.run()
    await writing
    await writer.close()
    await store.close()
    assert writer.status().written == 1600 and writer.status().dropped == 0
    assert_same_rollups(await _tables(engine), await _expected(engine))


async def test_writers_wait_for_a_rebuild_piece(engine: AsyncEngine) -> None:
    """The lock each piece holds: a batch started meanwhile lands only once it ends."""
    store = SqlLedgerStore(engine)
    async with holding_off_writers(engine, "test", lock_timeout_s=5) as conn:
        writing = asyncio.create_task(store.write_batch(traffic(10)))
        await asyncio.sleep(0.5)
        assert not writing.done()
        await conn.execute(select(1))
    await asyncio.wait_for(writing, 10)
    await store.close()
    assert (
        sum(r["requests"] for k, r in (await _tables(engine))["usage"].items() if k[0] == "day")
        == 10
    )


async def test_the_keys_in_force_come_from_the_latest_config(engine: AsyncEngine) -> None:
    assert (await analytics_in_force(engine))[1].rollup_metadata_keys == ()
    await _configure(engine)
    version, settings = await analytics_in_force(engine)
    assert version == 1 and settings.rollup_metadata_keys == KEYS


# --- the command --------------------------------------------------------------------------


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["ledger", "rebuild-rollups", *args])
    return result.exit_code, result.output


def test_the_command_rebuilds_a_sqlite_ledger_and_says_what_it_did(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/gw.db"

    async def prepare() -> None:
        engine = create_engine_for(url)
        await upgrade_engine(engine)
        await _configure(engine)
        await _land(engine, 600)
        await _damage(engine)
        await engine.dispose()

    asyncio.run(prepare())
    code, output = _run("--database-url", url)
    assert code == 0, output
    assert "rebuilt rollups (everything): 600 ledger rows, 30 sessions" in output
    assert "metadata keys: customer_id" in output

    async def check() -> None:
        engine = create_engine_for(url)
        try:
            assert_same_rollups(await _tables(engine), await _expected(engine))
        finally:
            await engine.dispose()

    asyncio.run(check())
    day = time.strftime("%Y-%m-%d", time.gmtime(START + DAY))
    code, output = _run("--database-url", url, "--since", day)
    assert code == 0 and f"from {day} (UTC)" in output, output


def test_the_command_refuses_what_it_cannot_rebuild(tmp_path: Path) -> None:
    code, output = _run("--database-url", f"sqlite:///{tmp_path}/empty.db")
    assert code == 1 and "has no sluicegate schema" in output
    code, output = _run("--database-url", "sqlite:///:memory:")
    assert code == 1 and "in-memory" in output
    code, output = _run("--database-url", f"sqlite:///{tmp_path}/x.db", "--since", "last tuesday")
    assert code == 2 and "not a day" in output
    code, output = _run("--database-url", "mysql://nowhere/db")
    assert code == 1 and "unsupported database" in output


@pytest.mark.postgres
def test_the_command_on_postgres() -> None:
    from tests.support import fresh_postgres_database

    with fresh_postgres_database() as url:

        async def prepare() -> None:
            engine = create_engine_for(url)
            await upgrade_engine(engine)
            await _land(engine, 300)
            await _damage(engine)
            await engine.dispose()

        asyncio.run(prepare())
        code, output = _run("--database-url", url)
        assert code == 0 and "300 ledger rows" in output, output


async def test_migration_0013_derives_cuboid_and_week_rows_from_the_stored_rollups(
    engine: AsyncEngine,
) -> None:
    """A database upgraded to 0013 answers from its new rows at once: the cuboid rows
    (weeks included) it derives from the rollups already stored are those the writer
    keeps."""
    await _configure(engine)
    await _land(engine, span_s=10 * DAY)  # two weeks at least
    kept = await _tables(engine)
    assert any(key[0] == "week" for key in kept["cuboids"])
    async with engine.begin() as conn:
        await conn.run_sync(_downgrade_to, "0012")
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    assert "rollup_cuboids" not in tables and "rollup_usage" in tables
    await upgrade_engine(engine)
    assert_same_rollups(await _tables(engine), kept)


async def test_migration_0015_derives_tool_user_rows_from_the_stored_rollups(
    engine: AsyncEngine,
) -> None:
    """A database upgraded to 0015 counts users from its new rows at once: the hour, day
    and week rows it derives from rollup_users (ids included, so the writer's upserts
    add to them) are those the writer keeps."""
    await _land(engine, span_s=10 * DAY)
    kept = await _tables(engine)
    assert {key[0] for key in kept["tool_users"]} == {"hour", "day", "week"}
    async with engine.begin() as conn:
        await conn.run_sync(_downgrade_to, "0014")
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        ids = set((await conn.execute(select(rollup_users.c.id))).scalars())
    assert "rollup_tool_users" not in tables and ids
    await upgrade_engine(engine)
    derived = await _tables(engine)
    assert_same_rollups(derived, kept)
    await _land(engine, 300, seed=29)  # the same hours again: upserts add to derived rows
    async with engine.connect() as conn:
        stored = await stored_rollups(conn)
        assert_same_rollups(stored, await expected_rollups(conn, KEYS))


async def test_migration_0020_derives_the_latency_cuboids_from_the_control_cuboid(
    engine: AsyncEngine,
) -> None:
    """A database upgraded to 0020 answers the latency panel from the `status` and `model`
    cuboids at once: their hour, day and week rows, summed from the `control` cuboid's,
    are those the writer keeps (ids included, so later batches add to them rather than
    beside them)."""
    await _land(engine, span_s=10 * DAY)
    kept = await _tables(engine)
    for name in ("status", "model"):
        assert {key[0] for key in kept["cuboids"] if key[2] == name} == {"hour", "day", "week"}
    async with engine.begin() as conn:
        await conn.run_sync(_downgrade_to, "0019")
    new = select(rollup_cuboids.c.id).where(rollup_cuboids.c.cuboid.in_(["status", "model"]))
    async with engine.connect() as conn:
        assert not (await conn.execute(new)).first()
    await upgrade_engine(engine)
    assert_same_rollups(await _tables(engine), kept)
    await _land(engine, 300, seed=29)  # the same hours again: upserts add to derived rows
    async with engine.connect() as conn:
        stored = await stored_rollups(conn)
        assert_same_rollups(stored, await expected_rollups(conn, KEYS))


async def test_migration_0023_derives_the_premium_cuboid_from_the_stored_rollups(
    engine: AsyncEngine,
) -> None:
    """A database upgraded to 0023 reviews premium models from the new cuboid at once: its
    hour, day and week rows (ids included, so the writer's upserts add to them) are those
    the writer keeps."""
    await _land(engine, span_s=10 * DAY)
    kept = await _tables(engine)
    premium = {key for key in kept["cuboids"] if key[2] == "premium"}
    assert {key[0] for key in premium} == {"hour", "day", "week"}
    async with engine.begin() as conn:
        await conn.run_sync(_downgrade_to, "0022")
    async with engine.connect() as conn:
        left = (await conn.execute(select(rollup_cuboids.c.cuboid).distinct())).scalars()
        assert "premium" not in set(left)
    await upgrade_engine(engine)
    assert_same_rollups(await _tables(engine), kept)
    await _land(engine, 300, seed=29)  # the same hours again: upserts add to derived rows
    async with engine.connect() as conn:
        stored = await stored_rollups(conn)
        assert_same_rollups(stored, await expected_rollups(conn, KEYS))


def _downgrade_to(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)
