"""Per-target circuit breakers: the contract, and the one-process implementation.

    closed --(failure_threshold failures within window_seconds)--> open
    open   --(cooldown_seconds pass)--> half_open
    half_open: exactly one probe is admitted (claimed atomically, shared across replicas)
        probe succeeds -> closed          probe fails -> open again for a full cooldown

Failures are counted in a fixed window that starts at the first failure. A success outside
a probe changes nothing, so the happy path costs no write. Failures and successes of calls
that were already in flight when the circuit opened are ignored (only the probe decides).

    MemoryBreakerStore     one process (clock injectable)
    RedisBreakerStore      shared by every replica; one Lua script per transition
    FailOpenBreakerStore   wraps either: an unreachable store means "every circuit closed"

The sticky-session stores (`sticky`) are re-exported here: the composition root builds
both kinds of routing state in one place.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import msgspec
import redis.asyncio as aioredis

from sluicegate.errors import StoreUnavailable
from sluicegate.router.redis_support import client_for, text, translated
from sluicegate.router.routes import BreakerPolicy
from sluicegate.router.sticky import MemoryStickyStore, RedisStickyStore, StickyStore

__all__ = [
    "BreakerState",
    "BreakerStore",
    "FailOpenBreakerStore",
    "MemoryBreakerStore",
    "MemoryStickyStore",
    "RedisBreakerStore",
    "RedisStickyStore",
    "StickyStore",
]

StateName = Literal["closed", "open", "half_open"]
BreakerGate = Literal["closed", "probe", "denied"]  # what `admit` lets through


class BreakerState(msgspec.Struct, frozen=True):
    state: StateName = "closed"
    open_until: float | None = None  # unix time the cooldown ends, while open


CLOSED = BreakerState()


class BreakerStore(Protocol):
    async def states(self, keys: Sequence[str]) -> list[BreakerState]:
        """The state of each key, in order; one round trip for all of them."""
        ...

    async def admit(self, key: str, policy: BreakerPolicy) -> BreakerGate:
        """Before calling a target: `closed` (go), `probe` (go; this caller holds the
        half-open probe and must report its outcome with probe=True) or `denied`."""
        ...

    async def record_failure(
        self, key: str, policy: BreakerPolicy, *, probe: bool
    ) -> BreakerState: ...

    async def record_success(self, key: str, policy: BreakerPolicy, *, probe: bool) -> None: ...

    async def aclose(self) -> None: ...


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

    async def admit(self, key: str, policy: BreakerPolicy) -> BreakerGate:
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

    async def aclose(self) -> None:
        pass

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


# --- Redis ---------------------------------------------------------------------------
# Four keys per target, hash-tagged so they live in one Cluster slot:
#     {key}:f  failures in the current window (PX window_seconds, from the first failure)
#     {key}:o  open marker, PX cooldown_seconds: present = open, its PTTL = time left
#     {key}:t  tripped marker: opened and not yet closed by a successful probe
#     {key}:p  the half-open probe claim (SET NX PX probe_timeout_seconds)
# Expiry runs on Redis's clock, so replicas need not agree on the time. Each transition
# is one Lua script, so concurrent replicas cannot both claim the probe or double-open.

TRIPPED_TTL_SECONDS = 86400  # a breaker nobody probes for a day is forgotten (closed)
_GATES: dict[str, BreakerGate] = {"closed": "closed", "probe": "probe", "denied": "denied"}

_ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'closed' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'denied' end
if redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[1]) then return 'probe' end
return 'denied'
"""

_FAILURE = """
local function open()
  redis.call('DEL', KEYS[1], KEYS[4])
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
  return {'open', tonumber(ARGV[3])}
end
if ARGV[5] == '1' then return open() end
if redis.call('EXISTS', KEYS[3]) == 1 then
  local left = redis.call('PTTL', KEYS[2])
  if left > 0 then return {'open', left} end
  return {'half_open', 0}
end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if n >= tonumber(ARGV[1]) then return open() end
return {'closed', 0}
"""


