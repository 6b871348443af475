"""Counter stores: the contract, an in-memory and a Redis implementation."""

from sluicegate.policy.counters.base import (
    NO_LIMIT,
    AdmitResult,
    Check,
    CounterStore,
    Level,
    Slide,
)
from sluicegate.policy.counters.memory import MemoryCounterStore

__all__ = [
    "NO_LIMIT",
    "AdmitResult",
    "Check",
    "CounterStore",
    "Level",
    "MemoryCounterStore",
    "Slide",
]


def redis_store(redis_url: str, prefix: str = "sluice:") -> CounterStore:
    """The Redis store, imported only when asked for."""
    from sluicegate.policy.counters.redis_store import RedisCounterStore

    return RedisCounterStore(redis_url, prefix)
