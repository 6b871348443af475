"""In-process counters for the embedded single-process deployment and for tests.

Every method runs without awaiting in the middle, so on one event loop each call is as
atomic as the Redis script is across replicas.

Memory is bounded against clients that choose their own ids: the counters of a family
(base.py; one rule window, a counter per session, user or tag value) are kept in order of
last admission, and past `max_keys_per_family` the least recently admitted is dropped, its
scope value starting again from zero. `stats()` says how many counters there are and how
many were dropped; each family logs a warning when it first overflows, then at most once
a minute.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections import OrderedDict
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
MAX_KEYS_PER_FAMILY = 20_000  # ~6 MB of counters per rule window at the cap
_WARN_EVERY_S = 60.0
_HEAP_SLACK = 1024  # stale deadline entries tolerated before the heap is rebuilt

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Counter:
    expires_at: float
    slide: Slide | None = None
    used: int = 0
    buckets: dict[int, int] = field(default_factory=dict)
    reserved: int = 0  # held by reservations not yet settled
    cutoff: float | None = None  # a budget counter's (see base.py); None: it counted all
    seeded: bool = False  # its cutoff is fixed: a ledger part is computed for it
    ledger: int = 0  # the ledger part, of a fixed counter
    ledger_buckets: dict[int, int] = field(default_factory=dict)  # of a sliding one

    def level(self, now: float) -> Level:
        if self.slide is None:
            return Level(self.used + self.ledger, self.reserved)
        slide = self.slide
        self.buckets = {b: v for b, v in self.buckets.items() if bucket_alive(b, slide, now)}
        if self.ledger_buckets:
            self.ledger_buckets = {
                b: v for b, v in self.ledger_buckets.items() if bucket_alive(b, slide, now)
            }
            return Level(
                sum(self.buckets.values()) + sum(self.ledger_buckets.values()), self.reserved
            )
        return Level(sum(self.buckets.values()), self.reserved)

    def add(self, amount: int, now: float) -> None:
        if self.slide is None:
            self.used += amount
        else:
            start = bucket_start(now, self.slide.bucket_s)
            self.buckets[start] = self.buckets.get(start, 0) + amount


@dataclass(slots=True)
class _Reservation:
    deadline: float
    holds: list[tuple[str, _Counter, int]]  # key, counter, amount held
    arrived: float  # when its request arrived


@dataclass(slots=True)
class _Family:
    """A family's keys, least recently admitted first."""

    keys: OrderedDict[str, None] = field(default_factory=OrderedDict)
    evicted: int = 0
    warned_at: float = float("-inf")
    evicted_at_warning: int = 0


