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

Capacity leases (redis_lease.py; on unless `lease_share=0`): an admission that goes to
Redis also asks for a lease on each counter it has none on (or one running short); the
script grants a share of what is still free, held in Redis as a reservation of the store's
own. Admissions fitting in the leases of all their checks are then served with no Redis
call, and so are their settlements; a background task writes what they consumed every
`lease_flush_s` and keeps the leases alive, so used + reserved stays within every limit
across replicas. A lease counts as `reserved` until it is returned (idle for
`lease_idle_s`, or at `close`) or lapses (`lease_ttl_s` after its replica stopped). Small
limits (below `lease_share * lease_min` admissions' worth) never lease: they stay exact.
`flush` waits for the leases' consumption too.

Budget spend and the ledger (the contract in base.py): a budget counter's hash holds its
cutoff `t` (an arrival time: the earliest admitted into a new counter, until `cutoff`
fixes it (`s`) or makes the counter during a rebuild) and its ledger part `l` (fixed) or
`l:<bucket>` (sliding); `used` is that plus `u` / `b:<bucket>`. A Redis that lost its
data (restarted empty) has lost the seeding mark the engine sets after a rebuild too,
and admit.lua refuses every admission with a budget check while the mark is missing
(`StoreUnseeded`, nothing reserved): no budget admits against an empty counter. The
engine rebuilds at once: it asks each counter's cutoff (creating it), sums the ledger
for the requests that arrived before it and raises `l` to that (seed.lua: a maximum, so
replicas seeding at once or a later pass agree), then sets the mark. Settlements carry
their request's arrival time: one that arrived before the cutoff (in flight when Redis
lost its data, or waiting for the rebuild) is not added, the ledger part holds it
(passes repeated for a while after a rebuild pick up rows that land late). So the
counter ends at the ledger's spend plus what is in flight. One approximation, towards
counting more: what admissions served from a lease consumed is added whatever their
arrival (a lease flush carries sums), so a request that arrived before a cutoff and was
served from a lease after it, or from a lease Redis lost, counts in both parts.

Outages: a settlement whose call failed (Redis unreachable), and consumption admitted
with no reservation while it was (fail_open, `charge_soon`), go to a journal of at most
`JOURNAL_MAX` entries, sent again after the next successful call (or ping: the engine's
store check). The same rule applies: if Redis kept its data they are added; if it lost
it they are in the ledger part. Entries past the bound are dropped, counted and logged
(the ledger keeps their rows). A settlement sent again counts only where its
reservation's hold is still in Redis (its first call may have been applied before the
connection broke); a charge has no hold to tell by: one whose failed call was applied
all the same counts twice. And a reservation held past its ttl (an outage longer than
`reservation_ttl_s`) is not counted on replay.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError, RedisError

from sluicegate.errors import StoreUnavailable, StoreUnseeded
from sluicegate.policy.counters.base import AdmitResult, Check, Level, Slide
from sluicegate.policy.counters.redis_batch import Coalescer, Keys
from sluicegate.policy.counters.redis_lease import Ask, LeaseBook

T = TypeVar("T")
log = logging.getLogger(__name__)
HASH_TAG = "{sg}"
HELD_MAX = 100_000  # reservations whose keys a store remembers (older ones: a second call)
JOURNAL_MAX = 100_000  # settlements kept while Redis is unreachable (see the docstring)
MARK_PREFIX = "m:"  # mark_once keys: `{base}m:<key>`


@dataclass(slots=True)
class _Admission:
    reservation_id: str
    ttl_s: float
    logical: list[str]  # its checks' keys
    amounts: list[int]  # and amounts
    packed: list[Any]  # its entry in the script's batch argument (KEYS positions to add)
    asks: list[Ask]  # leases asked for along with it
    ledger: bool  # a check of it needs the seeding mark
    arrived: str  # when its request arrived (unix seconds)


