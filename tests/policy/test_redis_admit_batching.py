"""Group-committed admissions in RedisCounterStore: concurrent admissions share script
calls, each still all-or-nothing on its own and answered in order.

An admission finding the store idle goes out at once, as its own call; the ones arriving
while it is in flight form the next batch. Tests that need one batch start a lead
admission (on a key of its own) first. Every store here is built with `lease_share=0`
(no capacity leases), so every admission is a Redis call (leases: test_redis_leases.py)."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from sluicegate.errors import StoreUnavailable
from sluicegate.policy.counters import AdmitResult, Check, Level
from sluicegate.policy.counters.redis_store import RedisCounterStore
from tests.policy.helpers import redis_keys
from tests.support import REDIS_URL

pytestmark = pytest.mark.parametrize("make_store", ["redis"], indirect=True)


def check(key: str, limit: int, amount: int = 1) -> Check:
    return Check(key=key, limit=limit, amount=amount, expires_at=time.time() + 60)


async def lead(store: RedisCounterStore) -> asyncio.Task[AdmitResult]:
    """A lone admission, in flight when this returns: what is admitted next is batched."""
    task = asyncio.create_task(store.admit([check("lead", 10**9)], "lead", 60))
    await asyncio.sleep(0)
    assert store.admit_calls == 1 and not task.done()
    return task


async def reservations_left(store: RedisCounterStore) -> set[str]:
    """Reservation ids that still hold something in Redis."""
    return {k.rsplit(":", 1)[1] for k in await redis_keys(store, "r")}


async def test_concurrent_admissions_take_exactly_the_limit(make_store):
    store = make_store(lease_share=0)
    results = await asyncio.gather(
        *(
            store.admit([check("tok", 10**9, 100), check("req", 50)], f"r{i}", 60)
            for i in range(200)
        )
    )
    admitted = [i for i, r in enumerate(results) if r.ok]
    assert len(admitted) == 50
    # each admission saw the ones queued before it: the 50 admitted saw 0..49 reserved
    assert sorted(results[i].levels[1].reserved for i in admitted) == list(range(50))
    for r in results:
        if not r.ok:  # refused on "req", the full one, and nothing reserved for it
            assert r.failed_index == 1
            assert r.levels[1] == Level(0, 50)
    assert await store.usage(["req", "tok"]) == {"req": Level(0, 50), "tok": Level(0, 5000)}
    assert await reservations_left(store) == {f"r{i}" for i in admitted}
    assert store.admit_calls == 3  # the first alone, then 199 in batches of up to 128


async def test_one_batch_answers_each_admission_in_order(make_store):
    store = make_store(lease_share=0)
    batch = [
        ([check("a", 3)], "fits"),
        ([check("a", 3, 2)], "fills"),  # sees the first one's hold
        ([check("b", 10), check("a", 3)], "refused"),  # "a" is full: "b" not held either
        ([check("b", 10)], "b-only"),  # sees no hold from the refused one
        ([check("a", 3, 0)], "zero"),  # nothing more than the limit: fits
    ]
    first = await lead(store)
    results = await asyncio.gather(*(store.admit(checks, rid, 60) for checks, rid in batch))
    assert (await first).ok
    assert store.admit_calls == 2  # queued together behind the lead, sent together
    assert results == [
        AdmitResult(ok=True, levels=(Level(0, 0),)),
        AdmitResult(ok=True, levels=(Level(0, 1),)),
        AdmitResult(ok=False, levels=(Level(0, 0), Level(0, 3)), failed_index=1),
        AdmitResult(ok=True, levels=(Level(0, 0),)),
        AdmitResult(ok=True, levels=(Level(0, 3),)),
    ]
    assert await store.usage(["a", "b"]) == {"a": Level(0, 3), "b": Level(0, 1)}
    assert await reservations_left(store) == {"lead", "fits", "fills", "b-only", "zero"}
    await asyncio.gather(store.settle("fits", {"a": 1}), store.release("fills"))
    assert await store.usage(["a"]) == {"a": Level(1, 0)}


async def test_a_lone_admission_goes_out_at_once(make_store):
    store = make_store(lease_share=0)
    for i in range(5):  # one at a time: one call each, made by the caller itself
        task = asyncio.create_task(store.admit([check("a", 10)], f"r{i}", 60))
        await asyncio.sleep(0)
        assert store.admit_calls == i + 1  # its call started on its first step
        assert (await task).ok


async def test_batches_are_capped(make_store):
    store = make_store(lease_share=0)
    store._admissions.limit = 16  # as if built with admit_batch=16
    first = await lead(store)
    results = await asyncio.gather(
        *(store.admit([check("a", 100)], f"r{i}", 60) for i in range(64))
    )
    assert (await first).ok and all(r.ok for r in results)
    assert store.admit_calls == 1 + 4


async def test_admissions_from_replicas_share_the_limit(make_store):
    one, two = make_store(lease_share=0), make_store(lease_share=0)
    results = await asyncio.gather(
        *((one if i % 2 else two).admit([check("req", 30)], f"r{i}", 60) for i in range(100))
    )
    assert sum(r.ok for r in results) == 30
    assert await one.usage(["req"]) == {"req": Level(0, 30)}


async def test_a_redis_error_stays_with_its_admission(make_store):
    """A command failing for one admission (a key of the wrong type) fails that caller
    only; the rest of its batch is applied as usual."""
    store = make_store(lease_share=0)
    client = aioredis.Redis.from_url(REDIS_URL)
    await client.set(f"{store._base}c:broken", "not a hash")
    await client.aclose()
    first = await lead(store)
    results = await asyncio.gather(
        store.admit([check("a", 10)], "before", 60),
        store.admit([check("a", 10), check("broken", 10)], "bad", 60),
        store.admit([check("a", 10)], "after", 60),
        return_exceptions=True,
    )
    assert (await first).ok and store.admit_calls == 2
    assert results[0] == AdmitResult(ok=True, levels=(Level(0, 0),))
    assert isinstance(results[1], StoreUnavailable) and "WRONGTYPE" in str(results[1])
    assert results[2] == AdmitResult(ok=True, levels=(Level(0, 1),))
    assert await reservations_left(store) == {"lead", "before", "after"}


async def test_unreachable_redis_fails_every_caller_of_the_batch(make_store):
    store = RedisCounterStore("redis://127.0.0.1:1/0", "nowhere:", timeout_s=0.3, lease_share=0)
    try:
        results = await asyncio.gather(
            *(store.admit([check("a", 10)], f"r{i}", 60) for i in range(50)),
            return_exceptions=True,
        )
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        assert len({id(r) for r in results}) == len(results)  # one exception object each
        assert store.admit_calls <= 3  # the first alone, the others as one batch
        assert store._held == {}
    finally:
        await store.close()


async def test_a_caller_cancelled_while_queued_reserves_nothing(make_store):
    store = make_store(lease_share=0)
    tasks = [asyncio.create_task(store.admit([check("a", 100)], f"r{i}", 60)) for i in range(10)]
    await asyncio.sleep(0)  # the first in flight, the others queued behind it
    tasks[3].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[3], asyncio.CancelledError)
    assert all(r.ok for i, r in enumerate(results) if i != 3)
    assert store.admit_calls == 2 and store.settle_calls == 0  # skipped, nothing to release
    assert await store.usage(["a"]) == {"a": Level(0, 9)}
    assert await reservations_left(store) == {f"r{i}" for i in range(10) if i != 3}


async def test_a_caller_cancelled_while_its_batch_is_in_flight_is_released(make_store):
    """Its admission is applied after it gave up waiting: the store releases it."""
    store = make_store(lease_share=0)
    first = await lead(store)
    tasks = [asyncio.create_task(store.admit([check("a", 100)], f"r{i}", 60)) for i in range(10)]
    while store.admit_calls < 2:  # the batch is taken and sent; its answer not yet read
        await asyncio.sleep(0)
    tasks[3].cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert (await first).ok
    assert isinstance(results[3], asyncio.CancelledError)
    assert all(r.ok for i, r in enumerate(results) if i != 3)
    await store.close()  # lets the background release finish
    assert store.settle_calls == 1
    reader = make_store(lease_share=0)
    assert await reader.usage(["a"]) == {"a": Level(0, 9)}
    assert await reservations_left(reader) == {"lead"} | {f"r{i}" for i in range(10) if i != 3}


async def test_a_caller_cancelled_once_answered_is_released(make_store):
    """Cancelled after its answer arrived but before it resumed: still released."""
    store = make_store(lease_share=0)
    victim: asyncio.Task[AdmitResult] | None = None

    async def first() -> AdmitResult:
        result = await store.admit([check("a", 100)], "first", 60)
        assert victim is not None and not victim.done()
        victim.cancel()  # its answer is already set: its wakeup is scheduled after ours
        return result

    leading = await lead(store)
    one = asyncio.create_task(first())
    victim = asyncio.create_task(store.admit([check("a", 100)], "victim", 60))
    assert (await one).ok and (await leading).ok
    with pytest.raises(asyncio.CancelledError):
        await victim
    assert store.admit_calls == 2  # first and victim in one batch, answered together
    await store.close()
    assert store.settle_calls == 1
    reader = make_store(lease_share=0)
    assert await reader.usage(["a"]) == {"a": Level(0, 1)}
    assert await reservations_left(reader) == {"lead", "first"}


async def test_close_waits_for_admissions_in_flight(make_store):
    store = make_store(lease_share=0)
    tasks = [asyncio.create_task(store.admit([check("a", 100)], f"r{i}", 60)) for i in range(20)]
    await asyncio.sleep(0)  # the first in flight, made by its caller; the others queued
    await store.close()
    assert all(t.done() and t.result().ok for t in tasks)
    reader = make_store(lease_share=0)
    assert await reader.usage(["a"]) == {"a": Level(0, 20)}
