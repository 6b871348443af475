"""The CounterStore contract, run against the in-memory store and real Redis."""

from __future__ import annotations

import asyncio
import time

import pytest

from sluicegate.errors import StoreUnavailable
from sluicegate.policy.counters import Check, Level, Slide
from sluicegate.policy.counters.redis_store import RedisCounterStore
from tests.policy.helpers import FakeClock, leased


def check(
    key: str, limit: int, amount: int = 1, *, ttl: float = 60, slide: Slide | None = None
) -> Check:
    return Check(key=key, limit=limit, amount=amount, expires_at=time.time() + ttl, slide=slide)


async def test_admit_reserves_until_the_limit(store):
    results = [await store.admit([check("a", 3)], f"r{i}", 60) for i in range(4)]
    assert [r.ok for r in results] == [True, True, True, False]
    assert results[3].failed_index == 0
    assert results[3].levels == (Level(used=0, reserved=3),)
    assert await store.usage(["a", "missing"]) == {"a": Level(0, 3), "missing": Level(0, 0)}


async def test_admit_is_all_or_nothing(store):
    assert (await store.admit([check("a", 10, 5), check("b", 4, 5)], "r1", 60)).failed_index == 1
    assert await store.usage(["a", "b"]) == {"a": Level(0, 0), "b": Level(0, 0)}
    ok = await store.admit([check("a", 10, 5), check("b", 10, 5)], "r2", 60)
    assert ok.ok and ok.levels == (Level(0, 0), Level(0, 0))
    assert await store.usage(["a", "b"]) == {"a": Level(0, 5), "b": Level(0, 5)}


async def test_concurrent_admits_never_exceed_the_limit(store):
    checks = [check("hot", 50)]
    results = await asyncio.gather(*(store.admit(checks, f"r{i}", 60) for i in range(200)))
    assert sum(r.ok for r in results) == 50
    assert (await store.usage(["hot"]))["hot"] == Level(0, 50)


@pytest.mark.parametrize("make_store", ["redis"], indirect=True)
async def test_two_redis_replicas_share_the_limit(make_store):
    one, two = make_store(), make_store()
    checks = [check("shared", 50)]
    results = await asyncio.gather(
        *(replica.admit(checks, f"r{i}", 60) for i in range(100) for replica in (one, two))
    )
    assert sum(r.ok for r in results) == 50
    assert (await one.usage(["shared"]))["shared"] == Level(0, 50)


async def test_settle_replaces_the_reservation_by_the_actual(store):
    await store.admit([check("tok", 1000, 800)], "r1", 60)
    assert not (await store.admit([check("tok", 1000, 300)], "r2", 60)).ok
    await store.settle("r1", {"tok": 120})
    assert (await store.usage(["tok"]))["tok"] == Level(120, 0)
    assert (await store.admit([check("tok", 1000, 300)], "r3", 60)).ok
    await store.settle("r1", {"tok": 120})  # the hold is gone; used grows (callers settle once)
    assert (await store.usage(["tok"]))["tok"] == Level(240, 300)


async def test_settle_soon_is_applied_by_flush(store):
    """The request path settles without waiting; a flush makes it visible to readers."""
    for i in range(30):
        assert (await store.admit([check("tok", 10**6, 800), check("req", 100)], f"r{i}", 60)).ok
    for i in range(30):
        store.settle_soon(f"r{i}", {"tok": 10 + i})  # "req" not named: released
    await store.flush()
    # "tok" (a large limit) is leased by a Redis store: the lease is what stays reserved
    assert await store.usage(["tok", "req"]) == {
        "tok": Level(sum(range(10, 40)), leased(store, "tok"), leased(store, "tok")),
        "req": Level(0, 0),
    }
    await store.flush()  # nothing queued: returns at once