@dataclass(slots=True)
class _Settlement:
    now: str
    reservation_id: str
    actuals: dict[str, int]  # logical key -> amount (>= 0; 0 releases)
    arrived: str = "0"  # when its request arrived (unix seconds; "0": unknown)
    held_only: bool = False  # sent again: counts only where its hold is still in Redis
    charge: bool = False  # admitted with no reservation (charge_soon)


def _script(name: str) -> str:
    lua = resources.files("sluicegate.policy") / "lua"
    return (lua / "lib.lua").read_text() + "\n" + (lua / f"{name}.lua").read_text()


def connect(redis_url: str, *, timeout_s: float = 1.0, max_connections: int = 64) -> aioredis.Redis:
    """A client fit for the counter scripts (and shareable with the router's stores):
    a bounded pool that waits at most `timeout_s` for a free connection, the same bound on
    every socket read and connect, and one resend of a command that never reached Redis."""
    pool = aioredis.BlockingConnectionPool.from_url(
        redis_url,
        max_connections=max_connections,
        timeout=timeout_s,  # waiting for a free connection
        decode_responses=True,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        # Resend only what never reached Redis (a broken pooled connection): a call
        # that timed out may still run, and scripts must run once.
        retry=Retry(NoBackoff(), 1, supported_errors=(ConnectionError,)),
    )
    return aioredis.Redis.from_pool(pool)


