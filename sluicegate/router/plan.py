"""The router: a requested model name + the request's envelope -> a RoutePlan.

plan(model, envelope) -> RoutePlan; run(plan, call) -> AttemptsOutcome (the attempts loop
with this router's breakers and latency); record_generation(outcome, ...) once the usage
of the answer is known.

plan(model, envelope)
  1. the virtual model (else the catalog's single target, else NotFound);
     `<virtual model>:fallbacks` plans that model's fallbacks only (cheaper_model)
  2. its first route whose `when` matches (else NotFound)
  3. breaker states of the route's targets, in one store round trip
  4. the primary: the session's pinned target if still eligible, else chosen by
     rule_type among the rules whose circuit is not open; a half-open choice must win
     the probe claim first, otherwise it is dropped and the choice is made again
  5. the candidates: primary, the remaining priority tiers, then `fallbacks` in
     order; open circuits left out, half-open ones marked to claim a probe when reached
  6. every circuit open: fail fast with UpstreamUnavailable. Sending the request to a
     target known to be failing would cost its timeout and defeat the breaker; the
     error says when the first circuit is due to be probed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgspec

from sluicegate.errors import NotFound, UpstreamUnavailable
from sluicegate.model.identity import Envelope
from sluicegate.router.attempts import AttemptsOutcome, Call, run_attempts
from sluicegate.router.breaker import BreakerState, BreakerStore
from sluicegate.router.latency import LatencyStats, LatencyTracker
from sluicegate.router.routes import (
    CompiledRoute,
    CompiledVirtualModel,
    RoutePlan,
    Target,
    target_key,
)
from sluicegate.router.select import choose, rules_after
from sluicegate.router.status import target_status
from sluicegate.router.sticky import StickyStore

TargetLookup = Callable[[str], Target | None]
T = TypeVar("T")
FALLBACKS_SUFFIX = ":fallbacks"  # `<virtual model>:fallbacks`: see Router.cheaper_model


class _Table(msgspec.Struct, frozen=True):
    virtual: Mapping[str, CompiledVirtualModel]
    plain_targets: TargetLookup


class Router:
    def __init__(
        self,
        breakers: BreakerStore,
        *,
        sticky: StickyStore,
        latency: LatencyTracker | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """The router owns the stores it is given: `close()` closes them."""
        self._breakers = breakers
        self._latency = latency or LatencyTracker()
        self._sticky = sticky
        self._rng = rng or random.Random()
        self._clock = clock
        self._table = _Table({}, lambda _model: None)

    @property
    def breakers(self) -> BreakerStore:
        return self._breakers

    @property
    def latency(self) -> LatencyTracker:
        return self._latency

    @staticmethod
    def plain_target(provider: str, model: str) -> Target:
        """The single target of a plain (catalog) model; no breaker, no fallback."""
        return Target(id=f"{provider}/{model}", provider=provider, model=model)

    def set_routes(
        self, virtual_models: Mapping[str, CompiledVirtualModel], plain_targets: TargetLookup
    ) -> None:
        """Swap in a new routing table (hot reload); plans already made keep theirs."""
        self._table = _Table(dict(virtual_models), plain_targets)

    def virtual_model_names(self) -> list[str]:
        return sorted(self._table.virtual)

    def cheaper_model(self, model: str) -> str | None:
        """For a policy's `fallback_to_cheaper`: the virtual model's first fallback (its
        default route's, else its first route's). Its own name when the catalog serves
        that name from the same provider; otherwise `<virtual model>:fallbacks`, which
        `plan` routes over the virtual model's fallbacks (breakers and target settings
        included). None when there is no fallback."""
        table = self._table
        vm = table.virtual.get(model)
        if vm is None:
            return None
        first = next((route.fallbacks[0] for route in fallback_routes(vm)), None)
        if first is None:
            return None
        listed = table.plain_targets(first.model)
        if listed is not None and (listed.provider, listed.model) == (first.provider, first.model):
            return first.model
        return vm.name + FALLBACKS_SUFFIX

    async def plan(self, model: str, envelope: Envelope) -> RoutePlan:
        table = self._table
        vm = table.virtual.get(model)
        if vm is None and model.endswith(FALLBACKS_SUFFIX):
            base = table.virtual.get(model.removesuffix(FALLBACKS_SUFFIX))
            if base is not None:
                return await self._fallbacks_plan(base, envelope)
        if vm is None:
            return _plain_plan(model, table.plain_targets)
        route = route_for(vm, envelope)
        states = await self._states(vm, route)
        sticky_key = _sticky_key(vm, envelope)
        pinned = await self._sticky.get(sticky_key) if sticky_key else None
        pool = [t for t in route.rules if states[t.id].state != "open"]
        primary, probe = await self._primary(vm, route, pool, states, pinned)
        if sticky_key and primary is not None and primary.id != pinned:
            await self._sticky.set(sticky_key, primary.id, vm.sticky.ttl_seconds)
        tiers = rules_after(route, pool, primary, self._rng) if primary else []
        candidates = _candidates(route, primary, tiers, states)
        if not candidates:
            raise self._all_open(vm, states)
        after_primary = candidates[1:] if primary else candidates
        return RoutePlan(
            model=model,
            virtual=True,
            candidates=tuple(candidates),
            route_id=route.id,
            rule_id=f"{route.id}:{candidates[0].id}" if route.explicit else candidates[0].id,
            fallback_status_codes=route.fallback_status_codes,
            breaker=vm.breaker,
            probe_ids=frozenset([primary.id] if primary and probe else []),
            needs_probe=frozenset(t.id for t in after_primary if states[t.id].state == "half_open"),
            sticky_key=sticky_key,
            fallback_ids=frozenset(t.id for t in route.fallbacks),
        )

    async def _fallbacks_plan(self, vm: CompiledVirtualModel, envelope: Envelope) -> RoutePlan:
        """Only the fallbacks of the request's route (else of the route `cheaper_model`
        took them from), in order, skipping open circuits."""
        route = fallbacks_route(vm, envelope)
        states = await self._states(vm, route)
        candidates = [t for t in route.fallbacks if states[t.id].state != "open"]
        if not candidates:
            raise self._all_open(vm, states)
        first = candidates[0].id
        return RoutePlan(
            model=vm.name,  # breaker and latency keys are the virtual model's own
            virtual=True,
            candidates=tuple(candidates),
            route_id=route.id,
            rule_id=f"{route.id}:{first}" if route.explicit else first,
            fallback_status_codes=route.fallback_status_codes,
            breaker=vm.breaker,
            needs_probe=frozenset(t.id for t in candidates if states[t.id].state == "half_open"),
        )

    async def run(self, plan: RoutePlan, call: Call[T]) -> AttemptsOutcome[T]:
        """The retry / fallback loop over `plan` (see `attempts`): each attempt updates
        this router's breakers and latency, which the next plans are made from."""
        return await run_attempts(plan, call, breakers=self._breakers, latency=self._latency)

    def record_generation(
        self, outcome: AttemptsOutcome[Any], output_tokens: int | None, duration_ms: float
    ) -> None:
        """Time per output token of the target that answered, once the usage is known
        (a stream: at its end). Latency-based routing scores targets on it."""
        target = outcome.final_target
        if target is not None:
            key = outcome.plan.key_for(target)
            self._latency.record_generation(key, output_tokens, duration_ms)

    async def status(self) -> list[dict[str, Any]]:
        """Per target of every virtual model: breaker, latency, error rate, share."""
        return await target_status(self._table.virtual.values(), self._breakers, self._latency)

    async def close(self) -> None:
        await self._breakers.aclose()
        await self._sticky.aclose()

    async def _states(
        self, vm: CompiledVirtualModel, route: CompiledRoute
    ) -> dict[str, BreakerState]:
        targets = _unique([*route.rules, *route.fallbacks])
        if vm.breaker is None:
            return {t.id: BreakerState() for t in targets}
        found = await self._breakers.states([target_key(vm.name, t.id) for t in targets])
        return {t.id: state for t, state in zip(targets, found)}

    async def _primary(
        self,
        vm: CompiledVirtualModel,
        route: CompiledRoute,
        pool: list[Target],
        states: Mapping[str, BreakerState],
        pinned: str | None,
    ) -> tuple[Target | None, bool]:
        """(the chosen rule, whether this plan holds its half-open probe). A half-open
        choice that loses the probe claim is dropped and the choice made again."""
        pool = list(pool)
        while pool:
            pinned_target = next((t for t in pool if t.id == pinned), None)
            choice = pinned_target or choose(route, pool, self._stats_of(vm), self._rng)
            if vm.breaker is None or states[choice.id].state != "half_open":
                return choice, False
            admission = await self._breakers.admit(target_key(vm.name, choice.id), vm.breaker)
            if admission != "denied":
                return choice, admission == "probe"
            pool.remove(choice)
        return None, False

    def _stats_of(self, vm: CompiledVirtualModel) -> Callable[[Target], LatencyStats]:
        return lambda target: self._latency.stats(target_key(vm.name, target.id))

    def _all_open(
        self, vm: CompiledVirtualModel, states: Mapping[str, BreakerState]
    ) -> UpstreamUnavailable:
        message = f"every target of {vm.name!r} has an open circuit"
        reopen = [s.open_until for s in states.values() if s.open_until is not None]
        if reopen:
            wait = max(0.0, min(reopen) - self._clock())
            message += f"; the first is probed again in {wait:.0f}s"
        return UpstreamUnavailable(message, code="circuit_open")


