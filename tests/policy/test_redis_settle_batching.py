"""Coalesced settlements in RedisCounterStore: many settles, few script calls. Every store
here is built with `lease_share=0` (no capacity leases), so every settlement is a Redis
call (leases: test_redis_leases.py)."""

from __future__ import annotations

import asyncio
import time

import pytest

from sluicegate.errors import StoreUnavailable
from sluicegate.policy.counters import Check, Level
from sluicegate.policy.counters.redis_store import RedisCounterStore
from tests.policy.helpers import redis_keys

pytestmark = pytest.mark.parametrize("make_store", ["redis"], indirect=True)

N = 200


def check(key: str, amount: int) -> Check:
    return Check(key=key, limit=10**12, amount=amount, expires_at=time.time() + 60)


async def admit_many(store, n: int = N) -> None:
    for i in range(n):
        assert (await store.admit([check("req", 1), check("tok", 100)], f"r{i}", 60)).ok


async def reservations_left(store: RedisCounterStore) -> list[str]:
    return await redis_keys(store, "r")


async def test_concurrent_settles_share_script_calls(make_store):
    store = make_store(lease_share=0)
    await admit_many(store)
    before = store.settle_calls
    # half name every key, half only "tok" (their "req" hold is released in the same call)
    await asyncio.gather(
        *(store.settle(f"r{i}", {"req": 1, "tok": i} if i % 2 else {"tok": i}) for i in range(N))
    )
    calls = store.settle_calls - before
    assert 1 <= calls <= 5, calls
    usage = await store.usage(["req", "tok"])
    assert usage == {"req": Level(N // 2, 0), "tok": Level(sum(range(N)), 0)}
    assert await reservations_left(store) == []


async def test_batches_are_capped(make_store):
    store = make_store(lease_share=0)
    store._settlements.limit = 16  # as if built with settle_batch=16
    await admit_many(store, 64)
    before = store.settle_calls
    await asyncio.gather(*(store.settle(f"r{i}", {"req": 1, "tok": 10}) for i in range(64)))
    assert store.settle_calls - before == 4
    assert await store.usage(["req", "tok"]) == {"req": Level(64, 0), "tok": Level(640, 0)}


async def test_release_and_settle_from_another_replica(make_store):
    """A replica that did not admit the reservations does not know their keys: the held
    ones not named are released by a follow-up call per batch."""
    one, two = make_store(lease_share=0), make_store(lease_share=0)
    await admit_many(one)
    before = two.settle_calls
    await asyncio.gather(
        *(two.release(f"r{i}") if i % 2 else two.settle(f"r{i}", {"tok": 7}) for i in range(N))
    )
    assert two.settle_calls - before <= 10
    assert await two.usage(["req", "tok"]) == {"req": Level(0, 0), "tok": Level(7 * N // 2, 0)}
    assert await reservations_left(two) == []


async def test_release_by_the_admitting_store_takes_one_call(make_store):
    store = make_store(lease_share=0)
    await admit_many(store, 3)
    before = store.settle_calls
    await store.release("r0")
    await store.settle("r1", {})
    assert store.settle_calls - before == 2
    assert await store.usage(["req", "tok"]) == {"req": Level(0, 1), "tok": Level(0, 100)}


async def test_each_settle_returns_once_applied(make_store):
    one, two = make_store(lease_share=0), make_store(lease_share=0)
    await admit_many(one, 20)

    async def settle_then_read(i: int) -> Level:
        await one.settle(f"r{i}", {"req": 1, "tok": 1})
        return (await two.usage(["tok"]))["tok"]

    levels = await asyncio.gather(*(settle_then_read(i) for i in range(20)))
    assert all(level.used >= 1 for level in levels)  # its own settlement is visible
    assert (await two.usage(["tok"]))["tok"] == Level(20, 0)


async def test_unreachable_redis_fails_every_waiting_caller(make_store):
    store = RedisCounterStore("redis://127.0.0.1:1/0", "nowhere:", timeout_s=0.3, lease_share=0)
    try:
        results = await asyncio.gather(
            *(store.settle(f"r{i}", {"a": 1}) for i in range(50)),
            *(store.release(f"x{i}") for i in range(50)),
            return_exceptions=True,
        )
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        assert len({id(r) for r in results}) == len(results)  # one exception object each
        assert store.settle_calls <= 5
    finally:
        await store.close()


async def test_close_flushes_pending_settlements(make_store):
    store, reader = make_store(lease_share=0), make_store(lease_share=0)
    await admit_many(store, 100)
    tasks = [asyncio.create_task(store.settle(f"r{i}", {"req": 1, "tok": 3})) for i in range(100)]
    await asyncio.sleep(0)  # queued, not yet applied
    await store.close()
    assert all(t.done() and t.exception() is None for t in tasks)
    assert await reader.usage(["req", "tok"]) == {"req": Level(100, 0), "tok": Level(300, 0)}


async def test_a_cancelled_caller_does_not_lose_its_settlement(make_store):
    store = make_store(lease_share=0)
    await admit_many(store, 10)
    tasks = [asyncio.create_task(store.settle(f"r{i}", {"req": 1, "tok": 5})) for i in range(10)]
    await asyncio.sleep(0)
    tasks[3].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await store.close()  # flushes
    reader = make_store(lease_share=0)
    assert await reader.usage(["req", "tok"]) == {"req": Level(10, 0), "tok": Level(50, 0)}


async def test_settle_soon_shares_script_calls_and_logs_a_failure(make_store, caplog):
    store = make_store(lease_share=0)
    await admit_many(store, 100)
    before = store.settle_calls
    for i in range(100):
        store.settle_soon(f"r{i}", {"req": 1, "tok": 2})
    await store.flush()
    assert store.settle_calls - before <= 3
    assert await store.usage(["req", "tok"]) == {"req": Level(100, 0), "tok": Level(200, 0)}

    gone = RedisCounterStore("redis://127.0.0.1:1/0", "nowhere:", timeout_s=0.3, lease_share=0)
    try:
        for i in range(5):
            gone.settle_soon(f"x{i}", {"a": 1})  # returns at once; nobody waits for it
        await gone.flush()
        assert "5 settlement(s) not applied" in caplog.text
    finally:
        await gone.close()
