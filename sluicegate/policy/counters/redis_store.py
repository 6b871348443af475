"""Counters in Redis, shared by every replica.

One Lua script per operation, so check-and-reserve is atomic across replicas. Every key
carries the same hash tag (`{sg}`), so the multi-key scripts also run on Redis Cluster.
Redis errors never leave this module: they become `StoreUnavailable`.

Admissions and settlements (`settle`, `release`) are group-committed (redis_batch.py):
callers queue them and a background flusher sends each queue as one script call per batch
(up to `admit_batch` admissions, `settle_batch` reservations; while one batch is in flight
the next accumulates, and a lone request goes out at once). The scripts apply a batch in
order, each admission atomic on its own and seeing the ones before it. Each caller still
returns only once its own item is applied, or gets `StoreUnavailable` if its batch failed.
A store remembers the keys of the reservations it admitted, so one call finishes a
reservation (releasing the keys `settle` did not name); one admitted by another replica
may take a second call for those.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from sluicegate.errors import StoreUnavailable
from sluicegate.policy.counters.base import AdmitResult, Check, Level, Slide
from sluicegate.policy.counters.redis_batch import Coalescer

T = TypeVar("T")
HASH_TAG = "{sg}"
HELD_MAX = 100_000  # reservations whose keys a store remembers (older ones: a second call)


@dataclass(slots=True)
class _Admission:
    reservation_id: str
    ttl_s: float
    logical: list[str]  # its checks' keys
    packed: list[Any]  # its entry in the script's batch argument (KEYS positions to add)


@dataclass(slots=True)
class _Settlement:
    now: str
    reservation_id: str
    actuals: dict[str, int]  # logical key -> amount (>= 0; 0 releases)


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
        admit_batch: int = 128,
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
        self._held: dict[str, tuple[tuple[str, ...], float]] = {}  # id -> keys, monotonic deadline
        self._admissions: Coalescer[_Admission, AdmitResult] = Coalescer(
            self._admit_batch, admit_batch, "admission", abandoned=self._abandoned)
        self._settlements: Coalescer[_Settlement, None] = Coalescer(
            self._settle_batch, settle_batch, "settlement")
        self.admit_calls = 0  # admit script calls made (one per batch)
        self.settle_calls = 0  # settle script calls made (batches, plus their follow-ups)

    async def admit(self, checks: Sequence[Check], reservation_id: str, ttl_s: float) -> AdmitResult:
        logical, packed = [], []
        for c in checks:
            slide = c.slide or Slide(0, 0)
            logical.append(c.key)
            packed.append([c.key, _arg(c.limit), _arg(c.amount), repr(c.expires_at),
                           _arg(slide.window_s), _arg(slide.bucket_s)])
        entry = [repr(self._clock()), reservation_id, repr(float(ttl_s)), packed]
        return await self._admissions.call(_Admission(reservation_id, ttl_s, logical, entry))

    async def settle(self, reservation_id: str, actuals: Mapping[str, int]) -> None:
        await self._settlements.call(self._settlement(reservation_id, actuals))

    def settle_soon(self, reservation_id: str, actuals: Mapping[str, int]) -> None:
        self._settlements.put(self._settlement(reservation_id, actuals))

    async def flush(self) -> None:
        await self._settlements.wait_idle()

    def _settlement(self, reservation_id: str, actuals: Mapping[str, int]) -> _Settlement:
        entries = {key: max(0, int(amount)) for key, amount in actuals.items()}
        known = self._held.pop(reservation_id, None)
        if known is not None:
            for key in known[0]:
                entries.setdefault(key, 0)
        return _Settlement(repr(self._clock()), reservation_id, entries)

    async def release(self, reservation_id: str) -> None:
        await self._settlements.call(self._release_of(reservation_id))

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
        """Flush the queued admissions and settlements, then close the connections."""
        await self._admissions.wait_idle()  # may queue releases (for cancelled callers)
        await self._settlements.wait_idle()
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

    async def _admit_batch(self, batch: list[_Admission]) -> list[AdmitResult | Exception]:
        """One script call for the batch. Should it fail, every caller gets StoreUnavailable;
        a call that timed out may still have been applied: those reservations are dropped
        by Redis at their ttl (releasing them here could undo a retry under the same id)."""
        keys = _Keys(self._base)
        packed = [[*a.packed, keys.reservation(a.reservation_id),
                   [keys.counter(key) for key in a.logical]] for a in batch]
        self.admit_calls += 1
        out = await self._call(self._admit(keys.keys, [orjson.dumps(packed)]))
        results: list[AdmitResult | Exception] = []
        for a, (failed, flat) in zip(batch, out, strict=True):
            if failed == -1:  # a Redis error for this admission alone
                results.append(StoreUnavailable(f"counter store (Redis) unavailable: {flat}"))
            elif failed:
                results.append(AdmitResult(ok=False, levels=_levels(flat),
                                           failed_index=int(failed) - 1))
            else:
                self._remember(a.reservation_id, a.logical, a.ttl_s)
                results.append(AdmitResult(ok=True, levels=_levels(flat)))
        return results

    def _abandoned(self, admission: _Admission, result: AdmitResult | None) -> None:
        """An admission whose caller was cancelled meanwhile: nobody will settle it, so
        release it now (in the background) rather than hold capacity until its ttl. With
        its outcome unknown (cancelled during its call) it is released all the same:
        releasing nothing is harmless, and the script, sent first, runs first (were it
        to run after all, the ttl would drop the reservation)."""
        if result is None:
            self._settlements.put(_Settlement(repr(self._clock()), admission.reservation_id,
                                              dict.fromkeys(admission.logical, 0)))
        elif result.ok:
            self._settlements.put(self._release_of(admission.reservation_id))

    def _release_of(self, reservation_id: str) -> _Settlement:
        known = self._held.pop(reservation_id, None)
        return _Settlement(repr(self._clock()), reservation_id,
                           dict.fromkeys(known[0], 0) if known else {})

    async def _settle_batch(self, batch: list[_Settlement]) -> list[None | Exception]:
        """One script call for the batch, and one more for the reservations that still
        hold keys it did not name."""
        left = await self._settle_call(batch)
        outcomes: list[None | Exception] = [None] * len(batch)
        follow = []
        for i, (item, keys) in enumerate(zip(batch, left, strict=True)):
            if keys:
                follow.append(i)
                item.actuals = dict.fromkeys(keys, 0)
        if follow:
            try:
                await self._settle_call([batch[i] for i in follow])
            except Exception as exc:
                for i in follow:
                    outcomes[i] = exc
        return outcomes

    async def _settle_call(self, batch: list[_Settlement]) -> list[list[str]]:
        keys = _Keys(self._base)
        packed = [[item.now, item.reservation_id, keys.reservation(item.reservation_id),
                   [[key, str(n), keys.counter(key)] for key, n in item.actuals.items()]]
                  for item in batch]
        self.settle_calls += 1
        return list(await self._call(self._settle(keys.keys, [orjson.dumps(packed)])))

    def _counter_keys(self, key: str) -> list[str]:
        return [f"{self._base}c:{key}", f"{self._base}z:{key}"]

    async def _call(self, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"counter store (Redis) unavailable: {exc}") from exc


class _Keys:
    """The KEYS of one batched script call, each key once (concurrent requests mostly
    share their counters; redis-py's cost grows with every argument): the batch argument
    names them by position (1-based)."""

    __slots__ = ("keys", "_at", "_base")

    def __init__(self, base: str):
        self.keys: list[str] = []
        self._at: dict[str, int] = {}
        self._base = base

    def counter(self, logical: str) -> int:
        """The position of the counter's hash; its sorted set follows it."""
        at = self._at.get(logical)
        if at is None:
            at = self._at[logical] = len(self.keys) + 1
            self.keys += (f"{self._base}c:{logical}", f"{self._base}z:{logical}")
        return at

    def reservation(self, reservation_id: str) -> int:
        self.keys.append(f"{self._base}r:{reservation_id}")
        return len(self.keys)


def _levels(flat: Sequence[Any]) -> tuple[Level, ...]:
    return tuple(Level(int(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2))


def _arg(value: int | float) -> str:
    """A number as the scripts read it (what redis-py would have sent for it)."""
    return repr(value) if isinstance(value, float) else str(value)
