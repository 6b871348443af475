"""The breaker contract, run against the memory store and against real Redis."""

from __future__ import annotations

import asyncio

import pytest

from sluicegate.errors import StoreUnavailable
from sluicegate.router.breaker import FailOpenBreakerStore, RedisBreakerStore
from sluicegate.router.routes import BreakerPolicy
from tests.router.conftest import Breakers

POLICY = BreakerPolicy(failure_threshold=3, window_seconds=60, cooldown_seconds=0.2)


async def state(breakers: Breakers, key: str = "vm:a") -> str:
    return (await breakers.make().states([key]))[0].state


async def fail(breakers: Breakers, times: int, key: str = "vm:a", policy: BreakerPolicy = POLICY):
    for _ in range(times):
        await breakers.make().record_failure(key, policy, probe=False)


async def test_opens_after_the_threshold_within_the_window(breakers: Breakers):
    await fail(breakers, 2)
    assert await state(breakers) == "closed"
    assert await breakers.make().admit("vm:a", POLICY) == "closed"
    await fail(breakers, 1)
    (opened,) = await breakers.make().states(["vm:a"])
    assert opened.state == "open" and opened.open_until is not None
    assert await breakers.make().admit("vm:a", POLICY) == "denied"
    assert await state(breakers, "vm:other") == "closed"


async def test_failures_outside_the_window_do_not_add_up(breakers: Breakers):
    short = BreakerPolicy(failure_threshold=3, window_seconds=0.2, cooldown_seconds=5)
    await fail(breakers, 2, policy=short)
    await breakers.advance(0.3)
    await fail(breakers, 2, policy=short)
    assert await state(breakers) == "closed"


async def test_half_open_admits_one_probe_and_success_closes(breakers: Breakers):
    await fail(breakers, 3)
    await breakers.advance(0.3)
    assert await state(breakers) == "half_open"
    stores = [breakers.make() for _ in range(10)]
    admissions = await asyncio.gather(*(store.admit("vm:a", POLICY) for store in stores))
    assert sorted(admissions) == ["denied"] * 9 + ["probe"]
    await fail(breakers, 5)  # late failures of calls already in flight change nothing
    assert await state(breakers) == "half_open"
    await breakers.make().record_success("vm:a", POLICY, probe=True)
    assert await state(breakers) == "closed"
    await fail(breakers, 2)
    assert await state(breakers) == "closed"  # counting starts again


async def test_a_failed_probe_reopens_for_a_full_cooldown(breakers: Breakers):
    await fail(breakers, 3)
    await breakers.advance(0.3)
    assert await breakers.make().admit("vm:a", POLICY) == "probe"
    reopened = await breakers.make().record_failure("vm:a", POLICY, probe=True)
    assert reopened.state == "open"
    assert await breakers.make().admit("vm:a", POLICY) == "denied"
    await breakers.advance(0.3)
    assert await breakers.make().admit("vm:a", POLICY) == "probe"


async def test_two_redis_stores_share_state(redis_prefix):
    client, prefix = redis_prefix
    one = RedisBreakerStore(client, prefix=prefix)
    two = RedisBreakerStore("redis://127.0.0.1:6379/0", prefix=prefix)
    try:
        for _ in range(3):
            await one.record_failure("vm:a", POLICY, probe=False)
        assert [s.state for s in await two.states(["vm:a", "vm:b"])] == ["open", "closed"]
        await asyncio.sleep(0.3)
        assert await two.admit("vm:a", POLICY) == "probe"
        assert await one.admit("vm:a", POLICY) == "denied"
        await two.record_success("vm:a", POLICY, probe=True)
        assert (await one.states(["vm:a"]))[0].state == "closed"
    finally:
        await two.aclose()


async def test_an_unreachable_redis_is_store_unavailable_and_fail_open_carries_on():
    down = RedisBreakerStore("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(StoreUnavailable):
            await down.states(["vm:a"])
        with pytest.raises(StoreUnavailable):
            await down.record_failure("vm:a", POLICY, probe=False)
        errors: list[StoreUnavailable] = []
        lenient = FailOpenBreakerStore(down, on_error=errors.append)
        assert [s.state for s in await lenient.states(["vm:a"])] == ["closed"]
        assert await lenient.admit("vm:a", POLICY) == "closed"
        assert (await lenient.record_failure("vm:a", POLICY, probe=True)).state == "closed"
        assert len(errors) == 3
    finally:
        await down.aclose()
