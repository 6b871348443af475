"""`premium-review`: the premium-model review queue (seed 000, panel 4). Which workflows
send traffic to frontier models, and what the same traffic would cost on a cheaper model
or with prompt caching on its repeated prefix.

Rows: one per group (workflow_tag by default, any routable grouping) x frontier model
actually served (the `model` dimension: what went upstream, not what was asked for; tiers
in `analytics/tiers.py`, overridable by the analytics config's `model_tiers`), by cost,
at most `limit`. Each row (its figures built in `premium_figures.py`): requests, tokens
of each kind, cost; its share of the group's spend on every model and of all frontier
spend; the observed cache-read ratio; and, as a month (window figures x 30 days / the
window's length), its cost as it is, on the cheaper target (`premium_targets.py`), with
prompt caching, and both. Beside it, the `gateway-load-balancing-config` document that
would make the move (`premium_change.py`), and in the `changes` breakdown one document
per model name holding every reviewed group's route. A breakdown by tier gives the
premium share of all spend.

Actions: a group whose move saves money (the document, and the what-if that checks it
against the ledger), prompt caching where the prefix is not read from cache yet, and
frontier spend with no value for the grouping (it cannot be routed by it until tagged).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from msgspec import structs

from sluicegate.analytics.config import AnalyticsSettings, ModelTier
from sluicegate.analytics.dimensions import DIMENSIONS, AnyDimension
from sluicegate.analytics.measures import Figures
from sluicegate.analytics.panels.base import (
    Breakdown,
    Layer,
    PanelAnswer,
    PanelContext,
)
from sluicegate.analytics.panels.burn_rate import missing_value
from sluicegate.analytics.panels.common import answer_of, group_of, label_of, plan, share, usd
from sluicegate.analytics.panels.premium_actions import actions
from sluicegate.analytics.panels.premium_change import (
    Change,
    Move,
    change_for,
    serving,
    when_of,
)
from sluicegate.analytics.panels.premium_figures import (
    MEASURES,
    Projector,
    Traffic,
    summed,
    total_figures,
)
from sluicegate.analytics.panels.premium_rows import (
    CHANGE_COLUMNS,
    COLUMNS,
    ChangeRow,
    ModelPath,
    PremiumRow,
    TierRow,
)
from sluicegate.analytics.query import MAX_LIMIT
from sluicegate.analytics.reader import Group
from sluicegate.analytics.scope import ScopedQuery
from sluicegate.analytics.tiers import tier_of
from sluicegate.analytics.window import DAY
from sluicegate.errors import InvalidRequest
from sluicegate.providers.catalog import Catalog

MODEL, PROVIDER, REQUESTED = (DIMENSIONS[n] for n in ("model", "provider", "requested_model"))
PATH = (PROVIDER, REQUESTED)  # how one row's traffic reached its model
MONTH_DAYS = 30
MAX_FRONTIER_MODELS = 50  # frontier models reviewed (the dearest): bounds the IN list
MAX_NAMES = 3  # model names asked for, per row, given a document


class PremiumReviewPanel:
    name = "premium-review"
    title = "Premium-model review queue"
    layer = Layer.ACTIVITY
    question = (
        "Which workflows send traffic to frontier models, what share of their spend is it, "
        "and what would the same traffic cost on a cheaper model or with prompt caching?"
    )
    default_limit = 20

    def default_group_by(self, settings: AnalyticsSettings) -> str:
        return "workflow_tag"

    async def answer(self, context: PanelContext, query: ScopedQuery) -> PanelAnswer[Any]:
        group = query.query.group_by
        _check_grouping(group)
        settings = context.settings
        by_model, total, notes, source = await _by_model(context, query)
        tiers = _tiers(by_model, total, settings)
        frontier = [g for g in by_model if g.values[0] and _tier(g, settings) == "frontier"]
        if len(frontier) > MAX_FRONTIER_MODELS:
            notes.append(
                f"the {MAX_FRONTIER_MODELS} dearest of {len(frontier)} frontier models are reviewed"
            )
            frontier = frontier[:MAX_FRONTIER_MODELS]
        traffic = await _traffic(context, query, [g.values[0] for g in frontier], notes)
        group_spend = await _group_spend(context, query)
        frontier_cost = sum(g.figures["cost_usd"] for g in frontier)
        scale = MONTH_DAYS * DAY / query.query.window.seconds
        projector = Projector(context, scale, notes)
        ordered = sorted(traffic, key=_by_cost)
        rows = [_row(projector, t, group, group_spend, frontier_cost) for t in ordered]
        shown = rows[: query.query.limit]
        if len(rows) > len(shown):
            rest = sum(r.cost_usd for r in rows[len(shown) :])
            notes.append(f"{len(rows) - len(shown)} more rows (${rest:,.2f}) past the limit")
        changes = _changes(context, group, list(zip(ordered, shown, strict=False)), notes)
        answer = answer_of(
            self,
            query,
            source=source,
            columns=COLUMNS,
            rows=shown,
            totals=_totals(rows, frontier_cost),
            notes=[*notes, *_method_notes(context.settings, scale)],
        )
        answer.breakdowns = [
            Breakdown("tiers", "spend by model tier (the premium share)", tiers),
            Breakdown(
                "changes",
                "the load-balancing documents: one per model name, every reviewed group",
                changes,
                CHANGE_COLUMNS,
            ),
        ]
        answer.actions = actions(group, shown, rows, settings.prompt_cache_share)
        return answer


PANEL = PremiumReviewPanel()


def _check_grouping(group: Sequence[AnyDimension]) -> None:
    clash = [d.name for d in group if d in (MODEL, *PATH)]
    if clash:
        raise InvalidRequest(
            f"group_by: premium-review already splits rows by the served model and reads "
            f"{clash[0]} itself; group by workflow_tag, team, project, environment, "
            "cost_center or metadata.KEY",
            param="group_by",
        )


def _tier(g: Group, settings: AnalyticsSettings) -> ModelTier:
    return tier_of(g.values[0], settings.model_tiers)


def _by_cost(t: Traffic) -> tuple[float, int, tuple[str, ...], str]:
    tokens = summed(t.paths)
    return (-tokens["cost_usd"], -int(tokens["requests"]), t.values, t.model)


# -- reading ---------------------------------------------------------------------------


async def _by_model(
    context: PanelContext, query: ScopedQuery
) -> tuple[list[Group], Figures, list[str], str]:
    """Spend per served model (dearest first) and in all, under the query's filters."""
    read, notes = plan(context, query, MEASURES, group=(MODEL,))
    groups = await context.reader.groups(read, MEASURES, (MODEL,), limit=MAX_LIMIT)
    if len(groups) < MAX_LIMIT:  # every model read: the total is their sum
        total = summed(groups)
    else:
        total = await context.reader.total(read, MEASURES)
        notes.append(f"only the {MAX_LIMIT} dearest models were read")
    return groups, total, notes, read.source.name


