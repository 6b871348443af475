"""Counters in Redis, shared by every replica.

One Lua script per operation, so check-and-reserve is atomic across replicas. Every key
carries the same hash tag (`{sg}`), so the multi-key scripts also run on Redis Cluster.
Redis errors never leave this module: they become `StoreUnavailable`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib import resources
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from sluicegate.errors import StoreUnavailable
from sluicegate.policy.counters.base import AdmitResult, Check, Level, Slide

T = TypeVar("T")
HASH_TAG = "{sg}"


def _script(name: str) -> str:
    lua = resources.files("sluicegate.policy") / "lua"
    return (lua / "lib.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()


class RedisCounterStore:
    def __init__(
        self,
        redis_url: str,
        prefix: str = "sluice:",
        *,
        clock: Callable[[], float] = time.time,
        timeout_s: float = 1.0,
        max_connections: int = 64,
    ):
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url,
            max_connections=max_connections,
            timeout=timeout_s,  # waiting for a free connection
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 1),
        )
        self._redis = aioredis.Redis.from_pool(pool)
        self._base = f"{prefix}{HASH_TAG}:"
        self._clock = clock
        self._admit = self._redis.register_script(_script("admit"))
        self._settle = self._redis.register_script(_script("settle"))
        self._usage = self._redis.register_script(_script("usage"))
        self._seed = self._redis.register_script(_script("seed"))

    async def admit(self, checks: Sequence[Check], reservation_id: str, ttl_s: float) -> AdmitResult:
        keys = [k for c in checks for k in self._counter_keys(c.key)]
        packed = []
        for c in checks:
            slide = c.slide or Slide(0, 0)
            packed.append([c.key, _arg(c.limit), _arg(c.amount), repr(c.expires_at),
                           _arg(slide.window_s), _arg(slide.bucket_s)])
        args = [repr(self._clock()), reservation_id, repr(float(ttl_s)), orjson.dumps(packed)]
        failed, flat = await self._call(self._admit(keys + [self._reservation(reservation_id)], args))
        levels = _levels(flat)
        if failed:
            return AdmitResult(ok=False, levels=levels, failed_index=int(failed) - 1)
        return AdmitResult(ok=True, levels=levels)

    async def settle(self, reservation_id: str, actuals: Mapping[str, int]) -> None:
        left = await self._settle_keys(reservation_id, actuals)
        if left:
            await self._settle_keys(reservation_id, {key: 0 for key in left})

    async def release(self, reservation_id: str) -> None:
        held = await self._call(self._redis.hkeys(self._reservation(reservation_id)))
        if held:
            await self._settle_keys(reservation_id, {key: 0 for key in held})

    async def usage(self, keys: Sequence[str]) -> dict[str, Level]:
        if not keys:
            return {}
        flat = await self._call(
            self._usage([k for key in keys for k in self._counter_keys(key)], [repr(self._clock())])
        )
        return dict(zip(keys, _levels(flat)))

    async def set_if_absent(
        self, key: str, used: int | Mapping[int, int], expires_at: float, slide: Slide | None = None
    ) -> bool:
        now = self._clock()
        args: list[Any] = [repr(now), repr(expires_at)]
        if slide is None:
            if isinstance(used, Mapping):
                raise TypeError("a fixed counter is seeded with one amount")
            args += [0, 0, int(used)]
        else:
            buckets = used if isinstance(used, Mapping) else {int(now // slide.bucket_s * slide.bucket_s): used}
            args += [slide.window_s, slide.bucket_s]
            for start, amount in buckets.items():
                args += [int(start), int(amount)]
        return bool(await self._call(self._seed(self._counter_keys(key), args)))

    async def mark_once(self, key: str, ttl_s: float) -> bool:
        marked = self._redis.set(f"{self._base}m:{key}", "1", nx=True, px=max(1, int(ttl_s * 1000)))
        return bool(await self._call(marked))

    async def ping(self) -> None:
        await self._call(self._redis.ping())

    async def close(self) -> None:
        try:
            await self._redis.aclose()
        except (RedisError, OSError):
            pass

    async def _settle_keys(self, reservation_id: str, actuals: Mapping[str, int]) -> list[str]:
        keys = [self._reservation(reservation_id)]
        packed = []
        for key, amount in actuals.items():
            keys += self._counter_keys(key)
            packed.append([key, str(max(0, int(amount)))])
        args = [repr(self._clock()), reservation_id, orjson.dumps(packed)]
        return list(await self._call(self._settle(keys, args)))

    def _counter_keys(self, key: str) -> list[str]:
        return [f"{self._base}c:{key}", f"{self._base}z:{key}"]

    def _reservation(self, reservation_id: str) -> str:
        return f"{self._base}r:{reservation_id}"

    async def _call(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"counter store (Redis) unavailable: {exc}") from exc


def _levels(flat: Sequence[Any]) -> tuple[Level, ...]:
    return tuple(Level(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2))


def _arg(value: int | float) -> str:
    """A number as the scripts read it (what redis-py would have sent for it)."""
    return repr(value) if isinstance(value, float) else str(value)
