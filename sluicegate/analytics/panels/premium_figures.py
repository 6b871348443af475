"""The figures of premium-review rows: a row's traffic summed over its paths, priced at
today's prices and projected to a month (as it is, on the cheaper target, with prompt
caching, and both); and the totals over the rows. Each is built once, as a
`PremiumFigures`; the panel adds what names the row (`premium_review.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sluicegate.analytics.measures import Figures
from sluicegate.analytics.panels.base import PanelContext
from sluicegate.analytics.panels.common import share, usd
from sluicegate.analytics.panels.premium_rows import PremiumFigures
from sluicegate.analytics.panels.premium_targets import Target, Tokens, choose_target, cost_at
from sluicegate.analytics.reader import Group
from sluicegate.pricing import ModelRate
from sluicegate.providers.catalog import Catalog

MEASURES = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
)


@dataclass(slots=True)
class Traffic:
    """A row's traffic before projection: its group, model and paths (groups whose last
    two values are the serving account and the model name asked for)."""

    values: tuple[str, ...]
    model: str
    paths: list[Group] = field(default_factory=list)


def summed(paths: Sequence[Group]) -> Figures:
    total: Figures = dict.fromkeys(MEASURES, 0)
    for path in paths:
        for name in MEASURES:
            total[name] += path.figures[name]
    return total


def tokens_of(paths: Sequence[Group]) -> Tokens:
    f = summed(paths)
    return Tokens(
        int(f["requests"]),
        int(f["input_tokens"]),
        int(f["output_tokens"]),
        int(f["cache_read_tokens"]),
        int(f["cache_write_tokens"]),
    )


class Projector:
    """Figures with their projections: the target per (model, account) chosen once."""

    def __init__(self, context: PanelContext, scale: float, notes: list[str]) -> None:
        self._context = context
        self._catalog: Catalog | None = context.catalog
        self._scale = scale  # window -> month
        self._notes = notes
        self._targets: dict[tuple[str, str], Target | None] = {}
        if self._catalog is None:
            notes.append("no provider catalogue to price with: projections not made")

    def target(self, model: str, provider: str) -> Target | None:
        key = (model, provider)
        if key not in self._targets and self._catalog is not None:
            found, why = choose_target(model, provider, self._catalog, self._context.settings)
            if why:
                self._notes.append(why)
            elif found is not None and found.rate is None:
                self._notes.append(f"{found.name} (the target for {model}) has no price")
            self._targets[key] = found
        return self._targets.get(key)

    def figures(
        self, traffic: Traffic, group_spend: float, frontier_cost: float
    ) -> tuple[PremiumFigures, Target | None]:
        """The row's figures, and the cheaper target of its dearest path's account."""
        cost = summed(traffic.paths)["cost_usd"]
        tokens = tokens_of(traffic.paths)
        main = max(traffic.paths, key=lambda p: (p.figures["cost_usd"], p.figures["requests"]))
        target = self.target(traffic.model, main.values[-2])
        # paths that used tokens (failed requests with none have nothing to price)
        used = [p for p in traffic.paths if p.figures["input_tokens"] or p.figures["output_tokens"]]
        rates = [self._rate(p.values[-2], traffic.model) for p in used]
        for rate, path in zip(rates, used, strict=True):
            if rate is None:
                self._notes.append(
                    f"{traffic.model} on account {path.values[-2] or '(none)'} has no price (or "
                    "the catalogue has no such account): rows with its traffic are not projected"
                )
        share_cache = self._context.settings.prompt_cache_share
        target_rate = target.rate if target else None
        tiered = [r for r in (*rates, target_rate) if r is not None and r.tiered is not None]
        if tiered:
            self._notes.append(
                f"{tiered[0].price_id} is priced by prompt size: its projection applies the "
                "price to the mean request (approximate)"
            )
        parts = [tokens_of([p]) for p in used]
        at_price = _sum(cost_at(rate, t) for rate, t in zip(rates, parts, strict=True))
        on_target = _sum(cost_at(target_rate, t) for t in parts)
        cached = _sum(cost_at(r, t.cached(share_cache)) for r, t in zip(rates, parts, strict=True))
        both = _sum(cost_at(target_rate, t.cached(share_cache)) for t in parts)
        now, there = self._month(at_price), self._month(on_target)
        figures = PremiumFigures(
            requests=tokens.requests,
            input_tokens=tokens.input_tokens,
            output_tokens=tokens.output_tokens,
            cache_read_tokens=tokens.cache_read_tokens,
            cache_write_tokens=tokens.cache_write_tokens,
            tokens=tokens.input_tokens + tokens.output_tokens,
            cost_usd=usd(cost),
            group_share=share(cost, group_spend),
            frontier_share=share(cost, frontier_cost),
            cache_read_share=share(tokens.cache_read_tokens, tokens.input_tokens),
            priced=all(rate is not None for rate in rates),
            month_usd=usd(cost * self._scale),
            at_price_month_usd=now,
            target_cost_usd=None if on_target is None else usd(on_target),
            target_month_usd=there,
            cached_month_usd=self._month(cached),
            target_cached_month_usd=self._month(both),
            saving_month_usd=None if now is None or there is None else usd(now - there),
        )
        return figures, target

    def _rate(self, provider: str, model: str) -> ModelRate | None:
        if self._catalog is None:
            return None
        return self._catalog.rate(provider, model)

    def _month(self, cost: float | None) -> float | None:
        return None if cost is None else usd(cost * self._scale)


def total_figures(rows: Sequence[PremiumFigures], frontier_cost: float) -> PremiumFigures:
    """The rows' figures summed; a projection over the rows that have one (None: none)."""

    def total(name: str) -> float | None:
        found = [v for v in (getattr(r, name) for r in rows) if v is not None]
        return usd(sum(found)) if found else None

    def count(name: str) -> int:
        return sum(int(getattr(r, name)) for r in rows)

    cost = sum(r.cost_usd for r in rows)
    return PremiumFigures(
        requests=count("requests"),
        input_tokens=count("input_tokens"),
        output_tokens=count("output_tokens"),
        cache_read_tokens=count("cache_read_tokens"),
        cache_write_tokens=count("cache_write_tokens"),
        tokens=count("tokens"),
        cost_usd=usd(cost),
        group_share=None,
        frontier_share=share(cost, frontier_cost),
        cache_read_share=share(count("cache_read_tokens"), count("input_tokens")),
        priced=all(r.priced for r in rows),
        month_usd=usd(sum(r.month_usd for r in rows)),
        at_price_month_usd=total("at_price_month_usd"),
        target_cost_usd=total("target_cost_usd"),
        target_month_usd=total("target_month_usd"),
        cached_month_usd=total("cached_month_usd"),
        target_cached_month_usd=total("target_cached_month_usd"),
        saving_month_usd=total("saving_month_usd"),
    )


def _sum(costs: Iterable[float | None]) -> float | None:
    """The sum (0 for no part); None when any part is unpriced (a partial sum would look
    whole)."""
    found = list(costs)
    return None if any(c is None for c in found) else sum(c or 0.0 for c in found)
