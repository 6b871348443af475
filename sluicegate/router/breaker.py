"""Per-target circuit breakers: the contract, and the one-process implementation.

    closed --(failure_threshold failures within window_seconds)--> open
    open   --(cooldown_seconds pass)--> half_open
    half_open: exactly one probe is admitted (claimed atomically, shared across replicas)
        probe succeeds -> closed          probe fails -> open again for a full cooldown

Failures are counted in a fixed window that starts at the first failure. A success outside
a probe changes nothing, so the happy path costs no write. Failures and successes of calls
that were already in flight when the circuit opened are ignored (only the probe decides).
`RedisBreakerStore` (in `redis_breaker`) keeps the same state in Redis for many replicas.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import msgspec

from sluicegate.router.routes import BreakerPolicy

StateName = Literal["closed", "open", "half_open"]
Admission = Literal["closed", "probe", "denied"]


class BreakerState(msgspec.Struct, frozen=True):
    state: StateName = "closed"
    open_until: float | None = None  # unix time the cooldown ends, while open


CLOSED = BreakerState()


class BreakerStore(Protocol):
    async def states(self, keys: Sequence[str]) -> list[BreakerState]:
        """The state of each key, in order; one round trip for all of them."""
        ...

    async def admit(self, key: str, policy: BreakerPolicy) -> Admission:
        """Before calling a target: `closed` (go), `probe` (go; this caller holds the
        half-open probe and must report its outcome with probe=True) or `denied`."""
        ...

    async def record_failure(self, key: str, policy: BreakerPolicy, *, probe: bool) -> BreakerState:
        ...

    async def record_success(self, key: str, policy: BreakerPolicy, *, probe: bool) -> None:
        ...


@dataclass
class _Entry:
    failures: int = 0
    window_ends: float = 0.0
    tripped: bool = False  # opened and not yet closed by a successful probe
    open_until: float = 0.0
    probe_until: float = 0.0  # a probe is claimed until this time


class MemoryBreakerStore:
    """Breakers for one process. `clock` is unix seconds (injectable for tests)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    async def states(self, keys: Sequence[str]) -> list[BreakerState]:
        return [self._state(self._entries.get(key)) for key in keys]

    async def admit(self, key: str, policy: BreakerPolicy) -> Admission:
        entry = self._entries.get(key)
        state = self._state(entry).state
        if entry is None or state == "closed":
            return "closed"
        now = self._clock()
        if state == "open" or entry.probe_until > now:
            return "denied"
        entry.probe_until = now + policy.probe_timeout_seconds
        return "probe"

    async def record_failure(self, key: str, policy: BreakerPolicy, *, probe: bool) -> BreakerState:
        entry = self._entries.setdefault(key, _Entry())
        now = self._clock()
        if probe:
            return self._open(entry, policy, now)
        if entry.tripped:
            return self._state(entry)
        if entry.window_ends <= now:
            entry.failures, entry.window_ends = 0, now + policy.window_seconds
        entry.failures += 1
        if entry.failures >= policy.failure_threshold:
            return self._open(entry, policy, now)
        return CLOSED

    async def record_success(self, key: str, policy: BreakerPolicy, *, probe: bool) -> None:
        if probe:
            self._entries.pop(key, None)

    def _open(self, entry: _Entry, policy: BreakerPolicy, now: float) -> BreakerState:
        entry.failures, entry.window_ends, entry.probe_until = 0, 0.0, 0.0
        entry.tripped, entry.open_until = True, now + policy.cooldown_seconds
        return BreakerState("open", entry.open_until)

    def _state(self, entry: _Entry | None) -> BreakerState:
        if entry is None or not entry.tripped:
            return CLOSED
        if entry.open_until > self._clock():
            return BreakerState("open", entry.open_until)
        return BreakerState("half_open")
