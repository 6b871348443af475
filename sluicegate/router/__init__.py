"""Virtual models: routing, retries, fallbacks and circuit breakers.

documents   the `gateway-load-balancing-config` document (parts in `specs`)
compile     compile_routes: documents -> the router's table; compile_document: one
            document -> CompiledVirtualModel (plain data in `routes`)
plan        Router: model name + envelope -> RoutePlan (ordered candidates);
            Router.run(plan, call) -> AttemptsOutcome
attempts    run_attempts: the retry / fallback loop over a RoutePlan
breaker     BreakerStore contract, memory and Redis stores
latency     LatencyTracker; sticky: StickyStore (memory, Redis); status: /api/targets
"""

from sluicegate.router.attempts import AttemptsOutcome, run_attempts
from sluicegate.router.breaker import (
    BreakerStore,
    FailOpenBreakerStore,
    MemoryBreakerStore,
    RedisBreakerStore,
)
from sluicegate.router.compile import compile_document, compile_routes
from sluicegate.router.documents import LoadBalancingDocument
from sluicegate.router.latency import LatencyTracker
from sluicegate.router.plan import Router
from sluicegate.router.routes import CompiledVirtualModel, RoutePlan, Target
from sluicegate.router.sticky import (
    FailOpenStickyStore,
    MemoryStickyStore,
    RedisStickyStore,
    StickyStore,
)

__all__ = [
    "AttemptsOutcome",
    "BreakerStore",
    "CompiledVirtualModel",
    "FailOpenBreakerStore",
    "FailOpenStickyStore",
    "LatencyTracker",
    "LoadBalancingDocument",
    "MemoryBreakerStore",
    "MemoryStickyStore",
    "RedisBreakerStore",
    "RedisStickyStore",
    "RoutePlan",
    "Router",
    "StickyStore",
    "Target",
    "compile_document",
    "compile_routes",
    "run_attempts",
]
