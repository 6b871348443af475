"""`gateway-load-balancing-config`: one virtual model as a YAML document.

Two shapes. One rule set at the top level (the shape of the routing example in the
source article, which must validate unchanged):

    name: intent-fast
    type: gateway-load-balancing-config
    rule_type: weight-based            # | priority-based | latency-based
    rules:                             # `targets` is accepted as a synonym
      - id: primary-haiku
        weight: 90
        target: {provider: anthropic, model: claude-haiku-4-5}
        timeout_ms: 8000
    fallbacks:
      - {provider: openai, model: gpt-4o-mini}
    circuit_breaker: {failure_threshold: 5, window_seconds: 60, cooldown_seconds: 30}

Or several rule sets chosen per request by `when` (first match wins; a route without
`when` is the default and must come last):

    routes:
      - id: prod
        when: {metadata: {X-TFY-Environment: production}, subjects: ["team:search"]}
        rule_type: priority-based
        rules: [...]
      - id: default
        rules: [...]

A route inherits every rule-set setting it does not set (rule_type, fallbacks, retry,
fallback_status_codes, latency_*) from the document level.

Per target: `timeout_ms`, `ttft_timeout_ms` (streams), `override_params` (merged into the
upstream request; a `model` there pins what is sent upstream), `headers: {set, remove}`,
`retry: {attempts, delay_ms, max_delay_ms, jitter, on_status_codes}` (attempts counts the
first try). Document level: `fallback_status_codes` (default 401 403 404 408 429 500 502
503 504; connection errors and timeouts always fall back), `retry`, `circuit_breaker`,
`sticky_session: {enabled, ttl_seconds, by}`, `latency_tolerance_pct`,
`latency_min_samples`, `latency_explore_pct`. Targets without an `id` get
`provider/model` as theirs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, model_validator

from sluicegate.router.specs import (
    CircuitBreakerSpec,
    FallbackSpec,
    RouteSpec,
    RuleSetSettings,
    RuleSpec,
    StickySessionSpec,
    check_rule_set,
)


class LoadBalancingDocument(RuleSetSettings):
    name: str = Field(min_length=1, description="the virtual model clients ask for")
    type: Literal["gateway-load-balancing-config"]
    description: str | None = None
    rules: list[RuleSpec] | None = Field(
        default=None, min_length=1, validation_alias=AliasChoices("rules", "targets")
    )
    routes: list[RouteSpec] | None = Field(default=None, min_length=1)
    circuit_breaker: CircuitBreakerSpec = Field(default_factory=CircuitBreakerSpec)
    sticky_session: StickySessionSpec = Field(default_factory=StickySessionSpec)

    @model_validator(mode="after")
    def _shape(self) -> LoadBalancingDocument:
        if (self.rules is None) == (self.routes is None):
            raise ValueError(
                "give either `rules` (one rule set) or `routes` (rule sets chosen by `when`)"
                + (", not both" if self.rules is not None else "")
            )
        if self.rules is not None:
            check_rule_set(self.rule_type, self.rules, self.fallbacks)
        else:
            _check_routes(self.routes or [], self)
        return self


def _check_routes(routes: list[RouteSpec], doc: LoadBalancingDocument) -> None:
    ids = [route.id for route in routes]
    if len(set(ids)) != len(ids):
        raise ValueError(f"route ids must be unique: {', '.join(ids)}")
    for route in routes[:-1]:
        if route.when is None:
            raise ValueError(
                f"route {route.id!r} has no `when`, so it would shadow the routes after it; "
                "put the default route last"
            )
    labels: dict[str, str] = {}  # one target id is one breaker: the same provider/model
    for route in routes:
        fallbacks = route.fallbacks if route.fallbacks is not None else doc.fallbacks or []
        try:
            check_rule_set(route.rule_type or doc.rule_type, route.rules, fallbacks)
        except ValueError as exc:
            raise ValueError(f"route {route.id!r}: {exc}") from None
        specs: list[RuleSpec | FallbackSpec] = [*route.rules, *fallbacks]
        for spec in specs:
            label = "/".join(spec.upstream())
            seen = labels.setdefault(spec.id or label, label)
            if seen != label:
                raise ValueError(
                    f"target id {spec.id!r} names both {seen} and {label} in different routes; "
                    "give them different ids"
                )