class RedisBreakerStore:
    def __init__(self, redis: str | aioredis.Redis, *, prefix: str = "sluice:breaker:") -> None:
        self._redis, self._owned = client_for(redis)
        self._prefix = prefix
        self._admit = self._redis.register_script(_ADMIT)
        self._failure = self._redis.register_script(_FAILURE)

    async def states(self, keys: Sequence[str]) -> list[BreakerState]:
        async with translated("breaker states"):
            pipe = self._redis.pipeline(transaction=False)
            for key in keys:
                pipe.exists(self._key(key, "t"))
                pipe.pttl(self._key(key, "o"))
            replies = await pipe.execute()
        now = time.time()
        return [_state(replies[i], replies[i + 1], now) for i in range(0, len(replies), 2)]

    async def admit(self, key: str, policy: BreakerPolicy) -> BreakerGate:
        keys = [self._key(key, "t"), self._key(key, "o"), self._key(key, "p")]
        async with translated("breaker admit"):
            reply = await self._admit(keys=keys, args=[_ms(policy.probe_timeout_seconds)])
        return _GATES[text(reply)]

    async def record_failure(self, key: str, policy: BreakerPolicy, *, probe: bool) -> BreakerState:
        args = [
            policy.failure_threshold,
            _ms(policy.window_seconds),
            _ms(policy.cooldown_seconds),
            _ms(policy.cooldown_seconds + TRIPPED_TTL_SECONDS),
            "1" if probe else "0",
        ]
        async with translated("breaker failure"):
            name, left_ms = await self._failure(keys=self._keys(key), args=args)
        state = text(name)
        if state == "open":
            return BreakerState("open", time.time() + int(left_ms) / 1000)
        return BreakerState("half_open") if state == "half_open" else BreakerState()

    async def record_success(self, key: str, policy: BreakerPolicy, *, probe: bool) -> None:
        if not probe:
            return
        async with translated("breaker success"):
            await self._redis.delete(*self._keys(key))

    async def aclose(self) -> None:
        if self._owned:
            await self._redis.aclose()

    def _keys(self, key: str) -> list[str]:
        return [self._key(key, part) for part in ("f", "o", "t", "p")]

    def _key(self, key: str, part: str) -> str:
        return f"{self._prefix}{{{key}}}:{part}"


def _state(tripped: int, open_left_ms: int, now: float) -> BreakerState:
    if not tripped:
        return BreakerState()
    if open_left_ms > 0:
        return BreakerState("open", now + open_left_ms / 1000)
    return BreakerState("half_open")


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class FailOpenBreakerStore:
    """Wraps a store so that when it is unreachable routing carries on as if every circuit
    were closed (the gateway keeps serving; `on_error` feeds a metric or a log)."""

    def __init__(
        self, store: BreakerStore, *, on_error: Callable[[StoreUnavailable], None]
    ) -> None:
        self._store = store
        self._on_error = on_error

    async def states(self, keys: Sequence[str]) -> list[BreakerState]:
        try:
            return await self._store.states(keys)
        except StoreUnavailable as exc:
            self._on_error(exc)
            return [CLOSED for _ in keys]

    async def admit(self, key: str, policy: BreakerPolicy) -> BreakerGate:
        try:
            return await self._store.admit(key, policy)
        except StoreUnavailable as exc:
            self._on_error(exc)
            return "closed"

    async def record_failure(self, key: str, policy: BreakerPolicy, *, probe: bool) -> BreakerState:
        try:
            return await self._store.record_failure(key, policy, probe=probe)
        except StoreUnavailable as exc:
            self._on_error(exc)
            return CLOSED

    async def record_success(self, key: str, policy: BreakerPolicy, *, probe: bool) -> None:
        try:
            await self._store.record_success(key, policy, probe=probe)
        except StoreUnavailable as exc:
            self._on_error(exc)

    async def aclose(self) -> None:
        await self._store.aclose()
