"""Where a config sends a request and what its tokens cost there, for a replay.

`RouteBook(config)` answers, for a model name and a request's envelope, a `Costing`: the
targets the router would choose among with the share of the traffic each can expect
(`router.select.expected_shares`; every circuit taken as closed), each target's price as
the pipeline prices a served call (`Catalog.rate` with the configured name), and the
first candidate without a price (a budget's `unpriced` setting applies to the request,
as in `Pipeline._worst_case`). A request's cost on a costing is its recorded usage
priced at each target, weighted by share: the expected cost, not one random draw.
"""

from __future__ import annotations

import msgspec

from sluicegate.errors import NotFound
from sluicegate.model.identity import Envelope
from sluicegate.model.usage import Usage
from sluicegate.pricing import ModelRate, price_at
from sluicegate.router.breaker import MemoryBreakerStore
from sluicegate.router.plan import FALLBACKS_SUFFIX, Router, fallbacks_route, route_for
from sluicegate.router.routes import CompiledRoute, CompiledVirtualModel, Target
from sluicegate.router.select import expected_shares
from sluicegate.router.sticky import MemoryStickyStore
from sluicegate.server.config_review import CompiledConfig

MAX_COSTINGS = 10_000  # (model, route) costings cached per book; the names come from rows


class TargetShare(msgspec.Struct, frozen=True):
    target_id: str
    provider: str
    model: str  # sent upstream
    share: float  # of the route's traffic, 0..1
    rate: ModelRate | None  # None: no price (or an account no document defines)

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}"


class Costing(msgspec.Struct, frozen=True):
    model: str  # the name routed: a virtual model, `<vm>:fallbacks`, or a catalog model
    route_id: str | None
    shares: tuple[TargetShare, ...]
    unpriced: str | None  # the first candidate with no price, named as the pipeline does
    key: tuple[object, ...] = ()  # what `same_as` compares (made by `costing_of`)

    def cost(self, usage: Usage | None) -> float | None:
        """The expected USD of `usage` here (priced targets only); None when no target
        with a share has a price, or there is no usage."""
        if usage is None:
            return None
        total: float | None = None
        for share in self.shares:
            cost = price_at(share.rate, usage).cost_usd
            if cost is not None:
                total = (total or 0.0) + share.share * cost
        return total

    def same_as(self, other: Costing | None) -> bool:
        """Whether `other` sends traffic to the same targets in the same shares at the
        same prices (then a replay keeps each row's recorded cost)."""
        return other is not None and (other is self or self.key == other.key)


def costing_of(
    model: str, route_id: str | None, shares: tuple[TargetShare, ...], unpriced: str | None
) -> Costing:
    key = (tuple((s.provider, s.model, round(s.share, 9), s.rate) for s in shares), unpriced)
    return Costing(model, route_id, shares, unpriced, key)


class RouteBook:
    """One config's routing table and prices; costings are cached by (model, route)."""

    def __init__(self, config: CompiledConfig) -> None:
        self._config = config
        self._catalog = config.catalog
        self._router = Router(MemoryBreakerStore(), sticky=MemoryStickyStore())
        self._router.set_routes(config.routes, self._plain_target)
        self._cache: dict[tuple[str, str | None], Costing | None] = {}

    def resolve(self, name: str) -> str:
        """The name rules and routes see: an alias resolved."""
        return self._catalog.resolve_alias(name)

    def cheaper_model(self, model: str) -> str | None:
        """What `fallback_to_cheaper` moves a request on `model` to (the router's)."""
        return self._router.cheaper_model(model)

    def costing(self, model: str, envelope: Envelope) -> Costing | None:
        """Where a request for `model` (resolved) goes; None when nothing serves it (the
        request would be a 404)."""
        vm, fallbacks_only = self._virtual(model)
        route: CompiledRoute | None = None
        if vm is not None:
            try:
                route = fallbacks_route(vm, envelope) if fallbacks_only else route_for(vm, envelope)
            except (NotFound, StopIteration):
                return None
        key = (model, route.id if route is not None else None)
        if key in self._cache:
            return self._cache[key]
        found = self._build(model, vm, route, fallbacks_only)
        if len(self._cache) >= MAX_COSTINGS:
            self._cache.clear()
        self._cache[key] = found
        return found

    def _virtual(self, model: str) -> tuple[CompiledVirtualModel | None, bool]:
        routes = self._config.routes
        vm = routes.get(model)
        if vm is None and model.endswith(FALLBACKS_SUFFIX):
            return routes.get(model.removesuffix(FALLBACKS_SUFFIX)), True
        return vm, False

    def _build(
        self,
        model: str,
        vm: CompiledVirtualModel | None,
        route: CompiledRoute | None,
        fallbacks_only: bool,
    ) -> Costing | None:
        if vm is None or route is None:
            target = self._plain_target(model)
            if target is None:
                return None
            return self._costing(model, model, None, [(target, 1.0)], [target])
        if fallbacks_only:  # `<vm>:fallbacks`: the fallbacks in order, the first serves
            chosen, candidates = [(route.fallbacks[0], 1.0)], list(route.fallbacks)
        else:
            chosen = expected_shares(route, route.rules)
            candidates = [*route.rules, *route.fallbacks]
        return self._costing(model, vm.name, route.id, chosen, candidates)

    def _costing(
        self,
        model: str,
        configured: str,
        route_id: str | None,
        chosen: list[tuple[Target, float]],
        candidates: list[Target],
    ) -> Costing:
        shares = tuple(
            TargetShare(t.id, t.provider, t.model, share, self._rate(t, configured))
            for t, share in chosen
        )
        return costing_of(model, route_id, shares, self._first_unpriced(configured, candidates))

    def _rate(self, target: Target, configured: str) -> ModelRate | None:
        return self._catalog.rate(target.provider, target.model, configured)

    def _first_unpriced(self, configured: str, candidates: list[Target]) -> str | None:
        """As `Pipeline._worst_case` names it: candidates on accounts no document defines
        are skipped (they cannot be called)."""
        for target in candidates:
            if self._catalog.provider(target.provider) is None:
                continue
            if self._rate(target, configured) is None:
                served = f"{target.provider}/{target.model}"
                return served if configured == target.model else f"{configured} ({served})"
        return None

    def _plain_target(self, model: str) -> Target | None:
        route = self._catalog.model(model)
        if route is None:
            return None
        return Router.plain_target(route.provider, route.upstream_model)
