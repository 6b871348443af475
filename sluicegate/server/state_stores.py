"""The shared-state stores a gateway process needs: rate-limit and budget counters, breaker
state and sticky-session pins. In memory (one process), or all three in Redis through ONE
client (one connection pool) that the composition root creates, shares and closes.

Which client: the counter store's (`policy.counters.redis_store.connect`): a bounded pool
(64 connections, 1 s to get one), 1 s socket and connect timeouts, one resend of a command
that never reached Redis. The router's stores used to make their own pools with 2 s
timeouts; they fail open (circuits closed, no pins), so the shorter bound only makes a Redis
outage cost routing less.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sluicegate.errors import StoreUnavailable
from sluicegate.policy.counters.base import CounterStore
from sluicegate.router.breaker import BreakerStore
from sluicegate.router.sticky import StickyStore
from sluicegate.server.settings import Settings

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger("sluicegate")


@dataclass(frozen=True)
class StateStores:
    counters: CounterStore
    breakers: BreakerStore
    sticky: StickyStore


def redis_client(url: str) -> aioredis.Redis:
    """The one Redis client of a gateway process (its maker closes it)."""
    from sluicegate.policy.counters.redis_store import connect

    return connect(url)


def memory_stores(settings: Settings) -> StateStores:
    from sluicegate.policy.counters.memory import MemoryCounterStore
    from sluicegate.router.breaker import MemoryBreakerStore, MemoryStickyStore

    counters = MemoryCounterStore(max_keys_per_family=settings.max_counter_keys)
    return StateStores(counters, MemoryBreakerStore(), MemoryStickyStore())


def redis_stores(redis: aioredis.Redis, settings: Settings) -> StateStores:
    """All three stores on `redis`, which none of them closes. Routing keeps working
    without Redis (breakers closed, no pins); what admission does without Redis is the
    counter store's configured fail_open/fail_closed."""
    from sluicegate.policy.counters.redis_store import RedisCounterStore
    from sluicegate.policy.store_health import SEEDED_MARK
    from sluicegate.router.breaker import FailOpenBreakerStore, RedisBreakerStore
    from sluicegate.router.sticky import FailOpenStickyStore, RedisStickyStore

    prefix = settings.redis_prefix
    return StateStores(
        RedisCounterStore(
            redis,
            prefix,
            seeding_mark=SEEDED_MARK,  # budgets wait for their rebuild after a data loss
            lease_share=8 if settings.redis_leases else 0,
        ),
        FailOpenBreakerStore(
            RedisBreakerStore(redis, prefix=prefix + "breaker:"), on_error=_routing_store_down
        ),
        FailOpenStickyStore(
            RedisStickyStore(redis, prefix=prefix + "sticky:"), on_error=_routing_store_down
        ),
    )


def _routing_store_down(exc: StoreUnavailable) -> None:
    log.warning("routing state store unreachable, routing as if all circuits closed: %s", exc)
