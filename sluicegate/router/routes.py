"""Compiled routing tables and the plan the router hands to the attempts loop: plain data.

CompiledVirtualModel  one `gateway-load-balancing-config` document, ready to serve
 +-- routes            CompiledRoute, first whose `when` matches wins
 |    +-- rules        Target (weight, priority): the primary is chosen among them
 |    +-- fallbacks    Target: tried in order after the primary
 +-- breaker           BreakerPolicy shared by every target of the virtual model
 +-- sticky            StickyPolicy

RoutePlan             the ordered candidates for one request
"""

from __future__ import annotations

from typing import Literal

import msgspec

from sluicegate.router.conditions import Condition

RuleType = Literal["weight-based", "priority-based", "latency-based"]
AttemptReason = Literal["primary", "retry", "fallback"]

DEFAULT_FALLBACK_STATUS_CODES = frozenset({401, 403, 404, 408, 429, 500, 502, 503, 504})
DEFAULT_RETRY_STATUS_CODES = frozenset({408, 429, 500, 502, 503, 504})


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Tries against one target before moving on. `attempts` counts the first try too:
    1 means no retry. Connection errors and timeouts are always retryable."""

    attempts: int = 1
    delay_ms: int = 200
    max_delay_ms: int = 2000
    jitter: bool = True
    on_status_codes: frozenset[int] = DEFAULT_RETRY_STATUS_CODES


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """One concrete provider/model and how to call it. `model` is what is sent upstream."""

    id: str
    provider: str
    model: str
    timeout_ms: int | None = None
    ttft_timeout_ms: int | None = None  # streams: the first event must arrive within this
    override_params: dict[str, object] = msgspec.field(default_factory=dict)
    headers_set: dict[str, str] = msgspec.field(default_factory=dict)
    headers_remove: tuple[str, ...] = ()
    retry: RetryPolicy = RetryPolicy()
    weight: float = 1.0
    priority: int = 0

    @property
    def label(self) -> str:
        return f"{self.provider}/{self.model}"


class BreakerPolicy(msgspec.Struct, frozen=True, kw_only=True):
    failure_threshold: int = 5
    window_seconds: float = 60.0
    cooldown_seconds: float = 30.0
    probe_timeout_seconds: float = 60.0  # a half-open probe claim lapses after this


class LatencyPolicy(msgspec.Struct, frozen=True, kw_only=True):
    tolerance_pct: float = 20.0  # targets within this much of the fastest share traffic
    min_samples: int = 5  # fewer recent samples than this: the target is explored
    explore_pct: float = 5.0  # chance of trying a target outside the band anyway


class StickyPolicy(msgspec.Struct, frozen=True, kw_only=True):
    enabled: bool = False
    ttl_seconds: int = 3600
    by: str = "session_id"  # envelope field or metadata key that names the session


class CompiledRoute(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    when: Condition | None  # None: the default route
    rule_type: RuleType
    rules: tuple[Target, ...]
    fallbacks: tuple[Target, ...]
    fallback_status_codes: frozenset[int]
    latency: LatencyPolicy
    explicit: bool = True  # False: the document's own rule set, not one of `routes`


class CompiledVirtualModel(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    routes: tuple[CompiledRoute, ...]
    breaker: BreakerPolicy | None
    sticky: StickyPolicy

    def targets(self) -> list[Target]:
        """Every distinct target (by id) across routes, rules before fallbacks."""
        seen: dict[str, Target] = {}
        for route in self.routes:
            for target in (*route.rules, *route.fallbacks):
                seen.setdefault(target.id, target)
        return list(seen.values())


class RoutePlan(msgspec.Struct, frozen=True, kw_only=True):
    """Ordered candidates for one request: the primary, then what to fall back to."""

    model: str  # what the client asked for
    virtual: bool
    candidates: tuple[Target, ...]
    route_id: str | None = None
    rule_id: str | None = None  # which route and target were chosen, for the ledger
    fallback_status_codes: frozenset[int] = DEFAULT_FALLBACK_STATUS_CODES
    breaker: BreakerPolicy | None = None  # None: no circuit breaking (plain models)
    probe_ids: frozenset[str] = frozenset()  # half-open targets whose probe this plan holds
    needs_probe: frozenset[str] = frozenset()  # half-open targets: claim a probe first
    sticky_key: str | None = None
    # Targets from `fallbacks`: recorded as fallbacks even when tried first (every rule's
    # circuit open), so the ledger says a fallback served the request.
    fallback_ids: frozenset[str] = frozenset()

    def key_for(self, target: Target) -> str:
        """The breaker / latency key of a target of this plan."""
        return target_key(self.model, target.id)


def target_key(virtual_model: str, target_id: str) -> str:
    """Breakers and latency are kept per virtual model and target: one virtual model's
    failures never open another's circuit, and each follows its own thresholds."""
    return f"{virtual_model}:{target_id}"
