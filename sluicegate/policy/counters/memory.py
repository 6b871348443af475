"""In-process counters for the embedded single-process deployment and for tests.

Every method runs without awaiting in the middle, so on one event loop each call is as
atomic as the Redis script is across replicas.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sluicegate.policy.counters.base import (
    AdmitResult,
    Check,
    Level,
    Slide,
    bucket_alive,
    bucket_start,
)

_SWEEP_EVERY_S = 60.0


@dataclass
class _Counter:
    expires_at: float
    slide: Slide | None = None
    used: int = 0
    has_used: bool = False
    buckets: dict[int, int] = field(default_factory=dict)
    holds: dict[str, tuple[int, float]] = field(default_factory=dict)  # id -> (amount, deadline)
    reserved: int = 0  # the sum of `holds`, kept as they change
    next_lapse: float = math.inf  # no hold lapses before this

    def level(self, now: float) -> Level:
        if now >= self.next_lapse:
            self._drop_lapsed(now)
        if self.slide is None:
            return Level(self.used, self.reserved)
        slide = self.slide
        self.buckets = {b: v for b, v in self.buckets.items() if bucket_alive(b, slide, now)}
        return Level(sum(self.buckets.values()), self.reserved)

    def hold(self, reservation_id: str, amount: int, deadline: float) -> None:
        previous = self.holds.get(reservation_id)
        if previous is not None:
            self.reserved -= previous[0]
        self.holds[reservation_id] = (amount, deadline)
        self.reserved += amount
        self.next_lapse = min(self.next_lapse, deadline)

    def unhold(self, reservation_id: str) -> None:
        held = self.holds.pop(reservation_id, None)
        if held is not None:
            self.reserved -= held[0]

    def add(self, amount: int, now: float) -> None:
        self.has_used = True
        if self.slide is None:
            self.used += amount
        else:
            start = bucket_start(now, self.slide.bucket_s)
            self.buckets[start] = self.buckets.get(start, 0) + amount

    def _drop_lapsed(self, now: float) -> None:
        self.holds = {r: h for r, h in self.holds.items() if h[1] > now}
        self.reserved = sum(amount for amount, _ in self.holds.values())
        self.next_lapse = min((deadline for _, deadline in self.holds.values()), default=math.inf)


class MemoryCounterStore:
    def __init__(self, *, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._counters: dict[str, _Counter] = {}
        self._reservations: dict[str, tuple[float, set[str]]] = {}  # id -> (deadline, keys)
        self._marks: dict[str, float] = {}
        self._next_sweep = 0.0

    async def admit(self, checks: Sequence[Check], reservation_id: str, ttl_s: float) -> AdmitResult:
        now = self._clock()
        self._sweep(now)
        counters = [self._counter(c, now) for c in checks]
        levels = tuple(counter.level(now) for counter in counters)
        for index, (check, level) in enumerate(zip(checks, levels)):
            if level.used + level.reserved + check.amount > check.limit:
                return AdmitResult(ok=False, levels=levels, failed_index=index)
        deadline = now + ttl_s
        for check, counter in zip(checks, counters):
            counter.hold(reservation_id, check.amount, deadline)
            counter.expires_at = max(counter.expires_at, check.expires_at, deadline)
        self._reservations[reservation_id] = (deadline, {c.key for c in checks})
        return AdmitResult(ok=True, levels=levels)

    async def settle(self, reservation_id: str, actuals: Mapping[str, int]) -> None:
        self.settle_soon(reservation_id, actuals)

    def settle_soon(self, reservation_id: str, actuals: Mapping[str, int]) -> None:
        now = self._clock()
        _, keys = self._reservations.pop(reservation_id, (0.0, set()))
        for key in keys | set(actuals):
            counter = self._live(key, now)
            if counter is None:
                continue
            counter.unhold(reservation_id)
            if actuals.get(key, 0) > 0:
                counter.add(actuals[key], now)

    async def flush(self) -> None:
        return None  # settle_soon applies at once

    async def release(self, reservation_id: str) -> None:
        self.settle_soon(reservation_id, {})

    async def usage(self, keys: Sequence[str]) -> dict[str, Level]:
        now = self._clock()
        result = {}
        for key in keys:
            counter = self._live(key, now)
            result[key] = counter.level(now) if counter else Level(0, 0)
        return result

    async def set_if_absent(
        self, key: str, used: int | Mapping[int, int], expires_at: float, slide: Slide | None = None
    ) -> bool:
        if slide is None and isinstance(used, Mapping):
            raise TypeError("a fixed counter is seeded with one amount")
        now = self._clock()
        counter = self._live(key, now)
        if counter is None:
            counter = self._counters[key] = _Counter(expires_at=expires_at, slide=slide)
        counter.slide = counter.slide or slide
        counter.level(now)  # drops buckets that slid out
        if counter.buckets if counter.slide else counter.has_used:
            return False
        counter.has_used = True
        if isinstance(used, Mapping):
            counter.buckets.update(used)
        elif slide is not None:
            counter.buckets[bucket_start(now, slide.bucket_s)] = used
        else:
            counter.used = used
        counter.expires_at = max(counter.expires_at, expires_at)
        return True

    async def mark_once(self, key: str, ttl_s: float) -> bool:
        now = self._clock()
        if self._marks.get(key, 0.0) > now:
            return False
        self._marks[key] = now + ttl_s
        return True

    async def close(self) -> None:
        return None

    def _counter(self, check: Check, now: float) -> _Counter:
        counter = self._live(check.key, now)
        if counter is None:
            counter = _Counter(expires_at=check.expires_at, slide=check.slide)
            self._counters[check.key] = counter
        return counter

    def _live(self, key: str, now: float) -> _Counter | None:
        counter = self._counters.get(key)
        if counter is not None and counter.expires_at <= now:
            del self._counters[key]
            return None
        return counter

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_EVERY_S
        for key in [k for k, c in self._counters.items() if c.expires_at <= now]:
            del self._counters[key]
        for rid in [r for r, (deadline, _) in self._reservations.items() if deadline <= now]:
            del self._reservations[rid]
        for key in [k for k, until in self._marks.items() if until <= now]:
            del self._marks[key]