class MemoryCounterStore:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        max_keys_per_family: int = MAX_KEYS_PER_FAMILY,
    ):
        self._clock = clock
        self._max_keys = max_keys_per_family
        self._families: dict[str, _Family] = {}
        self._counters: dict[str, _Counter] = {}
        self._reservations: dict[str, _Reservation] = {}
        self._deadlines: list[tuple[float, str]] = []  # heap: when reservations lapse
        self._marks: dict[str, float] = {}
        self._next_sweep = 0.0

    async def admit(
        self, checks: Sequence[Check], reservation_id: str, ttl_s: float, arrived_at: float = 0.0
    ) -> AdmitResult:
        now = self._clock()
        self._sweep(now)
        if self._deadlines and self._deadlines[0][0] <= now:
            self._drop_lapsed(now)
        counters = []
        for check in checks:
            counter = self._counters.get(check.key)
            if counter is None or counter.expires_at <= now:
                counter = self._counters[check.key] = _Counter(check.expires_at, check.slide)
            if check.family is not None:
                self._touch(check.family, check.key, now)
            if check.ledger and not counter.seeded:  # the earliest arrival, until seeded
                arrived = arrived_at or now
                if counter.cutoff is None or arrived < counter.cutoff:
                    counter.cutoff = arrived
            counters.append(counter)
        levels = tuple([counter.level(now) for counter in counters])
        for index, (check, level) in enumerate(zip(checks, levels)):
            if level.used + level.reserved + check.amount > check.limit:
                return AdmitResult(ok=False, levels=levels, failed_index=index)
        self._unhold(reservation_id)  # admitted again under the same id: replaces it
        deadline = now + ttl_s
        holds = []
        for check, counter in zip(checks, counters):
            counter.reserved += check.amount
            holds.append((check.key, counter, check.amount))
            # a rolling counter's expiry moves on with every check; a hold outlives neither
            expires_at = check.expires_at if check.expires_at > deadline else deadline
            if counter.expires_at < expires_at:
                counter.expires_at = expires_at
        self._reservations[reservation_id] = _Reservation(deadline, holds, arrived_at or now)
        heapq.heappush(self._deadlines, (deadline, reservation_id))
        if len(self._deadlines) > 2 * len(self._reservations) + _HEAP_SLACK:
            self._compact_deadlines()
        return AdmitResult(ok=True, levels=levels)

    async def settle(self, reservation_id: str, actuals: Mapping[str, int]) -> None:
        self.settle_soon(reservation_id, actuals)

    def settle_soon(self, reservation_id: str, actuals: Mapping[str, int]) -> None:
        now = self._clock()
        reservation = self._reservations.pop(reservation_id, None)
        named = 0
        if reservation is not None:
            for key, counter, amount in reservation.holds:
                counter.reserved -= amount
                actual = actuals.get(key)
                if actual is None:
                    continue
                named += 1
                if (
                    actual > 0
                    and self._counters.get(key) is counter
                    and counter.expires_at > now
                    and (counter.cutoff is None or reservation.arrived >= counter.cutoff)
                ):
                    counter.add(actual, now)
        if named < len(actuals):  # counters it did not hold (lapsed, or another's)
            held = {key for key, _, _ in reservation.holds} if reservation else set()
            self.charge_soon(reservation_id, {k: n for k, n in actuals.items() if k not in held}, 0)

    def charge_soon(
        self, reservation_id: str, actuals: Mapping[str, int], admitted_at: float
    ) -> None:
        now = self._clock()
        for key, amount in actuals.items():
            counter = self._live(key, now)
            if (
                amount > 0
                and counter is not None
                and (counter.cutoff is None or admitted_at >= counter.cutoff)
            ):
                counter.add(amount, now)

    async def flush(self) -> None:
        return None  # settle_soon applies at once

    async def release(self, reservation_id: str) -> None:
        self._unhold(reservation_id)

    async def usage(self, keys: Sequence[str]) -> dict[str, Level]:
        now = self._clock()
        self._drop_lapsed(now)
        result = {}
        for key in keys:
            counter = self._live(key, now)
            result[key] = counter.level(now) if counter else Level(0, 0)
        return result

    async def cutoff(self, key: str, expires_at: float, slide: Slide | None = None) -> str:
        now = self._clock()
        counter = self._live(key, now)
        if counter is None:
            counter = self._counters[key] = _Counter(expires_at=expires_at, slide=slide)
            counter.cutoff = now
        counter.seeded = True  # fixed: earlier arrivals admitted from now on are the ledger's
        return "0" if counter.cutoff is None else repr(counter.cutoff)

    async def seed(
        self,
        key: str,
        cutoff: str,
        used: int | Mapping[int, int],
        expires_at: float,
        slide: Slide | None = None,
    ) -> int:
        now = self._clock()
        counter = self._live(key, now)
        if counter is None or counter.cutoff is None or repr(counter.cutoff) != cutoff:
            return -1
        counter.expires_at = max(counter.expires_at, expires_at)
        if isinstance(used, int):
            if slide is not None:
                used = {bucket_start(now, slide.bucket_s): used}
            else:
                grew = max(0, used - counter.ledger)
                counter.ledger += grew
                return grew
        if counter.slide is None:
            raise TypeError("a fixed counter is seeded with one amount")
        grew, mine = 0, counter.ledger_buckets
        for start, amount in used.items():
            if bucket_alive(start, counter.slide, now) and amount > mine.get(start, 0):
                grew += amount - mine.get(start, 0)
                mine[start] = amount
        return grew

    async def mark_once(self, key: str, ttl_s: float) -> bool:
        now = self._clock()
        if self._marks.get(key, 0.0) > now:
            return False
        self._marks[key] = now + ttl_s
        return True

    async def marked(self, key: str) -> bool:
        return self._marks.get(key, 0.0) > self._clock()

    async def close(self) -> None:
        return None

    def stats(self) -> dict[str, int]:
        """Counters held, and those dropped at a family's cap since start."""
        return {
            "keys": len(self._counters),
            "evicted": sum(f.evicted for f in self._families.values()),
            "max_keys_per_family": self._max_keys,
        }

    def _touch(self, name: str, key: str, now: float) -> None:
        """Mark `key` most recently admitted in its family; past the cap, drop the least
        recently admitted (a reservation it held settles harmlessly: see settle_soon)."""
        family = self._families.get(name)
        if family is None:
            family = self._families[name] = _Family()
        keys = family.keys
        if key in keys:
            keys.move_to_end(key)
            return
        keys[key] = None
        while len(keys) > self._max_keys:
            oldest, _ = keys.popitem(last=False)
            if self._counters.pop(oldest, None) is not None:
                family.evicted += 1
        if family.evicted > family.evicted_at_warning and now - family.warned_at >= _WARN_EVERY_S:
            log.warning(
                "rate-limit counters of %s are at their cap of %d distinct values: %d "
                "dropped so far (least recently used first; those values start again from 0)",
                name,
                self._max_keys,
                family.evicted,
            )
            family.warned_at, family.evicted_at_warning = now, family.evicted

    def _unhold(self, reservation_id: str) -> None:
        reservation = self._reservations.pop(reservation_id, None)
        if reservation is not None:
            for _, counter, amount in reservation.holds:
                counter.reserved -= amount

    def _compact_deadlines(self) -> None:
        """Settled reservations leave their deadline in the heap until it passes (600 s):
        at thousands of requests a second that is millions of entries. Rebuilt from the
        live reservations once most entries are stale: amortised O(1) per admission."""
        self._deadlines = [(r.deadline, rid) for rid, r in self._reservations.items()]
        heapq.heapify(self._deadlines)

    def _drop_lapsed(self, now: float) -> None:
        """Release reservations whose deadline has passed (their holder never settled)."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            deadline, reservation_id = heapq.heappop(deadlines)
            reservation = self._reservations.get(reservation_id)
            if reservation is not None and reservation.deadline == deadline:
                self._unhold(reservation_id)

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
        for family in self._families.values():  # keys whose counters are gone
            for key in [k for k in family.keys if k not in self._counters]:
                del family.keys[key]
        for key in [k for k, until in self._marks.items() if until <= now]:
            del self._marks[key]
