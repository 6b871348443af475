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
