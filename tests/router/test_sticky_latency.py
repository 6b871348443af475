from __future__ import annotations

import asyncio

import pytest

from sluicegate.errors import StoreUnavailable
from sluicegate.router.latency import RECENT_SAMPLES, LatencyTracker
from sluicegate.router.sticky import FailOpenStickyStore, MemoryStickyStore, RedisStickyStore
from tests.router.conftest import FakeClock


async def test_memory_sticky_pins_expire(clock: FakeClock):
    store = MemoryStickyStore(clock=clock)
    await store.set("vm:s1", "a", 60)
    assert await store.get("vm:s1") == "a"
    clock.advance(61)
    assert await store.get("vm:s1") is None


async def test_memory_sticky_stays_bounded(clock: FakeClock):
    store = MemoryStickyStore(clock=clock, max_sessions=3)
    for n in range(5):
        await store.set(f"vm:s{n}", "a", 60)
    assert await store.get("vm:s0") is None and await store.get("vm:s4") == "a"


async def test_redis_sticky_pins_are_shared_and_expire(redis_prefix):
    client, prefix = redis_prefix
    one, two = RedisStickyStore(client, prefix=prefix), RedisStickyStore(client, prefix=prefix)
    await one.set("vm:s1", "b", 1)
    assert await two.get("vm:s1") == "b"
    assert await two.get("vm:s2") is None
    await asyncio.sleep(1.1)
    assert await two.get("vm:s1") is None


async def test_unreachable_sticky_store():
    down = RedisStickyStore("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(StoreUnavailable):
            await down.get("vm:s1")
        errors: list[StoreUnavailable] = []
        lenient = FailOpenStickyStore(down, on_error=errors.append)
        assert await lenient.get("vm:s1") is None
        await lenient.set("vm:s1", "a", 5)
        assert len(errors) == 2
    finally:
        await down.aclose()


def test_latency_percentiles_errors_and_time_per_token(clock: FakeClock):
    tracker = LatencyTracker(clock=clock, window_seconds=300, max_samples=50)
    for ms in range(1, 101):  # only the last 50 are kept
        tracker.record("k", float(ms), ok=True)
    tracker.record("k", 5000, ok=False)  # a failure counts as an error, not a latency
    tracker.record_generation("k", 100, 2000)
    tracker.record_generation("k", None, 2000)  # usage unknown: no sample
    stats = tracker.stats("k")
    assert stats.samples == 50 and stats.p50_ms == 75 and stats.p95_ms == 98
    assert stats.requests == 101 and stats.errors == 1
    assert stats.tpot_samples == 1 and stats.tpot_p50_ms == 20
    clock.advance(301)
    assert tracker.stats("k").samples == 0 and tracker.stats("k").requests == 0
    assert tracker.stats("unknown").error_rate is None


def test_routing_scores_on_the_newest_samples(clock: FakeClock):
    """A target that slows down is noticed after a few slow answers, however many fast
    ones the window still holds; the window's percentiles still show the whole picture."""
    tracker = LatencyTracker(clock=clock)
    for _ in range(200):
        tracker.record("k", 10.0, ok=True)
        tracker.record_generation("k", 10, 10.0)
    for _ in range(RECENT_SAMPLES // 2 + 1):
        tracker.record("k", 300.0, ok=True)
        tracker.record_generation("k", 10, 300.0)
    stats = tracker.stats("k")
    assert stats.p50_ms == 10.0 and stats.tpot_p50_ms == 1.0  # the window: still fast
    assert stats.recent_p50_ms == 300.0 and stats.recent_tpot_p50_ms == 30.0