async def test_settle_releases_keys_without_an_actual(store):
    await store.admit([check("a", 10, 4), check("b", 10, 4)], "r1", 60)
    await store.settle("r1", {"a": 2})
    assert await store.usage(["a", "b"]) == {"a": Level(2, 0), "b": Level(0, 0)}


async def test_release_frees_everything(store):
    await store.admit([check("a", 2, 2), check("b", 10, 7)], "r1", 60)
    await store.release("r1")
    await store.release("r1")  # idempotent
    assert await store.usage(["a", "b"]) == {"a": Level(0, 0), "b": Level(0, 0)}
    assert (await store.admit([check("a", 2, 2)], "r2", 60)).ok


async def test_unsettled_reservations_expire(store):
    assert (await store.admit([check("leak", 1)], "crashed-replica", 0.3)).ok
    assert not (await store.admit([check("leak", 1)], "r2", 0.3)).ok
    await asyncio.sleep(0.45)
    assert (await store.usage(["leak"]))["leak"] == Level(0, 0)
    assert (await store.admit([check("leak", 1)], "r3", 60)).ok
    await store.settle("crashed-replica", {"leak": 1})  # late settle still counts the use
    assert (await store.usage(["leak"]))["leak"] == Level(1, 1)


async def test_fixed_counters_expire_after_their_window(store):
    await store.admit([check("short", 5, ttl=0.2)], "r1", 0.2)
    await store.settle("r1", {"short": 1})
    await asyncio.sleep(1.2)  # Redis TTLs are at least a second
    assert (await store.usage(["short"]))["short"] == Level(0, 0)


async def test_sliding_counter_forgets_old_buckets(make_store):
    clock = FakeClock(1_000_000.0)
    store = make_store(clock)
    slide = Slide(window_s=100, bucket_s=10)
    c = Check(key="roll", limit=10, amount=4, expires_at=clock.now + 200, slide=slide)
    await store.admit([c], "r1", 60)
    await store.settle("r1", {"roll": 4})
    clock.advance(50)
    await store.admit([c], "r2", 60)
    await store.settle("r2", {"roll": 4})
    assert not (await store.admit([c], "r3", 60)).ok  # 8 used + 4 > 10
    clock.advance(61)  # the first bucket [1_000_000, 1_000_010) slid out
    assert (await store.usage(["roll"]))["roll"] == Level(4, 0)
    assert (await store.admit([c], "r4", 60)).ok


def budget(key: str, limit: int, amount: int = 1, *, ttl: float = 60) -> Check:
    return Check(key=key, limit=limit, amount=amount, expires_at=time.time() + ttl, ledger=True)


async def test_seed_raises_the_ledger_part_and_never_counts_twice(store):
    cutoff = await store.cutoff("spend", time.time() + 60)
    assert float(cutoff) > 0
    assert await store.cutoff("spend", time.time() + 60) == cutoff  # asked again: the same
    assert await store.seed("spend", cutoff, 700, time.time() + 60) == 700
    assert await store.seed("spend", cutoff, 650, time.time() + 60) == 0  # a staler sum
    assert await store.seed("spend", cutoff, 750, time.time() + 60) == 50  # a row landed
    assert (await store.usage(["spend"]))["spend"] == Level(750, 0)
    assert not (await store.admit([budget("spend", 1000, 300)], "r1", 60)).ok
    assert await store.seed("spend", "12.5", 900, time.time() + 60) == -1  # not its cutoff


async def test_settlements_after_the_cutoff_add_to_the_ledger_part(store):
    """Traffic that recreated a counter before the rebuild reached it: its cutoff is its
    first admission, the ledger part covers what arrived before, settlements what after."""
    assert (await store.admit([budget("fresh", 1000, 10)], "r1", 60)).ok
    await store.settle("r1", {"fresh": 8})
    cutoff = await store.cutoff("fresh", time.time() + 60)
    assert await store.seed("fresh", cutoff, 500, time.time() + 60) == 500
    assert (await store.usage(["fresh"]))["fresh"] == Level(508, 0)