async def _traffic(
    context: PanelContext, query: ScopedQuery, models: list[str], notes: list[str]
) -> list[Traffic]:
    """Per group x frontier model, its paths (account x name asked for), in one read."""
    if not models:
        return []
    group = query.query.group_by
    dims = (*group, MODEL, *PATH)
    read, more = plan(context, query, MEASURES, group=dims)
    notes += more
    paths = await context.reader.groups(
        read, MEASURES, dims, limit=MAX_LIMIT, among=(MODEL, models)
    )
    if len(paths) == MAX_LIMIT:
        notes.append(f"only the {MAX_LIMIT} dearest group x model x path rows were read")
    found: dict[tuple[tuple[str, ...], str], Traffic] = {}
    for path in paths:
        values, model = path.values[: len(group)], path.values[len(group)]
        key = (values, model)
        if key not in found:
            found[key] = Traffic(values, model)
        found[key].paths.append(path)
    return list(found.values())


async def _group_spend(context: PanelContext, query: ScopedQuery) -> dict[tuple[str, ...], float]:
    """Each group's spend on every model (for its rows' share)."""
    group = query.query.group_by
    read, _ = plan(context, query, ("requests", "cost_usd"), group=group)
    groups = await context.reader.groups(read, ("requests", "cost_usd"), group, limit=MAX_LIMIT)
    return {g.values: g.figures["cost_usd"] for g in groups}


# -- rows ------------------------------------------------------------------------------


def _row(
    projector: Projector,
    traffic: Traffic,
    dims: Sequence[AnyDimension],
    group_spend: dict[tuple[str, ...], float],
    frontier_cost: float,
) -> PremiumRow:
    spend = group_spend.get(traffic.values, 0.0)
    figures, target = projector.figures(traffic, spend, frontier_cost)
    untagged = traffic.values[0] in ("", missing_value(dims[0]))
    return PremiumRow(
        **structs.asdict(figures),
        group=group_of(dims, traffic.values),
        label=label_of(traffic.values),
        kind="untagged" if untagged else "group",
        model=traffic.model,
        target=target.name if target else None,
        target_source=target.source if target else None,
        paths=[
            ModelPath(
                provider=p.values[-2] or None,
                requested_model=p.values[-1] or None,
                requests=int(p.figures["requests"]),
                cost_usd=usd(p.figures["cost_usd"]),
            )
            for p in traffic.paths
        ],
    )


