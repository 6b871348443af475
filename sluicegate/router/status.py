"""`GET /api/targets`: what each target of each virtual model is doing right now.

Breaker state is shared (when the store is Redis); latency, error rate and share are what
this replica has seen in the last few minutes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sluicegate.router.breaker import BreakerState, BreakerStore
from sluicegate.router.latency import LatencyTracker
from sluicegate.router.routes import CompiledVirtualModel, target_key


async def target_status(
    virtual_models: Iterable[CompiledVirtualModel], breakers: BreakerStore, latency: LatencyTracker
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for vm in sorted(virtual_models, key=lambda vm: vm.name):
        targets = vm.targets()
        keys = [target_key(vm.name, t.id) for t in targets]
        states = await breakers.states(keys) if vm.breaker else [BreakerState() for _ in keys]
        stats = [latency.stats(key) for key in keys]
        total = sum(s.requests for s in stats)
        for target, state, stat in zip(targets, states, stats):
            rows.append(
                {
                    "virtual_model": vm.name,
                    "target_id": target.id,
                    "provider": target.provider,
                    "model": target.model,
                    "state": state.state,
                    "open_until": state.open_until,
                    "p50_ms": stat.p50_ms,
                    "p95_ms": stat.p95_ms,
                    "tpot_p50_ms": stat.tpot_p50_ms,
                    "error_rate": stat.error_rate,
                    "requests": stat.requests,
                    "share": stat.requests / total if total else None,
                }
            )
    return rows
