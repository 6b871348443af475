"""The counter store contract shared by the in-memory and the Redis implementation.

A counter holds `used` (settled consumption) and `reserved` (held by admissions still in
flight). Amounts are integers: requests, tokens, or micro-dollars for budgets, so nothing
drifts. A counter is either fixed (one number per window; the window start is part of the
key and the counter expires after the window) or sliding (`Slide`: consumption kept in
time buckets, summed over the last `window_s` seconds; a bucket counts while any part of
it overlaps the window, so a rolling budget errs on the safe side).

`admit` is atomic over all its checks: either every check fits (`used + reserved +
amount <= limit`) and all are reserved under one reservation id, or nothing is reserved.
A reservation not settled or released within `ttl_s` is dropped by the store itself, so
a crashed replica never leaves capacity held forever. `settle` replaces what a
reservation held by what was actually consumed.

A store may also reserve capacity ahead of admissions and admit against it locally (the
Redis store's capacity leases): that capacity counts in `reserved` until the store gives
it back, the levels it answers those admissions with are its latest estimate, and the
settlements of admissions it served reach `used` a little later than `settle` returns;
`flush` waits for them.

A store that keeps counters in process memory bounds them: the counters of one `family`
(one rule window, one counter per scope value a client chooses: a session, a user, a
metadata tag) are capped, and past the cap the least recently admitted one is dropped, its
scope value starting again from zero (as nginx's `limit_req` zones do when full). A check
without a family (budgets, global rules) is never dropped. Redis bounds its keys itself:
each expires with its window.

Budget counters (`Check.ledger`) can be rebuilt from the ledger, correctly under traffic.
Their spend is split by the requests' arrival time (`admit`'s `arrived_at`, the ledger
row's ts) at the counter's cutoff: requests that arrived before it are counted by the
ledger part (raised by `seed` to the ledger's latest sum for them: seeding again, or from
several replicas at once, never counts a row twice), those that arrived at or after it
by settlements. A counter made by an admission takes the earliest arrival admitted into
it as its cutoff (a new window, or a new budget, whose earlier spend, if any, is in the
ledger) until a rebuild asks for it (`cutoff`), which fixes it; one made by a rebuild
(after the store lost its data) takes the rebuild's time. So whatever the order of
admissions, settlements and seeds, each request counts once and the counter ends at the
ledger's spend plus what is in flight. Consumption admitted with no reservation (the
store was unreachable: fail_open) is handed to `charge_soon` with its arrival time and
counted by the same rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import msgspec

NO_LIMIT = 10**15
"""A limit that never refuses: for checks that count but do not enforce (audit, exempt)."""


class Slide(msgspec.Struct, frozen=True):
    window_s: int
    bucket_s: int


class Check(msgspec.Struct, frozen=True):
    key: str
    limit: int
    amount: int
    expires_at: float  # unix seconds; the counter may be dropped after this
    slide: Slide | None = None
    family: str | None = None  # see the module docstring: None is never evicted
    ledger: bool = False  # a budget counter: rebuilt from the ledger (see above)


class Level(msgspec.Struct, frozen=True, array_like=True):
    used: int
    reserved: int
    leased: int = 0  # the part of `reserved` held by capacity leases (`usage` only)


class AdmitResult(msgspec.Struct, frozen=True):
    ok: bool
    levels: tuple[Level, ...]  # one per check, as the store saw it before this admission
    failed_index: int | None = None  # the first check that did not fit


class CounterStore(Protocol):
    async def admit(
        self, checks: Sequence[Check], reservation_id: str, ttl_s: float, arrived_at: float = 0.0
    ) -> AdmitResult:
        """Reserve every check or none; see the module docstring (`arrived_at`: when the
        request arrived, unix seconds; 0: now)."""
        ...

    async def settle(self, reservation_id: str, actuals: Mapping[str, int]) -> None:
        """Drop the reservation's holds and add `actuals` to `used` (keys missing from
        `actuals` are released; counters whose window has gone are left alone)."""
        ...

    def settle_soon(self, reservation_id: str, actuals: Mapping[str, int]) -> None:
        """`settle` for a caller that does not wait for it (the request path): applied at
        once or queued for the next group commit. Failures are logged, never raised."""
        ...

    async def flush(self) -> None:
        """Return once every settlement queued by `settle_soon` (or applied locally, see
        the module docstring) is applied (or failed)."""
        ...

    async def release(self, reservation_id: str) -> None: ...

    async def usage(self, keys: Sequence[str]) -> dict[str, Level]: ...

    def charge_soon(
        self, reservation_id: str, actuals: Mapping[str, int], admitted_at: float
    ) -> None:
        """Add consumption admitted without a reservation (the store was unreachable) for
        a request that arrived at `admitted_at`: to counters whose cutoff is not later.
        A store that cannot apply it now keeps it (bounded) until it can."""
        ...

    async def cutoff(self, key: str, expires_at: float, slide: Slide | None = None) -> str:
        """The budget counter's cutoff (unix seconds, as a string `seed` takes back);
        the counter is created with cutoff now if absent. "0": it counted everything."""
        ...

    async def seed(
        self,
        key: str,
        cutoff: str,
        used: int | Mapping[int, int],
        expires_at: float,
        slide: Slide | None = None,
    ) -> int:
        """Raise the counter's ledger part to `used`: the ledger's spend of requests that
        arrived in the window before `cutoff` (for a sliding counter, bucket start (unix
        seconds) -> amount). Returns what it grew by, -1 if the cutoff changed meanwhile."""
        ...

    async def mark_once(self, key: str, ttl_s: float) -> bool:
        """True the first time `key` is marked within `ttl_s` seconds, False after."""
        ...

    async def marked(self, key: str) -> bool:
        """Whether `key` is marked (by `mark_once`), without marking it."""
        ...

    async def close(self) -> None: ...

    def stats(self) -> dict[str, int]:
        """Figures for /readyz: counters held in process and any dropped at a cap."""
        ...


def bucket_start(now: float, bucket_s: int) -> int:
    return int(now // bucket_s * bucket_s)


def bucket_alive(start: int, slide: Slide, now: float) -> bool:
    return start + slide.bucket_s > now - slide.window_s
