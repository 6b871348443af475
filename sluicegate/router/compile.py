"""A validated document -> the compiled virtual model the router serves from.

Everything that can be decided once is decided here: inherited settings resolved, target
ids generated (`provider/model`, `#2` on a repeat), condition names resolved to envelope
fields, a `model` pinned in `override_params` lifted into `Target.model` (so the target
names what is sent upstream).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from sluicegate.errors import ConfigError
from sluicegate.identity.envelope import DEFAULT_PREFIXES
from sluicegate.router.conditions import (
    Condition,
    build_condition,
    resolve_name,
)
from sluicegate.router.documents import LoadBalancingDocument
from sluicegate.router.routes import (
    DEFAULT_FALLBACK_STATUS_CODES,
    DEFAULT_RETRY_STATUS_CODES,
    BreakerPolicy,
    CompiledRoute,
    CompiledVirtualModel,
    LatencyPolicy,
    RetryPolicy,
    StickyPolicy,
    Target,
)
from sluicegate.router.specs import (
    CircuitBreakerSpec,
    FallbackSpec,
    RetrySpec,
    RouteSpec,
    RuleSetSettings,
    RuleSpec,
    WhenSpec,
)

DEFAULT_ROUTE_ID = "default"
V = TypeVar("V")


def compile_routes(
    documents: Iterable[LoadBalancingDocument],
    *,
    header_prefixes: Sequence[str] = DEFAULT_PREFIXES,
) -> dict[str, CompiledVirtualModel]:
    """Every document of a config version -> the router's table, by virtual model name."""
    table: dict[str, CompiledVirtualModel] = {}
    for doc in documents:
        if doc.name in table:
            raise ConfigError(f"two load-balancing documents define {doc.name!r}", param="name")
        table[doc.name] = compile_document(doc, header_prefixes=header_prefixes)
    return table


def compile_document(
    doc: LoadBalancingDocument, *, header_prefixes: Sequence[str] = DEFAULT_PREFIXES
) -> CompiledVirtualModel:
    if doc.routes is not None:
        routes = tuple(_route(doc, spec, spec, header_prefixes) for spec in doc.routes)
    else:
        implicit = RouteSpec(id=DEFAULT_ROUTE_ID, rules=doc.rules or [])
        routes = (_route(doc, implicit, doc, header_prefixes, explicit=False),)
    sticky = doc.sticky_session
    return CompiledVirtualModel(
        name=doc.name,
        routes=routes,
        breaker=_breaker(doc.circuit_breaker),
        sticky=StickyPolicy(
            enabled=sticky.enabled,
            ttl_seconds=sticky.ttl_seconds,
            by=resolve_name(sticky.by, header_prefixes)[0],
        ),
    )


def _route(
    doc: LoadBalancingDocument,
    route: RouteSpec,
    settings: RuleSetSettings,
    prefixes: Sequence[str],
    *,
    explicit: bool = True,
) -> CompiledRoute:
    retry = _inherit(settings.retry, doc.retry)
    fallback_specs = _inherit(settings.fallbacks, doc.fallbacks) or []
    taken = {spec.id for spec in (*route.rules, *fallback_specs) if spec.id is not None}
    codes = _inherit(settings.fallback_status_codes, doc.fallback_status_codes)
    fallback_codes = frozenset(codes) if codes is not None else DEFAULT_FALLBACK_STATUS_CODES
    return CompiledRoute(
        id=route.id,
        when=_condition(route.when, prefixes),
        rule_type=_inherit(settings.rule_type, doc.rule_type) or "weight-based",
        rules=tuple(_target(spec, retry, taken) for spec in route.rules),
        fallbacks=tuple(_target(spec, retry, taken) for spec in fallback_specs),
        fallback_status_codes=fallback_codes,
        latency=_latency(settings, doc),
        explicit=explicit,
    )


def _target(spec: RuleSpec | FallbackSpec, retry: RetrySpec | None, taken: set[str]) -> Target:
    provider, model = spec.upstream()
    return Target(
        id=spec.id or _generated_id(f"{provider}/{model}", taken),
        provider=provider,
        model=model,
        timeout_ms=spec.timeout_ms,
        ttft_timeout_ms=spec.ttft_timeout_ms,
        override_params={k: v for k, v in spec.override_params.items() if k != "model"},
        headers_set=dict(spec.headers.set_),
        headers_remove=tuple(spec.headers.remove),
        retry=_retry(spec.retry or retry),
        weight=spec.weight if isinstance(spec, RuleSpec) else 1.0,
        priority=spec.priority if isinstance(spec, RuleSpec) else 0,
    )


def _generated_id(base: str, taken: set[str]) -> str:
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}#{n}"
    taken.add(candidate)
    return candidate


def _retry(spec: RetrySpec | None) -> RetryPolicy:
    if spec is None:
        return RetryPolicy()
    codes = spec.on_status_codes
    return RetryPolicy(
        attempts=spec.attempts,
        delay_ms=spec.delay_ms,
        max_delay_ms=spec.max_delay_ms,
        jitter=spec.jitter,
        on_status_codes=frozenset(codes) if codes is not None else DEFAULT_RETRY_STATUS_CODES,
    )


def _breaker(spec: CircuitBreakerSpec) -> BreakerPolicy | None:
    if not spec.enabled:
        return None
    return BreakerPolicy(
        failure_threshold=spec.failure_threshold,
        window_seconds=spec.window_seconds,
        cooldown_seconds=spec.cooldown_seconds,
        probe_timeout_seconds=spec.probe_timeout_seconds,
    )


def _latency(settings: RuleSetSettings, doc: LoadBalancingDocument) -> LatencyPolicy:
    default = LatencyPolicy()
    tolerance = _inherit(settings.latency_tolerance_pct, doc.latency_tolerance_pct)
    min_samples = _inherit(settings.latency_min_samples, doc.latency_min_samples)
    explore = _inherit(settings.latency_explore_pct, doc.latency_explore_pct)
    return LatencyPolicy(
        tolerance_pct=_or(tolerance, default.tolerance_pct),
        min_samples=_or(min_samples, default.min_samples),
        explore_pct=_or(explore, default.explore_pct),
    )


def _condition(when: WhenSpec | None, prefixes: Sequence[str]) -> Condition | None:
    if when is None:
        return None
    metadata = dict(when.metadata)
    if when.workflow_tag is not None:
        metadata["workflow_tag"] = when.workflow_tag
    return build_condition(metadata, when.subjects, prefixes)


def _inherit(own: V | None, inherited: V | None) -> V | None:
    return own if own is not None else inherited


def _or(value: V | None, default: V) -> V:
    return value if value is not None else default
