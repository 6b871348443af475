"""`rollup_session_groups` (analytics/session_groups.py) on SQLite and PostgreSQL: the
outcome join answers from it exactly as from the sessions themselves (and the raw rows),
when the ledger lands in many batches out of order with outcomes before and after their
sessions, after `rebuild-rollups`, and after migration 0016 fills it."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import pytest
from alembic import command
from sqlalchemy import Connection, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics import sessions as sessions_module
from sluicegate.analytics.rebuild import RollupRebuild
from sluicegate.analytics.session_groups import refill
from sluicegate.analytics.window import DAY, HOUR, iso
from sluicegate.db.migrate import alembic_config, upgrade_engine
from sluicegate.db.schema import (
    SESSION_GROUP_COUNTS,
    SESSION_GROUP_DIMENSIONS,
    SESSION_GROUP_SUMS,
    rollup_session_groups,
)
from sluicegate.ledger.sql_store import SqlLedgerStore
from sluicegate.model.record import LedgerRecord
from sluicegate.outcomes.store import SqlOutcomeStore
from sluicegate.server.roles import AdminPrincipal, Role
from tests.analytics.panel_support import ask, context
from tests.analytics.session_traffic import Sessions, land_sessions, session_traffic

DAY0 = 1_780_000_000.0 - 1_780_000_000.0 % DAY
WINDOW = (("since", iso(DAY0 - 3 * DAY + 7 * HOUR)), ("until", iso(DAY0 + 2 * DAY + 5 * HOUR)))
LEAD = AdminPrincipal("lead", Role.TEAM_LEAD, teams=("search", "infra"))
QUESTIONS: tuple[tuple[tuple[str, str], ...], ...] = (
    WINDOW,
    (*WINDOW, ("group_by", "team,workflow_tag"), ("limit", "4")),
    (*WINDOW, ("group_by", "project,client_tool")),
    (*WINDOW, ("project", "UNTAGGED"), ("team", "search")),
    (("since", iso(DAY0 - 2 * DAY)), ("until", iso(DAY0 + DAY))),  # whole days only
    (("since", iso(DAY0 + 3 * HOUR)), ("until", iso(DAY0 + 9 * HOUR))),  # hours only
)


def _traffic() -> Sessions:
    """Sessions over a week, some with identity values missing from their first requests
    (the first non-empty value comes from a later one) and long enough to move buckets."""
    traffic = session_traffic(220, start=DAY0 - 4 * DAY, span_s=6 * DAY, seed=11, prefix="g")
    rng = random.Random(7)
    blanked: list[LedgerRecord] = []
    for record in traffic.records:
        if record.request_id.endswith("-0") and rng.random() < 0.3:
            record = msgspec.structs.replace(record, workflow_tag=None, team=None)
        blanked.append(record)
    traffic.records = blanked
    return traffic


async def _answers(engine: AsyncEngine, *, groups: bool) -> list[dict[str, Any]]:
    """Every question's outcome answer, from the group rows or from the sessions."""
    found = []
    for question in QUESTIONS:
        for principal in ({}, {"principal": LEAD}):
            with pytest.MonkeyPatch.context() as patch:
                if not groups:
                    patch.setattr(sessions_module, "covers", lambda selection: False)
                answer = await ask(context(engine), "outcomes", *question, **principal)
            expected = "rollup_session_groups" if groups else "rollup_sessions"
            assert answer.source == expected
            found.append(msgspec.to_builtins(answer) | {"source": None})
    return found


