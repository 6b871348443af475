"""Capacity leases for the Redis counter store: admission served locally, backed by Redis.

A replica borrows a slice of a counter's free capacity and admits against it with no Redis
call. The slice is a reservation in Redis like any other (hash H `r`, sorted set Z,
reservation hash R), so `used + reserved <= limit` holds across replicas as it does for
per-request reservations, and a crashed replica's lease lapses at its deadline. Its id is
"lease:<store uuid>.<n>:<counter key>": one live lease per store and counter, `n` new for
each, so a lease being returned or found lost never shares its Redis hold with its
successor (their calls may run in either order).

Leases are granted by the admit script, along with an admission that went to Redis (a
share of what is left free, see admit.lua), and flushed by lease.lua from a background task
every `flush_s` while any lease lives: consumption settled locally moves to `used` and
shrinks the hold, the deadline moves forward, and the counter's level comes back. A lease
unused for `idle_s` with nothing in flight is returned (which also retires the leases of
fixed windows that rolled over: their keys are new). Grants and flushes only add to or take
from a hold and report what they changed, so the two may cross in flight; a flush whose
outcome is unknown (a timeout) is sent again as it was, and applied once.

Locally a lease has `held` (what Redis reserves for it), `inflight` (admitted from it, not
yet settled) and `pending` (settled, not yet flushed): an admission is served locally when
every one of its checks has a lease with `held - inflight - pending >= amount`, granted
under the same limit, whose deadline was pushed forward recently enough (while Redis is
unreachable no admission is served from leases: see `suspended`). A
lease Redis no longer holds (lapsed, or the data is gone) is dropped when a call finds out.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from sluicegate.errors import StoreUnavailable
from sluicegate.policy.counters.base import AdmitResult, Check, Level
from sluicegate.policy.counters.redis_batch import Keys

log = logging.getLogger(__name__)

Run = Callable[[list[str], list[Any]], Awaitable[Any]]  # lease.lua (KEYS, ARGV) -> reply


@dataclass(slots=True, eq=False)
class Lease:
    key: str
    rid: str
    limit: int  # the limit it was granted under; a check with another one goes to Redis
    held: int = 0
    inflight: int = 0
    pending: int = 0
    debt: int = 0  # overshoot already in `used` (see overshot), to take off the hold
    flushing: int = 0  # pending and debt sent under `seq`, until a reply says it is applied
    shrinking: int = 0
    seq: int = 0
    used: int = 0  # the counter's level as Redis last reported it
    reserved: int = 0
    last_use: float = 0.0  # monotonic, as are the times below
    valid_until: float = 0.0  # no local admission after: its Redis deadline draws near
    refresh_at: float = 0.0  # its deadline is pushed forward from then on
    retry_at: float = 0.0  # a grant was refused: not asked again before then
    known: bool = False  # Redis holds (or held) something for it
    asking: bool = False  # a grant is being asked for
    dead: bool = False  # returned or lost: no admissions from it, flushed till done

    @property
    def free(self) -> int:
        return self.held - self.inflight - self.pending - self.flushing - self.debt - self.shrinking

    def estimate(self) -> Level:
        return Level(self.used + self.pending + self.flushing, self.reserved)


Ask = tuple[int, Lease, int]  # (check index, lease, amount of the check)


class LeaseBook:
    def __init__(
        self,
        run: Run,
        clock: Callable[[], float],
        base: str,
        *,
        share: int,
        max_: int,
        min_: int,
        ttl_s: float,
        flush_s: float,
        idle_s: float,
        batch: int = 256,
    ):
        self.share, self.max, self.min, self.ttl_s = share, max_, min_, ttl_s
        self._run, self._clock, self._base = run, clock, base
        self._flush_s, self._idle_s, self._batch = flush_s, idle_s, batch
        self._id = f"lease:{uuid.uuid4().hex}."
        self._serial = itertools.count(1)
        self._leases: dict[str, Lease] = {}  # counter key -> its live lease
        self._dead: set[Lease] = set()  # still to flush, return, or wait for
        self._served: dict[str, tuple[float, list[tuple[Lease, int]]]] = {}  # id -> deadline
        self._lock = asyncio.Lock()  # one flush call at a time
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._down = False  # the last flush failed (logged once per outage)
        # A Redis call failed: nothing is admitted from leases until one succeeds, so the
        # engine's fail_open / fail_closed applies at once, as without leases.
        self.suspended = False
        self.calls = 0  # lease.lua calls made

    @property
    def live(self) -> int:
        """Leases this replica holds now (one per counter it admits locally)."""
        return len(self._leases)

    def held(self, key: str) -> int:
        """What this store's live lease on `key` holds in Redis (0: none)."""
        lease = self._leases.get(key)
        return lease.held if lease else 0

    # --- the request path -----------------------------------------------------------
    def admit(
        self, checks: Sequence[Check], reservation_id: str, ttl_s: float
    ) -> AdmitResult | None:
        """Serve the admission from leases, or None when any check has none able to."""
        if self.suspended:
            return None
        now = time.monotonic()
        taken: list[tuple[Lease, int]] = []
        for c in checks:
            lease = self._leases.get(c.key)
            if (
                lease is None
                or lease.free < c.amount
                or lease.limit != c.limit
                or now >= lease.valid_until
            ):
                for lease, amount in taken:
                    lease.inflight -= amount
                return None
            lease.inflight += c.amount  # at once: a key twice in checks needs both amounts
            taken.append((lease, c.amount))
        for lease, _ in taken:
            lease.last_use = now
        self._served[reservation_id] = (now + ttl_s, taken)
        return AdmitResult(ok=True, levels=tuple([lease.estimate() for lease, _ in taken]))

    def asks(self, checks: Sequence[Check]) -> list[Ask]:
        """The leases to ask for along with an admission going to Redis: for checks with
        none, or one running short; one ask per lease at a time."""
        now = time.monotonic()
        asks = []
        for i, c in enumerate(checks):
            lease = self._leases.get(c.key)
            if lease is not None and lease.limit != c.limit:  # the policy changed
                self._retire(lease)
                lease = None
            if lease is None:
                lease = Lease(
                    c.key, f"{self._id}{next(self._serial)}:{c.key}", c.limit, last_use=now
                )
                self._leases[c.key] = lease
                self._start()
            if (
                lease.asking
                or now < lease.retry_at
                or (lease.free >= max(1, c.amount) * self.min and now < lease.valid_until)
            ):
                continue
            lease.asking = True
            asks.append((i, lease, c.amount))
        return asks

    def asked(self, asks: list[Ask]) -> None:
        """The admission that asked is answered (or failed, or was cancelled)."""
        for _, lease, _ in asks:
            lease.asking = False

    def granted(
        self, asks: list[Ask], grants: Sequence[Any] | None, levels: tuple[Level, ...], sent: float
    ) -> None:
        """Record the script's answer to `asks` (`sent`: monotonic time the call went).
        `grants` None: the admission was refused, so nothing was granted."""
        for k, (i, lease, amount) in enumerate(asks):
            grant = 0 if grants is None else int(grants[k])
            if grant < 0:
                self._lost(lease)
                continue
            level = levels[i]  # before the admission
            lease.used = level.used
            lease.reserved = level.reserved + (0 if grants is None else amount + grant)
            if grant == 0:
                lease.retry_at = time.monotonic() + self._idle_s
                continue
            lease.held += grant
            lease.known = True
            self._renewed(lease, sent)
            if lease.dead:  # retired meanwhile: what it was granted goes back
                self._dead.add(lease)
                self._start()

    def settle(self, reservation_id: str, actuals: Mapping[str, int]) -> bool:
        """Settle locally a reservation served from leases; False if it was not."""
        served = self._served.pop(reservation_id, None)
        if served is None:
            return False
        for lease, amount in served[1]:
            lease.inflight -= amount
            lease.pending += max(0, int(actuals.get(lease.key, 0)))
        return True

    def release(self, reservation_id: str) -> bool:
        return self.settle(reservation_id, {})

    def overshot(
        self, keys: Sequence[str], amounts: Sequence[int], actuals: Mapping[str, int]
    ) -> None:
        """A reservation of this store settled through Redis consumed more than it held
        (worst cases are estimates; an unpriced model holds one micro-dollar): a lease on
        the counter gives back as much, so admissions stop, locally as in Redis, once the
        limit is spent."""
        for key, amount in zip(keys, amounts):
            extra = actuals.get(key, 0) - amount
            lease = self._leases.get(key)
            if extra > 0 and lease is not None:
                lease.debt += extra

    # --- flushing -------------------------------------------------------------------
    async def flush(self) -> None:
        """Return once the consumption settled so far is in Redis (or its call failed)."""
        async with self._lock:
            await self._flush(closing=False)

    async def close(self) -> None:
        """Flush, and return every lease (in flight or not: nobody will settle them)."""
        async with self._lock:
            self._closed = True
            task = self._task
            if task is not None and task.get_loop() is asyncio.get_running_loop():
                task.cancel()  # asleep, or waiting for the lock we hold
            await self._flush(closing=True)
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            await asyncio.gather(task, return_exceptions=True)

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        task = self._task
        if not self._closed and (task is None or task.done() or task.get_loop() is not loop):
            self._task = loop.create_task(self._tick())

    async def _tick(self) -> None:
        while not self._closed and (self._leases or self._dead):
            await asyncio.sleep(self._flush_s)
            async with self._lock:
                if self._closed:
                    return
                try:
                    await self._flush(closing=False)
                except Exception:  # a bug: logged, and the leases still lapse in Redis
                    log.exception("counter store (Redis): lease flush failed")

    async def _flush(self, closing: bool) -> None:
        now = time.monotonic()
        self._expire(now)
        due = self._due(now, closing)
        for start in range(0, len(due), self._batch):
            if not await self._send(due[start : start + self._batch]):
                return  # Redis is down: the rest waits for the next tick

    def _expire(self, now: float) -> None:
        """Reservations served from leases and not settled within their ttl are dropped,
        as Redis drops per-request ones (ids come in ttl order: the oldest first)."""
        served = self._served
        while served:
            oldest = next(iter(served))
            deadline, taken = served[oldest]
            if deadline > now:
                break
            del served[oldest]
            for lease, amount in taken:
                lease.inflight -= amount

    def _due(self, now: float, closing: bool) -> list[tuple[Lease, bool]]:
        """(lease, return it) for each lease with consumption to flush, a deadline to push
        forward, or a hold to return."""
        due = []
        for lease in list(self._leases.values()):
            idle = lease.inflight == 0 and not lease.asking and now - lease.last_use >= self._idle_s
            if idle or closing:
                self._retire(lease)
            elif (
                lease.pending
                or lease.debt
                or lease.flushing
                or lease.shrinking
                or (lease.known and now >= lease.refresh_at)
            ):
                due.append((lease, False))
        for lease in list(self._dead):
            back = lease.inflight == 0 or closing  # holds in flight are returned when done
            if not (lease.known or lease.pending or lease.flushing or lease.inflight):
                self._dead.discard(lease)
            elif (
                lease.pending
                or lease.debt
                or lease.flushing
                or lease.shrinking
                or (lease.known and (back or now >= lease.refresh_at))
            ):
                due.append((lease, back))
        return due

    async def _send(self, due: list[tuple[Lease, bool]]) -> bool:
        keys = Keys(self._base)
        packed = []
        for lease, back in due:
            if not (lease.flushing or lease.shrinking):  # else: sent before, outcome unknown
                lease.flushing, lease.pending = lease.pending, 0
                lease.shrinking, lease.debt = lease.debt, 0
                lease.seq += 1
            packed.append(
                [
                    lease.rid,
                    lease.key,
                    keys.counter(lease.key),
                    keys.reservation(lease.rid),
                    str(lease.flushing),
                    str(lease.flushing + lease.shrinking),
                    int(back),
                    int(lease.known),
                    lease.seq,
                ]
            )
        sent = time.monotonic()
        self.calls += 1
        try:
            argv = orjson.dumps([repr(self._clock()), repr(self.ttl_s), packed])
            rows = await self._run(keys.keys, [argv])
        except BaseException as exc:
            # Perhaps applied all the same (a timeout): sent again as it was, under the same
            # seq, which the script applies once (cancelled: the loop is ending).
            if not isinstance(exc, StoreUnavailable):
                raise
            if not self._down:
                log.warning("counter store (Redis): leases not flushed, retrying: %s", exc)
            self._down = self.suspended = True
            return False
        if self._down:
            log.warning("counter store (Redis): leases flushed again")
            self._down = False
        self.suspended = False
        lost = 0
        for (lease, back), (state, change, *level) in zip(due, rows, strict=True):
            lease.flushing = lease.shrinking = 0
            if state == -1:  # a Redis error for this lease alone: its consumption is lost
                log.warning("counter store (Redis): lease on %s not flushed: %s", lease.key, change)
                self._lost(lease)
                continue
            lease.held += int(change)
            lease.used, lease.reserved = int(level[0]), int(level[1])
            if state:
                lost += 1
                self._lost(lease)
            elif back:
                lease.held, lease.known = 0, False
            else:
                self._renewed(lease, sent)
                if lease.used + lease.reserved > lease.limit and not lease.dead:
                    self._retire(lease)  # overspent elsewhere: admissions go to Redis
        if lost:
            log.warning("counter store (Redis): %d lease(s) lapsed or gone from Redis", lost)
        return True

    def _renewed(self, lease: Lease, sent: float) -> None:
        """Its Redis deadline was pushed to ttl after `sent`: admit locally for 3/4 of
        that (a margin for clocks and the call), push it again after 1/4."""
        lease.valid_until = sent + self.ttl_s * 0.75
        lease.refresh_at = sent + self.ttl_s * 0.25

    def _retire(self, lease: Lease) -> None:
        """No more admissions from it; what it holds goes back once none is in flight."""
        if self._leases.get(lease.key) is lease:
            del self._leases[lease.key]
        lease.dead = True
        if lease.known or lease.pending or lease.inflight:
            self._dead.add(lease)

    def _lost(self, lease: Lease) -> None:
        """Redis holds nothing for it any more: admissions go to Redis again (and may ask
        for a new lease); consumption still settled against it is flushed all the same."""
        lease.held, lease.known = 0, False
        self._retire(lease)
