"""Counters in Redis, shared by every replica.

One Lua script per operation, so check-and-reserve is atomic across replicas. Every key
carries the same hash tag (`{sg}`), so the multi-key scripts also run on Redis Cluster.
Redis errors never leave this module: they become `StoreUnavailable`.

Settlements (`settle`, `release`) are coalesced: callers queue them and one background
flusher applies the queue as one script call per batch (up to `settle_batch` reservations;
while one batch is in flight the next accumulates). Each caller still returns only once
its reservation is applied, or gets `StoreUnavailable` if its batch failed. A store
remembers the keys of the reservations it admitted, so one call finishes a reservation
(releasing the keys `settle` did not name); one admitted by another replica may take a
second call for those.
"""

from __future__ import annotations

import asyncio
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
HELD_MAX = 100_000  # reservations whose keys a store remembers (older ones: a second call)


class _Settlement:
    __slots__ = ("now", "reservation_id", "actuals", "future")

    def __init__(self, now: str, reservation_id: str, actuals: dict[str, int],
                 future: asyncio.Future[None] | None):
        self.now = now
        self.reservation_id = reservation_id
        self.actuals = actuals  # logical key -> amount (>= 0; 0 releases)
        self.future = future


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
        settle_batch: int = 256,
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
        self._settle_batch = max(1, settle_batch)
        self._held: dict[str, tuple[tuple[str, ...], float]] = {}  # id -> keys, monotonic deadline
        self._queue: list[_Settlement] = []
        self._flusher: asyncio.Task[None] | None = None
        self.settle_calls = 0  # settle script calls made (batches, plus their follow-ups)

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
        self._remember(reservation_id, [c.key for c in checks], ttl_s)
        return AdmitResult(ok=True, levels=levels)

    async def settle(self, reservation_id: str, actuals: Mapping[str, int]) -> None:
        entries = {key: max(0, int(amount)) for key, amount in actuals.items()}
        known = self._held.pop(reservation_id, None)
        if known is not None:
            for key in known[0]:
                entries.setdefault(key, 0)
        await self._enqueue(reservation_id, entries)

    async def release(self, reservation_id: str) -> None:
        known = self._held.pop(reservation_id, None)
        await self._enqueue(reservation_id, dict.fromkeys(known[0], 0) if known else {})

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
        """Flush the queued settlements, then close the connections."""
        loop = asyncio.get_running_loop()
        while (flusher := self._flusher) is not None and not flusher.done() \
                and flusher.get_loop() is loop:
            await asyncio.wait({flusher})  # not cancelled if close() is
        try:
            await self._redis.aclose()
        except (RedisError, OSError):
            pass

    def _remember(self, reservation_id: str, keys: list[str], ttl_s: float) -> None:
        """Note the keys a reservation holds, so settling it takes one call. Entries go
        once their reservation would have expired (ids are admitted in ttl order)."""
        now, held = time.monotonic(), self._held
        while held:
            oldest = next(iter(held))
            if len(held) < HELD_MAX and held[oldest][1] > now:
                break
            del held[oldest]
        held[reservation_id] = (tuple(keys), now + ttl_s + 60)

    async def _enqueue(self, reservation_id: str, actuals: dict[str, int]) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.append(_Settlement(repr(self._clock()), reservation_id, actuals, future))
        flusher = self._flusher
        if flusher is None or flusher.done() or flusher.get_loop() is not loop:
            self._flusher = loop.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        """Apply the queue batch by batch until it is empty."""
        batch: list[_Settlement] = []
        try:
            while self._queue:
                batch = self._queue[: self._settle_batch]
                del self._queue[: self._settle_batch]
                await self._apply(batch)
                batch = []
        except asyncio.CancelledError:
            failed, self._queue = batch + self._queue, []
            for item in failed:
                _fail(item, StoreUnavailable("counter store (Redis): settlement cancelled"))
            raise

    async def _apply(self, batch: list[_Settlement]) -> None:
        """One script call for the batch, and one more for the reservations that still
        hold keys it did not name; every caller is answered."""
        try:
            left = await self._settle_call(batch)
        except Exception as exc:
            for item in batch:
                _fail(item, exc)
            return
        follow = []
        for item, keys in zip(batch, left):
            if keys:
                follow.append(item)
                item.actuals = dict.fromkeys(keys, 0)
            else:
                _done(item)
        if not follow:
            return
        try:
            await self._settle_call(follow)
        except Exception as exc:
            for item in follow:
                _fail(item, exc)
            return
        for item in follow:
            _done(item)

    async def _settle_call(self, batch: list[_Settlement]) -> list[list[str]]:
        keys, packed = [], []
        for item in batch:
            keys.append(self._reservation(item.reservation_id))
            pairs = []
            for key, amount in item.actuals.items():
                keys += self._counter_keys(key)
                pairs.append([key, str(amount)])
            packed.append([item.now, item.reservation_id, pairs])
        self.settle_calls += 1
        return list(await self._call(self._settle(keys, [orjson.dumps(packed)])))

    def _counter_keys(self, key: str) -> list[str]:
        return [f"{self._base}c:{key}", f"{self._base}z:{key}"]

    def _reservation(self, reservation_id: str) -> str:
        return f"{self._base}r:{reservation_id}"

    async def _call(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"counter store (Redis) unavailable: {exc}") from exc


def _done(item: _Settlement) -> None:
    if item.future is not None and not item.future.done():
        item.future.set_result(None)


def _fail(item: _Settlement, exc: Exception) -> None:
    """Each caller gets its own exception object (they are raised concurrently)."""
    if item.future is None or item.future.done():
        return
    if isinstance(exc, StoreUnavailable):
        mine = StoreUnavailable(str(exc))
        mine.__cause__ = exc.__cause__
    else:
        mine = exc
    item.future.set_exception(mine)


def _levels(flat: Sequence[Any]) -> tuple[Level, ...]:
    return tuple(Level(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2))


def _arg(value: int | float) -> str:
    """A number as the scripts read it (what redis-py would have sent for it)."""
    return repr(value) if isinstance(value, float) else str(value)