def _assert_same(got: Any, expected: Any, where: str = "") -> None:
    """Equal, floats to 1e-9 (sums of the same costs added in another order)."""
    if isinstance(expected, dict):
        assert got.keys() == expected.keys(), where
        for key in expected:
            _assert_same(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(got) == len(expected), where
        for i, (a, b) in enumerate(zip(got, expected, strict=True)):
            _assert_same(a, b, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-9), where
    else:
        assert got == expected, where


async def _group_rows(engine: AsyncEngine) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """The stored group rows that hold a session (emptied rows are zeros: checked)."""
    key = ["grain", "bucket", *SESSION_GROUP_DIMENSIONS]
    async with engine.connect() as conn:
        rows = (await conn.execute(select(rollup_session_groups))).mappings().all()
    kept = {}
    for row in rows:
        if row["sessions"] == 0:
            assert all(row[m] == 0 for m in SESSION_GROUP_COUNTS), dict(row)
            assert all(abs(row[m]) < 1e-9 for m in SESSION_GROUP_SUMS), dict(row)
            continue
        kept[tuple(row[k] for k in key)] = tuple(
            row[m] for m in (*SESSION_GROUP_COUNTS, *SESSION_GROUP_SUMS)
        )
    return kept


def _assert_same_rows(got: dict[Any, Any], expected: dict[Any, Any]) -> None:
    assert got.keys() == expected.keys()
    for key, values in expected.items():
        _assert_same(list(got[key]), list(values), str(key))


async def _refilled(engine: AsyncEngine) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    async with engine.begin() as conn:
        await refill(conn)
    return await _group_rows(engine)


async def test_answers_from_the_groups_equal_those_from_the_sessions(
    engine: AsyncEngine,
) -> None:
    await land_sessions(engine, _traffic())
    from_groups = await _answers(engine, groups=True)
    assert any(a["totals"]["sessions"] > 50 for a in from_groups)
    assert any(a["totals"]["outcomes"] > 0 for a in from_groups)
    _assert_same(from_groups, await _answers(engine, groups=False))


async def test_kept_exact_as_batches_and_outcomes_land_in_any_order(engine: AsyncEngine) -> None:
    """Batches of 37 records in shuffled order (sessions span batches, move to a later
    bucket, gain their identity late); a third of the outcomes recorded before any
    request of their session landed, the rest between batches."""
    traffic = _traffic()
    rng = random.Random(3)
    records = list(traffic.records)
    rng.shuffle(records)
    outcomes = list(traffic.outcomes)
    rng.shuffle(outcomes)
    early, late = outcomes[: len(outcomes) // 3], outcomes[len(outcomes) // 3 :]
    outcome_store = SqlOutcomeStore(engine)
    for outcome in early:
        await outcome_store.record(outcome)
    store = SqlLedgerStore(engine)
    try:
        for start in range(0, len(records), 37):
            await store.write_batch(records[start : start + 37])
            now = rng.randint(0, 3)
            for outcome in late[:now]:
                await outcome_store.record(outcome)
            late = late[now:]
        await store.write_batch(records[:50])  # a replayed batch adds nothing
    finally:
        await store.close()
    for outcome in [*late, *outcomes[:10]]:  # the rest, and ten again (stored once)
        await outcome_store.record(outcome)
    kept = await _group_rows(engine)
    assert kept  # the groups were kept by the writes alone
    _assert_same(await _answers(engine, groups=True), await _answers(engine, groups=False))
    _assert_same_rows(kept, await _refilled(engine))


async def test_rebuild_rollups_refills_the_groups(engine: AsyncEngine) -> None:
    await land_sessions(engine, _traffic())
    kept = await _group_rows(engine)
    async with engine.begin() as conn:  # damaged: a row gone, another wrong
        first = sorted(kept)[0]
        g = rollup_session_groups.c
        await conn.execute(rollup_session_groups.delete().where(g.bucket == first[1]))
        await conn.execute(rollup_session_groups.update().values(sessions=g.sessions + 5))
    assert await _group_rows(engine) != kept
    await RollupRebuild(engine).run()
    _assert_same_rows(await _group_rows(engine), kept)
    _assert_same(await _answers(engine, groups=True), await _answers(engine, groups=False))


async def test_migration_0016_fills_the_groups_from_the_sessions(engine: AsyncEngine) -> None:
    await land_sessions(engine, _traffic())
    kept = await _group_rows(engine)
    answers = await _answers(engine, groups=True)
    async with engine.begin() as conn:
        await conn.run_sync(_downgrade_to, "0014")
    await upgrade_engine(engine)
    _assert_same_rows(await _group_rows(engine), kept)
    _assert_same(await _answers(engine, groups=True), answers)


def _downgrade_to(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)
