"""What requests the proposal routes differently would have cost on their new targets.

For each such request (its model resolves to other targets, shares or prices than under
the live config), its recorded tokens are priced at each proposed target and weighted by
the share of traffic the target can expect; beside that, what the request cost as
recorded and where it was served. Figures are kept per model name (a virtual model, or a
catalog model a routing document now takes over) and per target.
"""

from __future__ import annotations

import msgspec

from sluicegate.pricing import price_at
from sluicegate.whatif.routes import Costing
from sluicegate.whatif.rows import ReplayRow
from sluicegate.whatif.tally import OTHER

MAX_MODELS = 1_000  # model names with figures (then OTHER)
MAX_SERVED = 50  # recorded provider/model per model name (then OTHER)


class ServedFigures(msgspec.Struct):
    """Where the requests were served, as recorded."""

    requests: int = 0
    cost_usd: float = 0.0
    unpriced_requests: int = 0


class TargetFigures(msgspec.Struct):
    """A proposed target's expected part: requests, tokens and cost times its share."""

    target_id: str
    requests: float = 0.0
    input_tokens: float = 0.0
    output_tokens: float = 0.0
    cost_usd: float = 0.0
    unpriced_requests: float = 0.0  # no price on this target: not in cost_usd


class ModelFigures(msgspec.Struct):
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    current_cost_usd: float = 0.0
    current_unpriced_requests: int = 0  # recorded with cost null
    proposed_cost_usd: float = 0.0
    proposed_unpriced_requests: float = 0.0  # expected on targets with no price
    unroutable_requests: int = 0  # nothing in the proposal serves the name (a 404)
    first_at: float | None = None
    served: dict[str, ServedFigures] = msgspec.field(default_factory=dict)
    targets: dict[str, TargetFigures] = msgspec.field(default_factory=dict)


class RoutingReplay:
    def __init__(self) -> None:
        self.models: dict[str, ModelFigures] = {}

    def observe(self, row: ReplayRow, model: str, proposed: Costing | None) -> None:
        """A request with usage whose route the proposal changes."""
        usage = row.usage()
        if usage is None:
            return
        figures = self._figures(model)
        figures.requests += 1
        figures.input_tokens += row.input_tokens or 0
        figures.output_tokens += row.output_tokens or 0
        if figures.first_at is None:
            figures.first_at = row.ts
        served = figures.served.get(row.served() or "(not served)")
        if served is None:
            label = row.served() or "(not served)"
            label = label if len(figures.served) < MAX_SERVED else OTHER
            served = figures.served.setdefault(label, ServedFigures())
        served.requests += 1
        if row.cost_usd is None:
            figures.current_unpriced_requests += 1
            served.unpriced_requests += 1
        else:
            figures.current_cost_usd += row.cost_usd
            served.cost_usd += row.cost_usd
        if proposed is None:
            figures.unroutable_requests += 1
            return
        for share in proposed.shares:
            target = figures.targets.get(share.label)
            if target is None:
                target = figures.targets[share.label] = TargetFigures(share.target_id)
            target.requests += share.share
            target.input_tokens += share.share * (row.input_tokens or 0)
            target.output_tokens += share.share * (row.output_tokens or 0)
            cost = price_at(share.rate, usage).cost_usd
            if cost is None:
                target.unpriced_requests += share.share
                figures.proposed_unpriced_requests += share.share
            else:
                target.cost_usd += share.share * cost
                figures.proposed_cost_usd += share.share * cost

    def _figures(self, model: str) -> ModelFigures:
        figures = self.models.get(model)
        if figures is None:
            key = model if len(self.models) < MAX_MODELS else OTHER
            figures = self.models.setdefault(key, ModelFigures())
        return figures