def fallback_routes(vm: CompiledVirtualModel) -> list[CompiledRoute]:
    """Routes that have fallbacks, the default route first."""
    routes = sorted(vm.routes, key=lambda route: route.when is not None)
    return [route for route in routes if route.fallbacks]


def _plain_plan(model: str, plain_targets: TargetLookup) -> RoutePlan:
    target = plain_targets(model)
    if target is None:
        raise NotFound(f"the model {model!r} does not exist", param="model")
    return RoutePlan(model=model, virtual=False, candidates=(target,))


def fallbacks_route(vm: CompiledVirtualModel, envelope: Envelope) -> CompiledRoute:
    """The route whose fallbacks `<virtual model>:fallbacks` serves: the request's own,
    else the one `cheaper_model` took its fallback from."""
    route = route_for(vm, envelope)
    return route if route.fallbacks else next(iter(fallback_routes(vm)))


def route_for(vm: CompiledVirtualModel, envelope: Envelope) -> CompiledRoute:
    """The virtual model's first route whose `when` matches the request (NotFound)."""
    for route in vm.routes:
        if route.when is None or route.when.matches(envelope):
            return route
    raise NotFound(
        f"no route of {vm.name!r} matches this request (and it has no default route)", param="model"
    )


def _sticky_key(vm: CompiledVirtualModel, envelope: Envelope) -> str | None:
    if not vm.sticky.enabled:
        return None
    session = envelope.field(vm.sticky.by)
    return f"{vm.name}:{session}" if session else None


def _candidates(
    route: CompiledRoute,
    primary: Target | None,
    tiers: list[Target],
    states: Mapping[str, BreakerState],
) -> list[Target]:
    ordered = _unique([*([primary] if primary else []), *tiers, *route.fallbacks])
    return [t for t in ordered if states[t.id].state != "open"]


def _unique(targets: list[Target]) -> list[Target]:
    seen: dict[str, Target] = {}
    for target in targets:
        seen.setdefault(target.id, target)
    return list(seen.values())
