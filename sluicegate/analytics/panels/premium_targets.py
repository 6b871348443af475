"""What premium-review proposes for traffic on a frontier model, and what it would cost.

    cheaper target   the analytics config's `cheaper_targets` entry for the served model
                     (exact, else the longest glob pattern), a model the catalogue serves;
                     else the catalogue model of the same provider account in the standard
                     tier (analytics/tiers.py) sharing the longest name prefix with the
                     served model (claude-opus-* -> claude-sonnet-*), the dearer on a tie
                     (closest in capability), then by name
    its cost         the same token counts priced at the target's price, as the gateway
                     prices a served call (`Catalog.rate`: config overrides, then
                     genai-prices)
    prompt caching   the same tokens with `share` of each prompt's input read from cache
                     (never less than was read from cache already), priced at the model's
                     cache-read price; cache writes as recorded (the first write of each
                     prefix is not modelled: the figure is a floor)

Token counts are window sums. A linear price gives the same cost for the sum as for the
requests one by one; a tiered price (by prompt size) is applied to the mean request
instead, times the requests, and is approximate. A model without a price gives None,
never an invented figure.
"""

from __future__ import annotations

from dataclasses import dataclass

from sluicegate.analytics.config import AnalyticsSettings
from sluicegate.analytics.tiers import pattern_lookup, tier_of
from sluicegate.model.usage import Usage
from sluicegate.pricing import ModelRate, price_at
from sluicegate.providers.catalog import Catalog

TargetSource = str  # "config" (cheaper_targets) or "default" (the catalogue's choice)


@dataclass(frozen=True, slots=True)
class Target:
    name: str  # the catalogue (client-facing) name
    provider: str  # the account that serves it
    upstream_model: str
    source: TargetSource
    rate: ModelRate | None  # None: unpriced


@dataclass(frozen=True, slots=True)
class Tokens:
    requests: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int

    def usage(self) -> Usage:
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
        )

    def cached(self, share: float) -> Tokens:
        """The same traffic with `share` of its input read from cache (at least what was
        read already; never more than the input that was not written to cache)."""
        room = max(self.input_tokens - self.cache_write_tokens, 0)
        wanted = min(round(share * self.input_tokens), room)
        return Tokens(
            self.requests,
            self.input_tokens,
            self.output_tokens,
            max(self.cache_read_tokens, wanted),
            self.cache_write_tokens,
        )


def cost_at(rate: ModelRate | None, tokens: Tokens) -> float | None:
    """USD of `tokens` at `rate`; None when unpriced."""
    if rate is None:
        return None
    if rate.tiered is None or tokens.requests <= 1:
        return price_at(rate, tokens.usage()).cost_usd
    n = tokens.requests
    mean = Usage(
        input_tokens=round(tokens.input_tokens / n),
        output_tokens=round(tokens.output_tokens / n),
        cache_read_tokens=round(tokens.cache_read_tokens / n),
        cache_write_tokens=round(tokens.cache_write_tokens / n),
    )
    cost = price_at(rate, mean).cost_usd
    return None if cost is None else cost * n


def choose_target(
    model: str, provider: str, catalog: Catalog, settings: AnalyticsSettings
) -> tuple[Target | None, str | None]:
    """The cheaper target for traffic served as `model` by account `provider`, or None
    and why there is none."""
    configured = pattern_lookup(model, settings.cheaper_targets)
    if configured is not None:
        route = catalog.model(configured)
        if route is None:
            return None, (
                f"cheaper_targets sends {model} to {configured}, which no provider document "
                "serves: add it to the catalogue, or name a model it serves"
            )
        rate = catalog.rate(route.provider, route.upstream_model, route.name)
        return Target(route.name, route.provider, route.upstream_model, "config", rate), None
    candidates = []
    for name, route in catalog.models.items():
        if route.provider != provider or tier_of(name, settings.model_tiers) != "standard":
            continue
        rate = catalog.rate(route.provider, route.upstream_model, name)
        if rate is None:
            continue
        candidates.append((name, route.upstream_model, rate))
    if not candidates:
        return None, (
            f"no standard-tier model with a price is served by account {provider!r} for "
            f"{model}: name one in the analytics config's cheaper_targets"
        )
    name, upstream, rate = min(
        candidates, key=lambda c: (-_common_prefix(c[0], model), -c[2].input_mtok, c[0])
    )
    return Target(name, provider, upstream, "default", rate), None


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
