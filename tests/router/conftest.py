from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from sluicegate.router.breaker import BreakerStore, MemoryBreakerStore, RedisBreakerStore
from tests.support import REDIS_URL, require_redis

SEED_YAML = Path(__file__).parent / "data" / "routing-config.yaml"


class FakeClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@asynccontextmanager
async def redis_namespace() -> AsyncIterator[tuple[aioredis.Redis, str]]:
    """A Redis client and a key prefix unique to the test; its keys are deleted after."""
    require_redis()
    client = aioredis.Redis.from_url(REDIS_URL)
    prefix = f"sgtest-router-{uuid.uuid4().hex[:12]}:"
    try:
        yield client, prefix
    finally:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[tuple[aioredis.Redis, str]]:
    async with redis_namespace() as namespace:
        yield namespace


@dataclass
class Breakers:
    """Stores of one kind sharing state (like replicas), and a way to let time pass:
    a fake clock in memory, real sleeping for Redis (whose keys expire on its own clock)."""

    kind: str
    make: Callable[[], BreakerStore]
    advance: Callable[[float], Awaitable[None]]


@pytest.fixture(params=["memory", "redis"])
async def breakers(request, clock: FakeClock) -> AsyncIterator[Breakers]:
    if request.param == "memory":
        shared = MemoryBreakerStore(clock=clock)

        async def advance(seconds: float) -> None:
            clock.advance(seconds)

        yield Breakers("memory", lambda: shared, advance)
        return
    async with redis_namespace() as (client, prefix):
        yield Breakers("redis", lambda: RedisBreakerStore(client, prefix=prefix), asyncio.sleep)
