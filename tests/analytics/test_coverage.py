"""Coverage of the analytics metadata keys: since when each key's rollups are complete,
as several writers (replicas) start, add and remove keys, and as a rebuild widens it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics.coverage import (
    MAX_PENDING,
    KeyCoverage,
    RollupKeys,
    key_coverage,
    record_rebuild,
    rollups_cover,
)


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


async def _coverage(engine: AsyncEngine) -> dict[str, tuple[float, float | None]]:
    async with engine.connect() as conn:
        return {
            k: (c.covered_since, c.covered_until) for k, c in (await key_coverage(conn)).items()
        }


async def test_a_key_added_at_run_time_is_covered_from_the_last_replica_to_add_it(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    a, b = RollupKeys(clock), RollupKeys(clock)
    a.set(("customer",))  # replica A starts with the key: it wrote nothing before
    assert await a.write_changes(engine)
    assert await _coverage(engine) == {"customer": (1000.0, None)}
    clock.now = 1500.0
    b.set(())  # replica B starts later without it (an older config, say)...
    await b.write_changes(engine)
    assert await _coverage(engine) == {"customer": (1000.0, 1500.0)}  # ...closes it
    clock.now = 2000.0
    b.set(("customer", "feature"))  # B's config change adds both
    clock.now = 2000.5
    a.set(("customer", "feature"))  # A's adds feature half a second later
    await b.write_changes(engine)
    await a.write_changes(engine)
    assert await _coverage(engine) == {"customer": (2000.0, None), "feature": (2000.5, None)}
    async with engine.connect() as conn:
        assert await rollups_cover(conn, "feature", 2001.0, 3000.0)
        assert not await rollups_cover(conn, "feature", 2000.0, 3000.0)
        assert not await rollups_cover(conn, "nobody", 2001.0, 3000.0)


async def test_a_key_taken_out_ends_when_the_first_replica_stops_it(engine: AsyncEngine) -> None:
    clock = Clock()
    a, b = RollupKeys(clock), RollupKeys(clock)
    a.set(("customer",))
    b.set(("customer",))
    clock.now = 3000.0
    a.set(())
    clock.now = 3000.4
    b.set(())
    for keys in (a, b):
        await keys.write_changes(engine)
    assert await _coverage(engine) == {"customer": (1000.0, 3000.0)}
    assert KeyCoverage("customer", 1000.0, 3000.0).covers(1000.0, 3000.0)
    assert not KeyCoverage("customer", 1000.0, 3000.0).covers(1000.0, 3000.1)
    clock.now = 4000.0
    a.set(("customer",))  # added again: it starts over (the gap has no rows)
    await a.write_changes(engine)
    assert await _coverage(engine) == {"customer": (4000.0, None)}


async def test_a_restarted_replica_keeps_the_coverage_of_its_keys(engine: AsyncEngine) -> None:
    clock = Clock()
    first = RollupKeys(clock)
    first.set(("customer",))
    await first.write_changes(engine)
    clock.now = 9000.0
    restarted = RollupKeys(clock)  # the same keys from its first config: nothing missed
    restarted.set(("customer",))
    restarted.set(("customer",))  # told again: no change
    await restarted.write_changes(engine)
    assert await _coverage(engine) == {"customer": (1000.0, None)}


async def test_changes_wait_for_the_database_and_collapse_past_a_bound(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    keys = RollupKeys(clock)
    for i in range(MAX_PENDING + 6):  # the database unreachable through many changes
        clock.now = 1000.0 + i
        keys.set(("customer",) if i % 2 else ())
        assert len(keys._pending) <= MAX_PENDING
    await keys.write_changes(engine)
    assert not keys.pending
    # the last change (an add) holds: coverage from then on, never more
    assert await _coverage(engine) == {"customer": (1000.0 + MAX_PENDING + 5, None)}


async def test_a_rebuild_covers_its_keys_from_its_start_and_ends_the_others(
    engine: AsyncEngine,
) -> None:
    clock = Clock(5000.0)
    keys = RollupKeys(clock)
    keys.set(("customer", "old"))
    await keys.write_changes(engine)
    clock.now = 6000.0
    keys.set(("customer", "late"))  # "late" added at run time, during the rebuild below
    await keys.write_changes(engine)
    async with engine.begin() as conn:
        await record_rebuild(conn, ("customer", "offline", "late"), since=100.0, started=5500.0)
    assert await _coverage(engine) == {
        "customer": (100.0, None),  # rolled up through the whole rebuild
        "offline": (100.0, None),  # in the config, no writer ran yet
        "late": (6000.0, None),  # a writer started it during the rebuild: unchanged
        # "old" is gone: the rebuild emptied its rows from 100 on
    }


async def test_a_rebuild_under_a_config_change_only_ends_the_others(engine: AsyncEngine) -> None:
    clock = Clock(5000.0)
    keys = RollupKeys(clock)
    keys.set(("customer", "new"))
    await keys.write_changes(engine)
    async with engine.begin() as conn:
        await record_rebuild(conn, ("customer",), since=4000.0, started=4500.0, widen=False)
    assert await _coverage(engine) == {"customer": (5000.0, None)}
