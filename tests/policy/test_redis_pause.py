"""Redis counter store calls held up by the server itself (CLIENT PAUSE): a batch that
times out fails its callers and reserves nothing; a caller cancelled during its call is
released. CLIENT PAUSE stops every client of a server, so each test pauses a Redis of its
own, never the shared one."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from sluicegate.errors import StoreUnavailable
from sluicegate.policy.counters import Level
from sluicegate.policy.counters.redis_store import RedisCounterStore
from tests.policy.test_redis_admit_batching import check, reservations_left
from tests.redis_server import OwnRedis

pytestmark = pytest.mark.redis


async def test_a_batch_timing_out_fails_its_callers_and_reserves_nothing():
    # CLIENT PAUSE stops every client of a server: a Redis of this test's own, never the
    # shared one.
    with OwnRedis() as own:
        prefix = f"sgtest-pause-{uuid.uuid4().hex[:12]}:"
        store = RedisCounterStore(own.url, prefix, timeout_s=0.2, lease_share=0)
        reader = RedisCounterStore(own.url, prefix, lease_share=0)
        await store.ping()
        admin = aioredis.Redis.from_url(own.url)
        await admin.execute_command("CLIENT", "PAUSE", "1000", "WRITE")  # the script blocks
        try:
            results = await asyncio.gather(
                *(store.admit([check("a", 100)], f"r{i}", 60) for i in range(50)),
                return_exceptions=True,
            )
            assert all(isinstance(r, StoreUnavailable) for r in results), results
            assert len({id(r) for r in results}) == len(results)
        finally:
            await admin.execute_command("CLIENT", "UNPAUSE")
        try:
            assert await reader.usage(["a"]) == {"a": Level(0, 0)}
            assert await reservations_left(reader) == set()
            # the store recovers: the next admissions go through
            assert (await store.admit([check("a", 100)], "later", 60)).ok
        finally:
            await admin.aclose()
            await store.close()
            await reader.close()


async def test_a_lone_caller_cancelled_during_its_call_is_released():
    """Cancelled during the call it made itself, its outcome unknown: released all the
    same (whether the script ran or not), and the ones queued behind it go on. (CLIENT
    PAUSE: on a Redis of this test's own.)"""
    with OwnRedis() as own:
        prefix = f"sgtest-{uuid.uuid4().hex[:12]}:"
        store = RedisCounterStore(own.url, prefix, lease_share=0)
        await store.ping()
        admin = aioredis.Redis.from_url(own.url)
        await admin.execute_command("CLIENT", "PAUSE", "300", "WRITE")  # hold the call
        try:
            alone = asyncio.create_task(store.admit([check("a", 100)], "alone", 60))
            await asyncio.sleep(0.05)  # sent, waiting for its answer
            behind = asyncio.create_task(store.admit([check("a", 100)], "behind", 60))
            await asyncio.sleep(0)
            assert store.admit_calls == 1  # "behind" is queued
            alone.cancel()
            with pytest.raises(asyncio.CancelledError):
                await alone
            assert (await behind).ok
        finally:
            await admin.execute_command("CLIENT", "UNPAUSE")
            await admin.aclose()
            await store.close()
        assert store.settle_calls == 1  # the release
        reader = RedisCounterStore(own.url, prefix, lease_share=0)
        try:
            assert await reader.usage(["a"]) == {"a": Level(0, 1)}
            assert await reservations_left(reader) == {"behind"}
        finally:
            await reader.close()