async def test_what_was_admitted_before_the_cutoff_is_left_to_the_ledger(store):
    """A reservation the store never saw (made before it lost its data) settles to
    nothing on a counter cut off after it; a charge (admitted with no reservation while
    the store was unreachable) counts only if admitted at or after the cutoff."""
    cutoff = await store.cutoff("b", time.time() + 60)
    await store.settle("lost-before", {"b": 40})
    store.charge_soon("outage-before", {"b": 30}, float(cutoff) - 5)
    store.charge_soon("outage-after", {"b": 20}, float(cutoff) + 0.001)
    await store.flush()
    assert (await store.usage(["b"]))["b"] == Level(20, 0)


async def test_each_request_counts_once_whatever_the_order(store):
    """A rebuild after a data loss cuts the counter off at its own time: a request that
    arrived before (in flight at the loss, or waiting for the rebuild) is the ledger's,
    one that arrived after is the store's, even when admitted and settled in between."""
    now = time.time()
    cutoff = await store.cutoff("k", now + 60)
    waited = await store.admit([budget("k", 10_000, 100)], "waited", 60, float(cutoff) - 0.5)
    fresh = await store.admit([budget("k", 10_000, 100)], "fresh", 60, float(cutoff) + 0.1)
    assert waited.ok and fresh.ok
    await store.seed("k", cutoff, 1_000, now + 60)  # the ledger, "waited" not landed yet
    await store.settle("waited", {"k": 70})
    await store.settle("fresh", {"k": 30})
    assert (await store.usage(["k"]))["k"] == Level(1_030, 0)
    await store.seed("k", cutoff, 1_070, now + 60)  # a later pass: its row has landed
    assert (await store.usage(["k"]))["k"] == Level(1_100, 0)


async def test_a_new_counter_cuts_off_at_the_earliest_arrival_until_seeded(store):
    """Requests racing into a new window arrive in any order: until a seed fixes the
    cutoff, the earliest arrival admitted sets it, so none of them is left uncounted."""
    now = time.time()
    assert (await store.admit([budget("w", 100, 10)], "late", 60, now)).ok
    assert (await store.admit([budget("w", 100, 10)], "early", 60, now - 0.2)).ok
    assert float(await store.cutoff("w", now + 60)) == pytest.approx(now - 0.2)
    await store.settle("late", {"w": 4})
    await store.settle("early", {"w": 5})
    assert (await store.usage(["w"]))["w"] == Level(9, 0)


async def test_sliding_counters_seed_per_bucket(make_store):
    clock = FakeClock(2_000_000.0)
    store = make_store(clock)
    slide = Slide(window_s=100, bucket_s=10)
    cutoff = await store.cutoff("r", clock.now + 200, slide)
    assert await store.seed("r", cutoff, {1_999_950: 5, 1_999_990: 7}, clock.now + 200, slide)
    assert await store.seed("r", cutoff, {1_999_990: 6}, clock.now + 200, slide) == 0
    assert (await store.usage(["r"]))["r"] == Level(12, 0)
    clock.advance(60)
    assert (await store.usage(["r"]))["r"] == Level(7, 0)


async def test_mark_once(store):
    assert await store.mark_once("alert:x", 0.2)
    assert not await store.mark_once("alert:x", 0.2)
    assert await store.mark_once("alert:y", 0.2)
    await asyncio.sleep(0.3)
    assert await store.mark_once("alert:x", 0.2)


async def test_unreachable_redis_raises_store_unavailable():
    store = RedisCounterStore("redis://127.0.0.1:1/0", "nowhere:", timeout_s=0.5)
    for call in (
        store.admit([check("a", 1)], "r1", 60),
        store.settle("r1", {"a": 1}),
        store.release("r1"),
        store.usage(["a"]),
        store.mark_once("m", 1),
    ):
        with pytest.raises(StoreUnavailable):
            await call
    await store.close()