def _totals(rows: list[PremiumRow], frontier_cost: float) -> PremiumRow:
    return PremiumRow(
        **structs.asdict(total_figures(rows, frontier_cost)),
        group={},
        label="total",
        kind="total",
        model=None,
        target=None,
        target_source=None,
    )


def _tiers(groups: list[Group], total: Figures, settings: AnalyticsSettings) -> list[TierRow]:
    spent: dict[str, list[float]] = {}
    for g in groups:
        tier = _tier(g, settings) if g.values[0] else "(no model)"
        figures = spent.setdefault(tier, [0, 0.0])
        figures[0] += g.figures["requests"]
        figures[1] += g.figures["cost_usd"]
    order = ("frontier", "standard", "economy", "(no model)")
    return [
        TierRow(
            value=tier,
            requests=int(spent[tier][0]),
            cost_usd=usd(spent[tier][1]),
            share=share(usd(spent[tier][1]), usd(total["cost_usd"])),
        )
        for tier in order
        if tier in spent
    ]


# -- the documents ---------------------------------------------------------------------


def _changes(
    context: PanelContext,
    dims: Sequence[AnyDimension],
    shown: list[tuple[Traffic, PremiumRow]],
    notes: list[str],
) -> list[ChangeRow]:
    """Each shown row's own document (in `row.yaml`), and per model name one document
    holding every shown row's route (the breakdown)."""
    catalog = context.catalog
    if catalog is None:
        return []
    per_name: dict[str, list[tuple[PremiumRow, Move, tuple[str, str]]]] = {}
    unroutable = 0
    dearer: Counter[tuple[str, str]] = Counter()
    for traffic, row in shown:
        target = catalog.model(row.target) if row.target else None
        if target is None or row.saving_month_usd is None:
            continue
        if row.saving_month_usd <= 0:
            dearer[(row.target or "", row.model or "")] += 1
            continue
        when = when_of(dims, traffic.values)
        if when is None:
            unroutable += 1
            continue
        move = Move(when, target.provider, target.upstream_model, row.label)
        own: list[Change] = []
        for name in _names(row, catalog):
            today = serving(context.config, catalog, name, row.model or "")
            if today is None:
                notes.append(
                    f"{name} does not route to {row.model} in the config in force (its traffic "
                    f"got there by a fallback, or under an older config): not rerouted"
                )
                continue
            own.append(change_for(name, [move], context.config, today))
            per_name.setdefault(name, []).append((row, move, today))
        row.changes = [c.virtual_model for c in own]
        row.yaml = "---\n".join(c.yaml for c in own) or None
    notes += [
        f"{target} would cost no less than {model} for the same tokens ({n} rows): no move "
        "proposed; name a cheaper one in cheaper_targets"
        for (target, model), n in dearer.items()
    ]
    if unroutable:
        notes.append(
            f"{unroutable} rows have no document: a route matches workflow_tag, team, "
            "project, environment, cost_center and metadata keys, and only a value present"
        )
    merged = []
    for name, moves in per_name.items():
        change = change_for(name, [m for _, m, _ in moves], context.config, moves[0][2])
        merged.append(
            ChangeRow(
                virtual_model=name,
                existing=change.existing,
                groups=", ".join(r.label for r, _, _ in moves),
                yaml=change.yaml,
            )
        )
    return merged


def _names(row: PremiumRow, catalog: Catalog) -> list[str]:
    """The model names the row's traffic asked for, aliases resolved, dearest first, at
    most MAX_NAMES."""
    names: dict[str, None] = {}
    for path in sorted(row.paths, key=lambda p: -p.cost_usd):
        if path.requested_model:
            names[catalog.resolve_alias(path.requested_model)] = None
    return list(names)[:MAX_NAMES]


def _method_notes(settings: AnalyticsSettings, scale: float) -> list[str]:
    return [
        f"month figures are the window's x {scale:.2f} (30 days over the window's length), "
        "at the window's rate",
        "frontier: the served model's tier (analytics/tiers.py defaults; the analytics "
        "config's model_tiers overrides)",
        "cheaper target: the analytics config's cheaper_targets, else the same account's "
        "standard-tier catalogue model; priced at the catalogue's prices on the same tokens",
        f"cached: {settings.prompt_cache_share:.0%} of input read from cache at the model's "
        "cache-read price (prompt_cache_share), cache writes as recorded: a floor",
    ]
