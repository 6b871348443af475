"""Sticky sessions: a session keeps the target it was first routed to, for a while.

The key is `<virtual model>:<session value>`; the value is a target id. A pin pointing at
a target that is no longer eligible (breaker open, removed from the config) is ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio as aioredis

from sluicegate.errors import StoreUnavailable
from sluicegate.router.redis_support import client_for, text, translated


class StickyStore(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, target_id: str, ttl_seconds: int) -> None: ...

    async def aclose(self) -> None: ...


class MemoryStickyStore:
    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, max_sessions: int = 100_000
    ) -> None:
        self._clock = clock
        self._max = max_sessions
        self._pins: dict[str, tuple[str, float]] = {}  # key -> (target id, expires at)

    async def get(self, key: str) -> str | None:
        pin = self._pins.get(key)
        if pin is None or pin[1] <= self._clock():
            self._pins.pop(key, None)
            return None
        return pin[0]

    async def set(self, key: str, target_id: str, ttl_seconds: int) -> None:
        now = self._clock()
        if len(self._pins) >= self._max:
            self._pins = {k: pin for k, pin in self._pins.items() if pin[1] > now}
            while len(self._pins) >= self._max:  # still full: the oldest pins go first
                del self._pins[next(iter(self._pins))]
        self._pins[key] = (target_id, now + ttl_seconds)

    async def aclose(self) -> None:
        pass


class RedisStickyStore:
    def __init__(self, redis: str | aioredis.Redis, *, prefix: str = "sluice:sticky:") -> None:
        self._redis, self._owned = client_for(redis)
        self._prefix = prefix

    async def get(self, key: str) -> str | None:
        async with translated("sticky session read"):
            value = await self._redis.get(self._prefix + key)
        return None if value is None else text(value)

    async def set(self, key: str, target_id: str, ttl_seconds: int) -> None:
        async with translated("sticky session write"):
            await self._redis.set(self._prefix + key, target_id, ex=ttl_seconds)

    async def aclose(self) -> None:
        if self._owned:
            await self._redis.aclose()


class FailOpenStickyStore:
    """When the store is unreachable sessions simply are not pinned (`on_error` reports)."""

    def __init__(self, store: StickyStore, *, on_error: Callable[[StoreUnavailable], None]) -> None:
        self._store = store
        self._on_error = on_error

    async def get(self, key: str) -> str | None:
        try:
            return await self._store.get(key)
        except StoreUnavailable as exc:
            self._on_error(exc)
            return None

    async def set(self, key: str, target_id: str, ttl_seconds: int) -> None:
        try:
            await self._store.set(key, target_id, ttl_seconds)
        except StoreUnavailable as exc:
            self._on_error(exc)

    async def aclose(self) -> None:
        await self._store.aclose()
