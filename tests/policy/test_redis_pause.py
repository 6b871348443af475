"""Redis counter store calls held up by the server itself (CLIENT PAUSE): a batch that
times out fails its callers and reserves nothing; a caller cancelled during its call is
released; leases stop serving while Redis is unreachable and a failed flush is retried.
CLIENT PAUSE stops every client of a server, so each test pauses a Redis of its own,
never the shared one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from sluicegate.errors import StoreUnavailable
from sluicegate.policy.counters import Level
from sluicegate.policy.counters.redis_store import RedisCounterStore
from tests.policy.test_redis_admit_batching import check, reservations_left
from tests.policy.test_redis_leases import check as lease_check
from tests.policy.test_redis_leases import level
from tests.policy.test_redis_settle_batching import admit_many
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


async def test_a_settle_batch_failing_mid_way_fails_its_callers():
    # CLIENT PAUSE stops every client of a server: a Redis of this test's own.
    with OwnRedis() as own:
        store = RedisCounterStore(own.url, "sgtest-pause:", timeout_s=0.2, lease_share=0)
        await admit_many(store, 50)
        admin = aioredis.Redis.from_url(own.url)
        await admin.execute_command("CLIENT", "PAUSE", "1500", "WRITE")  # scripts block, time out
        try:
            results = await asyncio.gather(
                *(store.settle(f"r{i}", {"req": 1, "tok": 1}) for i in range(50)),
                return_exceptions=True,
            )
            assert all(isinstance(r, StoreUnavailable) for r in results), results
        finally:
            await admin.execute_command("CLIENT", "UNPAUSE")
            await admin.aclose()
            await store.close()


# -- capacity leases (redis_lease.py) while Redis is paused ----------------------------------


@contextlib.asynccontextmanager
async def lease_store(timeout_s: float) -> AsyncIterator[tuple[RedisCounterStore, str]]:
    """A leasing counter store (the default lease share) on a Redis of the test's own,
    and that Redis's URL."""
    with OwnRedis() as own:
        store = RedisCounterStore(own.url, f"sgtest-{uuid.uuid4().hex[:12]}:", timeout_s=timeout_s)
        try:
            yield store, own.url
        finally:
            await store.close()


async def test_a_failed_flush_is_retried_and_logged_once(caplog):
    async with lease_store(timeout_s=0.2) as (store, url):
        for i in range(10):
            assert (await store.admit([lease_check("k", 10**6)], f"r{i}", 60)).ok
            store.settle_soon(f"r{i}", {"k": 3})
        admin = aioredis.Redis.from_url(url)
        try:
            with caplog.at_level(logging.WARNING):
                await admin.execute_command("CLIENT", "PAUSE", "500", "WRITE")
                await asyncio.sleep(0.7)  # flushes time out meanwhile
                await store.flush()
        finally:
            await admin.execute_command("CLIENT", "UNPAUSE")
            await admin.aclose()
        assert caplog.text.count("leases not flushed") == 1
        assert "leases flushed again" in caplog.text
        assert (await level(store, "k")).used == 30


async def test_no_admission_from_leases_while_redis_is_unreachable():
    """Once a Redis call fails, admissions stop coming from leases and go to Redis (and
    fail), so the engine's fail_open / fail_closed applies at once, as without leases;
    when a call succeeds again, leases serve again."""
    async with lease_store(timeout_s=0.2) as (store, url):
        for i in range(10):
            assert (await store.admit([lease_check("k", 10**6)], f"r{i}", 60)).ok
            store.settle_soon(f"r{i}", {"k": 1})
        assert store.admit_calls == 1  # the rest came from the lease
        admin = aioredis.Redis.from_url(url)
        try:
            await admin.execute_command("CLIENT", "PAUSE", "800", "WRITE")
            await store.flush()  # times out: Redis is as good as gone
            with pytest.raises(StoreUnavailable):
                await store.admit([lease_check("k", 10**6)], "during", 60)
        finally:
            await asyncio.sleep(0.8)
            await admin.execute_command("CLIENT", "UNPAUSE")
            await admin.aclose()
        assert (await store.admit([lease_check("k", 10**6)], "after", 60)).ok  # through Redis
        calls = store.admit_calls
        assert (await store.admit([lease_check("k", 10**6)], "after-2", 60)).ok
        assert store.admit_calls == calls  # from the lease again
