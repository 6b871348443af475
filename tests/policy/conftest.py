from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from sluicegate.policy.counters import CounterStore, MemoryCounterStore
from sluicegate.policy.counters.redis_store import RedisCounterStore
from tests.db.databases import databases  # noqa: F401  (fixture: rebuilds read replicas' marks)
from tests.support import REDIS_URL, require_redis

StoreFactory = Callable[..., CounterStore]


@pytest.fixture(params=["memory", "redis"])
async def make_store(request):
    """Builds counter stores of one kind. Redis stores made by one factory share a key
    prefix (like replicas of one gateway); the prefix is unique to the test and its keys
    are deleted afterwards. Keyword options go to a RedisCounterStore (`lease_share=0`:
    no capacity leases, every admission and settlement a Redis call)."""
    kind = request.param
    prefix = f"sgtest-{uuid.uuid4().hex[:12]}:"
    made: list[CounterStore] = []
    if kind == "redis":
        require_redis()

    def factory(clock: Callable[[], float] = time.time, **options: Any) -> CounterStore:
        store: CounterStore
        if kind == "memory":
            store = MemoryCounterStore(clock=clock)
        else:
            store = RedisCounterStore(REDIS_URL, prefix, clock=clock, **options)
        made.append(store)
        return store

    factory.kind = kind  # type: ignore[attr-defined]
    yield factory
    for store in made:
        await store.close()
    if kind == "redis":
        client = aioredis.Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
def store(make_store) -> CounterStore:
    return make_store()