class RedisCounterStore:
    def __init__(
        self,
        redis: str | aioredis.Redis,
        prefix: str = "sluice:",
        *,
        seeding_mark: str | None = None,
        clock: Callable[[], float] = time.time,
        timeout_s: float = 1.0,
        max_connections: int = 64,
        admit_batch: int = 128,
        settle_batch: int = 256,
        lease_share: int = 8,
        lease_max: int = 256,
        lease_min: int = 16,
        lease_ttl_s: float = 30.0,
        lease_flush_s: float = 0.05,
        lease_idle_s: float = 1.0,
    ):
        """`redis`: a URL (the store makes its own client with `connect` and closes it) or
        a client from `connect` that its maker closes (the composition root shares one with
        the router's stores; `timeout_s` and `max_connections` are then the client's).
        `seeding_mark`: the `mark_once` key set once budget spend is rebuilt from the
        ledger; while it is missing, admissions with a budget check raise StoreUnseeded
        (None: never). lease_share 0 turns capacity leases off (every admission and
        settlement goes to Redis); see redis_lease.py and admit.lua for the others."""
        self._owned = isinstance(redis, str)
        self._redis = (
            connect(redis, timeout_s=timeout_s, max_connections=max_connections)
            if isinstance(redis, str)
            else redis
        )
        self._base = f"{prefix}{HASH_TAG}:"
        self._mark = f"{self._base}{MARK_PREFIX}{seeding_mark}" if seeding_mark else None
        self._clock = clock
        self._admit = self._redis.register_script(_script("admit"))
        self._settle = self._redis.register_script(_script("settle"))
        self._usage = self._redis.register_script(_script("usage"))
        self._seed = self._redis.register_script(_script("seed"))
        self._cutoff = self._redis.register_script(_script("cutoff"))
        self._lease = self._redis.register_script(_script("lease"))
        self.leases = (
            LeaseBook(
                lambda keys, args: self._call(self._lease(keys, args)),
                clock,
                self._base,
                share=lease_share,
                max_=lease_max,
                min_=lease_min,
                ttl_s=lease_ttl_s,
                flush_s=lease_flush_s,
                idle_s=lease_idle_s,
            )
            if lease_share > 0
            else None
        )
        self._lease_args: list[str | int] = [
            repr(float(lease_ttl_s)),
            lease_share,
            lease_max,
            lease_min,
        ]
        # id -> keys, amounts, monotonic deadline, when its request arrived
        self._held: dict[str, tuple[tuple[str, ...], tuple[int, ...], float, str]] = {}
        self._admissions: Coalescer[_Admission, AdmitResult] = Coalescer(
            self._admit_batch, admit_batch, "admission", abandoned=self._abandoned
        )
        self._settlements: Coalescer[_Settlement, None] = Coalescer(
            self._settle_batch, settle_batch, "settlement", failed=self._keep
        )
        self._journal: deque[_Settlement] = deque()  # not applied: Redis was unreachable
        self.journal_dropped = 0  # settlements the journal had no room for
        self.admit_calls = 0  # admit script calls made (one per batch)
        self.settle_calls = 0  # settle script calls made (batches, plus their follow-ups)

    @property
    def lease_calls(self) -> int:
        """lease.lua calls made (flushes and returns of leases)."""
        return self.leases.calls if self.leases else 0

    async def admit(
        self, checks: Sequence[Check], reservation_id: str, ttl_s: float, arrived_at: float = 0.0
    ) -> AdmitResult:
        leases, asks = self.leases, []
        if leases is not None:
            served = leases.admit(checks, reservation_id, ttl_s)
            if served is not None:
                return served
            asks = leases.asks(checks)
        logical, packed, ledger = [], [], False
        for c in checks:
            slide = c.slide or Slide(0, 0)
            logical.append(c.key)
            ledger = ledger or c.ledger
            packed.append(
                [
                    c.key,
                    _arg(c.limit),
                    _arg(c.amount),
                    repr(c.expires_at),
                    _arg(slide.window_s),
                    _arg(slide.bucket_s),
                    int(c.ledger),
                ]
            )
        now = repr(self._clock())
        entry = [now, reservation_id, repr(float(ttl_s)), packed]
        arrived = repr(arrived_at) if arrived_at else now
        try:
            result = await self._admissions.call(
                _Admission(
                    reservation_id,
                    ttl_s,
                    logical,
                    [c.amount for c in checks],
                    entry,
                    asks,
                    ledger,
                    arrived,
                )
            )
        finally:
            if asks and leases is not None:
                leases.asked(asks)
        if not result.ok and leases is not None:
            # Refused: what is left of the limit may be in leases, ours among them (a burst
            # is refused by Redis while the leases its first admissions were granted sit
            # here unused). Capacity we hold is ours to admit against.
            served = leases.admit(checks, reservation_id, ttl_s)
            if served is not None:
                return served
        return result

    async def settle(self, reservation_id: str, actuals: Mapping[str, int]) -> None:
        if self.leases is None or not self.leases.settle(reservation_id, actuals):
            await self._settlements.call(self._settlement(reservation_id, actuals))

    def settle_soon(self, reservation_id: str, actuals: Mapping[str, int]) -> None:
        if self.leases is None or not self.leases.settle(reservation_id, actuals):
            self._settlements.put(self._settlement(reservation_id, actuals))

    async def flush(self) -> None:
        await self._settlements.wait_idle()
        if self.leases is not None:
            await self.leases.flush()

    def charge_soon(
        self, reservation_id: str, actuals: Mapping[str, int], admitted_at: float
    ) -> None:
        entries = {key: int(amount) for key, amount in actuals.items() if amount > 0}
        if entries:
            charge = _Settlement(
                repr(self._clock()), reservation_id, entries, repr(admitted_at), charge=True
            )
            self._settlements.put(charge)

    def _settlement(self, reservation_id: str, actuals: Mapping[str, int]) -> _Settlement:
        entries = {key: max(0, int(amount)) for key, amount in actuals.items()}
        known = self._held.pop(reservation_id, None)
        if known is None:
            return _Settlement(repr(self._clock()), reservation_id, entries)
        for key in known[0]:
            entries.setdefault(key, 0)
        if self.leases is not None:  # consumption beyond the reservation: see overshot
            self.leases.overshot(known[0], known[1], entries)
        return _Settlement(repr(self._clock()), reservation_id, entries, known[3])

    def _keep(self, settlement: _Settlement) -> None:
        """A settlement whose call failed: journaled, sent again after a successful call
        (one of a reservation: counted only if its hold is still there, as the failed call
        may have been applied before the connection broke)."""
        settlement.held_only = not settlement.charge
        if len(self._journal) < JOURNAL_MAX:
            self._journal.append(settlement)
            return
        if self.journal_dropped % 10_000 == 0:
            log.warning(
                "counter store (Redis): outage journal full (%d): settlements dropped, "
                "their spend is in the ledger only",
                JOURNAL_MAX,
            )
        self.journal_dropped += 1

    def _replay(self) -> None:
        """Redis answers again: send the journal (one batch at a time, in order)."""
        journal = self._journal
        for _ in range(min(len(journal), self._settlements.limit)):
            self._settlements.put(journal.popleft())

    async def release(self, reservation_id: str) -> None:
        if self.leases is None or not self.leases.release(reservation_id):
            await self._settlements.call(self._release_of(reservation_id))

    async def usage(self, keys: Sequence[str]) -> dict[str, Level]:
        if not keys:
            return {}
        flat = await self._call(
            self._usage([k for key in keys for k in self._counter_keys(key)], [repr(self._clock())])
        )
        return {
            key: Level(int(flat[i]), int(flat[i + 1]), int(flat[i + 2]))
            for key, i in zip(keys, range(0, len(flat), 3))
        }

    async def cutoff(self, key: str, expires_at: float, slide: Slide | None = None) -> str:
        slide = slide or Slide(0, 0)
        args: list[str | int] = [
            repr(self._clock()),
            repr(expires_at),
            slide.window_s,
            slide.bucket_s,
        ]
        return str(await self._call(self._cutoff(self._counter_keys(key), args)))

    async def seed(
        self,
        key: str,
        cutoff: str,
        used: int | Mapping[int, int],
        expires_at: float,
        slide: Slide | None = None,
    ) -> int:
        now = self._clock()
        args: list[Any] = [repr(now), repr(expires_at), cutoff]
        if slide is None:
            if isinstance(used, Mapping):
                raise TypeError("a fixed counter is seeded with one amount")
            args += [0, 0, int(used)]
        else:
            buckets = (
                used
                if isinstance(used, Mapping)
                else {int(now // slide.bucket_s * slide.bucket_s): used}
            )
            args += [slide.window_s, slide.bucket_s]
            for start, amount in buckets.items():
                args += [int(start), int(amount)]
        return int(await self._call(self._seed(self._counter_keys(key), args)))

    async def mark_once(self, key: str, ttl_s: float) -> bool:
        marked = self._redis.set(
            f"{self._base}{MARK_PREFIX}{key}", "1", nx=True, px=max(1, int(ttl_s * 1000))
        )
        return bool(await self._call(marked))

    async def marked(self, key: str) -> bool:
        return bool(await self._call(self._redis.exists(f"{self._base}{MARK_PREFIX}{key}")))

    async def ping(self) -> None:
        await self._call(self._redis.ping())
        if self._journal:  # back, and perhaps no traffic to notice it
            self._replay()

    def stats(self) -> dict[str, int]:
        """Redis holds the counters (each expires with its window); this process holds
        only its capacity leases."""
        return {"leases": self.leases.live if self.leases else 0}

    async def close(self) -> None:
        """Flush the queued admissions and settlements, return the leases, then close the
        connections (only a client this store made itself)."""
        await self._admissions.wait_idle()  # may queue releases (for cancelled callers)
        await self._settlements.wait_idle()
        if self.leases is not None:
            await self.leases.close()
        if self._owned:
            with contextlib.suppress(RedisError, OSError):
                await self._redis.aclose()

    def _remember(
        self, reservation_id: str, keys: list[str], amounts: list[int], ttl_s: float, arrived: str
    ) -> None:
        """Note the keys a reservation holds, so settling it takes one call. Entries go
        once their reservation would have expired (ids are admitted in ttl order)."""
        now, held = time.monotonic(), self._held
        while held:
            oldest = next(iter(held))
            if len(held) < HELD_MAX and held[oldest][2] > now:
                break
            del held[oldest]
        held[reservation_id] = (tuple(keys), tuple(amounts), now + ttl_s + 60, arrived)

    async def _admit_batch(self, batch: list[_Admission]) -> list[AdmitResult | Exception]:
        """One script call for the batch. Should it fail, every caller gets StoreUnavailable;
        a call that timed out may still have been applied: those reservations are dropped
        by Redis at their ttl (releasing them here could undo a retry under the same id)."""
        keys = Keys(self._base)
        packed = [
            [
                *a.packed,
                keys.reservation(a.reservation_id),
                [keys.counter(key) for key in a.logical],
                [
                    [i + 1, keys.reservation(lease.rid), lease.rid, int(lease.known)]
                    for i, lease, _ in a.asks
                ],
                a.arrived,
            ]
            for a in batch
        ]
        mark = keys.mark(self._mark) if self._mark and any(a.ledger for a in batch) else 0
        self.admit_calls += 1
        sent = time.monotonic()
        try:
            out = await self._call(
                self._admit(keys.keys, [orjson.dumps(packed), *self._lease_args, mark])
            )
        except StoreUnavailable:
            if self.leases is not None:
                self.leases.suspended = True
            raise
        if self.leases is not None:
            self.leases.suspended = False
        if self._journal:
            self._replay()
        results: list[AdmitResult | Exception] = []
        for a, (failed, flat, *grants) in zip(batch, out, strict=True):
            if failed == -1:  # a Redis error for this admission alone
                results.append(StoreUnavailable(f"counter store (Redis) unavailable: {flat}"))
                continue
            if failed == -2:  # the seeding mark is missing
                results.append(StoreUnseeded(f"counter store (Redis): {flat}"))
                continue
            levels = _levels(flat)
            if a.asks and self.leases is not None:  # here: a cancelled caller's lease counts too
                self.leases.granted(a.asks, grants[0] if grants else None, levels, sent)
            if failed:
                results.append(AdmitResult(ok=False, levels=levels, failed_index=int(failed) - 1))
            else:
                self._remember(a.reservation_id, a.logical, a.amounts, a.ttl_s, a.arrived)
                results.append(AdmitResult(ok=True, levels=levels))
        return results

    def _abandoned(self, admission: _Admission, result: AdmitResult | None) -> None:
        """An admission whose caller was cancelled meanwhile: nobody will settle it, so
        release it now (in the background) rather than hold capacity until its ttl. With
        its outcome unknown (cancelled during its call) it is released all the same:
        releasing nothing is harmless, and the script, sent first, runs first (were it
        to run after all, the ttl would drop the reservation)."""
        if result is None:
            self._settlements.put(
                _Settlement(
                    repr(self._clock()),
                    admission.reservation_id,
                    dict.fromkeys(admission.logical, 0),
                )
            )
        elif result.ok:
            self._settlements.put(self._release_of(admission.reservation_id))

    def _release_of(self, reservation_id: str) -> _Settlement:
        known = self._held.pop(reservation_id, None)
        return _Settlement(
            repr(self._clock()), reservation_id, dict.fromkeys(known[0], 0) if known else {}
        )

    async def _settle_batch(self, batch: list[_Settlement]) -> list[None | Exception]:
        """One script call for the batch, and one more for the reservations that still
        hold keys it did not name."""
        left = await self._settle_call(batch)
        if self._journal:
            self._replay()
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
        keys = Keys(self._base)
        packed = [
            [
                item.now,
                item.reservation_id,
                keys.reservation(item.reservation_id),
                [[key, str(n), keys.counter(key)] for key, n in item.actuals.items()],
                item.arrived,
                int(item.held_only),
            ]
            for item in batch
        ]
        self.settle_calls += 1
        return list(await self._call(self._settle(keys.keys, [orjson.dumps(packed)])))

    def _counter_keys(self, key: str) -> list[str]:
        return [f"{self._base}c:{key}", f"{self._base}z:{key}"]

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
