"""`latency`: latency and errors, and what the controls did (seed 002; seed 000's control
layer). p50/p90/p99 of latency and of time to first token, error rate by status class
and error type, by model, provider or any grouping; retries, fallbacks, rate-limit and
budget hits. Percentiles come from the rollups' fixed histogram buckets (exact to within
a bucket, `analytics/histogram.py`).

Actions: a provider whose p99 is far above the others' (its route weights), a provider
failing often (fallbacks and breaker), traffic served by fallbacks, and requests rate
limits or budgets acted on (the documents that hold them).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from sluicegate.analytics.config import AnalyticsSettings
from sluicegate.analytics.dimensions import DIMENSIONS, AnyDimension, Dimension
from sluicegate.analytics.histogram import percentile
from sluicegate.analytics.measures import (
    LATENCY_HISTOGRAM,
    TTFT_HISTOGRAM,
    Figures,
    as_figure,
    subtract,
)
from sluicegate.analytics.panels import controls
from sluicegate.analytics.panels.base import (
    Action,
    Breakdown,
    Column,
    Control,
    ControlKind,
    Layer,
    PanelAnswer,
    PanelContext,
    Where,
)
from sluicegate.analytics.panels.common import answer_of, group_of, label_of, plan, share
from sluicegate.analytics.panels.latency_raw import one_scan
from sluicegate.analytics.reader import Group, Order, Plan, Step
from sluicegate.analytics.scope import ScopedQuery
from sluicegate.analytics.window import DAY, HOUR, iso

CONTROL_MEASURES = ("attempts", "retries", "fallbacks", "rate_limit_hits", "budget_hits")
LATENCY = ("latency_count", "latency_sum_ms", *LATENCY_HISTOGRAM)
TTFT = ("ttft_count", "ttft_sum_ms", *TTFT_HISTOGRAM)
MEASURES = ("requests", "errors", *LATENCY, *TTFT, *CONTROL_MEASURES)
SERIES_MEASURES = ("requests", "errors", *LATENCY)
HOURLY_UP_TO_S = 3 * DAY  # a longer window's series is daily
MIN_SAMPLES = 20  # fewer requests than this say nothing about a provider
SLOW_FACTOR = 3.0  # a provider's p99 this many times the others' median is an outlier
SLOW_MARGIN_MS = 100.0  # ... and at least this much slower (1 ms vs 3 ms is no finding)
FAILURE_RATE_ALERT = 0.05  # a provider's share of requests answered with a 5xx
FALLBACK_SHARE_ALERT = 0.05
ERROR_TYPES_SHOWN = 10
STATUS_CLASSES_SHOWN = 10
PROVIDERS_CHECKED = 50
FAILED_CLASS = "5xx"
CONTROL_CELLS = tuple(DIMENSIONS[name] for name in ("provider", "status_class", "error_type"))
CELLS_READ = 5000  # (provider, status class, error type) cells read in one statement


class Percentiles(msgspec.Struct, frozen=True):
    p50: float | None
    p90: float | None
    p99: float | None
    mean: float | None
    samples: int


class LatencyRow(msgspec.Struct, kw_only=True):
    group: dict[str, str | None]
    label: str
    kind: Literal["group", "other", "total"]
    requests: int
    errors: int
    error_rate: float | None
    latency_ms: Percentiles
    ttft_ms: Percentiles
    attempts: int
    retries: int
    fallbacks: int
    rate_limit_hits: int
    budget_hits: int


class LatencyPoint(msgspec.Struct, kw_only=True):
    start: str
    start_unix: float
    requests: int
    errors: int
    error_rate: float | None
    latency_ms: Percentiles


class ShareRow(msgspec.Struct, kw_only=True):
    value: str | None
    requests: int
    share: float | None  # of all requests in the window


COLUMNS = [
    Column("label", "group"),
    Column("requests", "requests"),
    Column("error_rate", "error rate"),
    Column("latency_ms.p50", "p50 ms"),
    Column("latency_ms.p90", "p90 ms"),
    Column("latency_ms.p99", "p99 ms"),
    Column("ttft_ms.p50", "ttft p50"),
    Column("ttft_ms.p99", "ttft p99"),
    Column("retries", "retries"),
    Column("fallbacks", "fallbacks"),
    Column("rate_limit_hits", "rate limited"),
    Column("budget_hits", "budget hits"),
]


class LatencyPanel:
    name = "latency"
    title = "Latency and errors"
    layer = Layer.CONTROL
    question = (
        "Which models and providers are slow or failing, and what did retries, fallbacks, "
        "rate limits and budgets do about it?"
    )
    default_limit = 50

    def default_group_by(self, settings: AnalyticsSettings) -> str:
        return "provider,model"

    async def answer(self, context: PanelContext, query: ScopedQuery) -> PanelAnswer[Any]:
        """Three statements: the groups, the control cells (totals, breakdowns and the
        providers' figures, from one grouping) and the series, run at once on their own
        connections (they read different rollups, or raw rows three times: the answer
        waits for the slowest, not for their sum)."""
        reader, q = context.reader, query.query
        read, notes = plan(context, query, MEASURES, group=q.group_by)
        people = any(isinstance(d, Dimension) and d.people for d in q.group_by)
        order: Order = "names" if people else "figures"
        views = await _from_raw_rows(context, query, read, order)
        if views is not None:
            groups, cells, series = views
        else:
            groups, cells, series = await reader.together(
                reader.groups(read, MEASURES, q.group_by, limit=q.limit, order=order),
                _control_cells(context, query),
                _series(context, query),
            )
        total = cells.total
        rows = [_row(q.group_by, g.values, g.figures, "group") for g in groups]
        if len(groups) == q.limit:
            rest = subtract(total, [g.figures for g in groups])
            if rest["requests"]:
                rows.append(_row(q.group_by, (), rest, "other", label="other"))
        answer = answer_of(
            self,
            query,
            source=read.source.name,
            columns=COLUMNS,
            rows=rows,
            totals=_row(q.group_by, (), total, "total", label="total"),
            notes=notes,
        )
        answer.series = series
        answer.breakdowns = _breakdowns(cells)
        answer.actions = [*_provider_actions(context, cells), *_control_actions(context, total)]
        return answer


PANEL = LatencyPanel()


# -- rows ------------------------------------------------------------------------------


def percentiles(figures: Figures, prefix: str) -> Percentiles:
    counts = [int(figures[f"{prefix}_b{i:02d}"]) for i in range(len(LATENCY_HISTOGRAM))]
    samples = int(figures[f"{prefix}_count"])
    mean = figures[f"{prefix}_sum_ms"] / samples if samples else None
    return Percentiles(
        p50=_ms(percentile(counts, 0.5)),
        p90=_ms(percentile(counts, 0.9)),
        p99=_ms(percentile(counts, 0.99)),
        mean=_ms(mean),
        samples=samples,
    )


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _row(
    dims: Sequence[AnyDimension],
    values: Sequence[str],
    figures: Figures,
    kind: Literal["group", "other", "total"],
    *,
    label: str | None = None,
) -> LatencyRow:
    requests = int(figures["requests"])
    return LatencyRow(
        group=group_of(dims, values) if kind == "group" else {},
        label=label_of(values) if label is None else label,
        kind=kind,
        requests=requests,
        errors=int(figures["errors"]),
        error_rate=share(figures["errors"], requests),
        latency_ms=percentiles(figures, "latency"),
        ttft_ms=percentiles(figures, "ttft"),
        **{name: int(figures[name]) for name in CONTROL_MEASURES},
    )


async def _from_raw_rows(
    context: PanelContext, query: ScopedQuery, read: Plan, order: Order
) -> tuple[list[Group], _ControlCells, list[LatencyPoint]] | None:
    """The three reads from one scan (latency_raw.py), when all three would read raw rows;
    None otherwise, or past the cells one scan may hand back."""
    cells_read, _ = plan(context, query, MEASURES, group=CONTROL_CELLS)
    series_read, _ = plan(context, query, SERIES_MEASURES, group=())
    if not (read.source.raw and cells_read.source.raw and series_read.source.raw):
        return None
    q = query.query
    views = await one_scan(
        context.reader,
        read,
        MEASURES,
        q.group_by,
        CONTROL_CELLS,
        step=_step(q.window.seconds),
        limit=q.limit,
        order=order,
    )
    if views is None:
        return None
    series = [_point(p) for p in views.series]
    return views.groups, _ControlCells(views.total, views.cells[:CELLS_READ]), series


def _step(seconds: float) -> Step:
    return "hour" if seconds <= HOURLY_UP_TO_S else "day"


async def _series(context: PanelContext, query: ScopedQuery) -> list[Any]:
    window = query.query.window
    step = _step(window.seconds)
    width = HOUR if step == "hour" else DAY
    read, _ = plan(context, query, SERIES_MEASURES, group=())
    points = await context.reader.series(
        read, SERIES_MEASURES, step, limit=math.ceil(window.seconds / width) + 1
    )
    return [_point(p) for p in points]


def _point(group: Group) -> LatencyPoint:
    start = group.step or 0.0
    figures = group.figures
    return LatencyPoint(
        start=iso(start),
        start_unix=start,
        requests=int(figures["requests"]),
        errors=int(figures["errors"]),
        error_rate=share(figures["errors"], figures["requests"]),
        latency_ms=percentiles(figures, "latency"),
    )


@dataclass(frozen=True, slots=True)
class _ControlCells:
    """The window's figures by (provider, status class, error type): few cells, from
    which the totals, both breakdowns and the provider checks are added up in Python
    instead of four more scans of the window."""

    total: Figures
    cells: list[Group]

    def by(self, position: int, *, without_empty: bool = False) -> list[Group]:
        """The cells summed by one of their values (0 provider, 1 status class, 2 error
        type), the most requests first, then by value (the reader's order)."""
        sums: dict[str, Figures] = {}
        for cell in self.cells:
            value = cell.values[position]
            if without_empty and not value:
                continue
            found = sums.get(value)
            sums[value] = dict(cell.figures) if found is None else _added(found, cell.figures)
        summed = [Group((value,), figures) for value, figures in sums.items()]
        return sorted(summed, key=lambda g: (-g.figures["requests"], g.values[0]))


def _added(a: Figures, b: Figures) -> Figures:
    return {name: value + b[name] for name, value in a.items()}


async def _control_cells(context: PanelContext, query: ScopedQuery) -> _ControlCells:
    """One grouping by CONTROL_CELLS; past CELLS_READ cells (a ledger with thousands of
    error types) the total is read on its own so that it stays exact."""
    read, _ = plan(context, query, MEASURES, group=CONTROL_CELLS)
    cells = await context.reader.groups(
        read, MEASURES, CONTROL_CELLS, limit=CELLS_READ, order="names"
    )
    if len(cells) < CELLS_READ:
        total: Figures = {name: as_figure(name, 0) for name in MEASURES}
        for cell in cells:
            total = _added(total, cell.figures)
        return _ControlCells(total, cells)
    return _ControlCells(await context.reader.total(read, MEASURES), cells)


def _breakdowns(cells: _ControlCells) -> list[Breakdown[Any]]:
    """Requests by status class (in their order), and errors by type (the commonest
    first)."""
    classes = sorted(cells.by(1), key=lambda g: g.values[0])[:STATUS_CLASSES_SHOWN]
    types = cells.by(2, without_empty=True)[:ERROR_TYPES_SHOWN]
    everything = cells.total["requests"]
    return [
        Breakdown("status_class", "requests by status class", _shares(classes, everything)),
        Breakdown("error_type", "errors by type", _shares(types, everything)),
    ]


def _shares(groups: list[Group], whole: float) -> list[ShareRow]:
    return [
        ShareRow(
            value=g.values[0] or None,
            requests=int(g.figures["requests"]),
            share=share(g.figures["requests"], whole),
        )
        for g in groups
    ]


# -- actions ---------------------------------------------------------------------------


def _provider_actions(context: PanelContext, cells: _ControlCells) -> list[Action]:
    """A provider much slower than the others, and one failing often (a 5xx: the
    provider failed or timed out; 4xx are the caller's or the gateway's refusals)."""
    groups = cells.by(0, without_empty=True)[:PROVIDERS_CHECKED]
    failed: dict[str, float] = {}
    for cell in cells.cells:
        if cell.values[1] == FAILED_CLASS:
            failed[cell.values[0]] = failed.get(cell.values[0], 0) + cell.figures["requests"]
    sampled = {g.values[0]: g.figures for g in groups if g.figures["latency_count"] >= MIN_SAMPLES}
    p99 = {name: percentiles(f, "latency").p99 or 0.0 for name, f in sampled.items()}
    actions = []
    for provider, value in p99.items():
        others = [v for name, v in p99.items() if name != provider]
        if not others:
            continue
        typical = statistics.median(others)
        if value >= SLOW_FACTOR * typical and value - typical >= SLOW_MARGIN_MS:
            actions += _route_actions(
                context,
                provider,
                f"provider {provider} p99 latency {value:.0f} ms is {value / max(typical, 1):.1f}x "
                f"the other providers' ({typical:.0f} ms) over the window: review its route "
                "weights, or make it a fallback",
            )
    for group in groups:
        provider, requests = group.values[0], group.figures["requests"]
        rate = failed.get(provider, 0) / requests if requests else 0.0
        if requests >= MIN_SAMPLES and rate >= FAILURE_RATE_ALERT:
            actions += _route_actions(
                context,
                provider,
                f"provider {provider} failed {rate:.0%} of its {int(requests)} requests (5xx): "
                "give its routes a fallback on another provider and check its circuit breaker "
                "(sluicegate targets)",
            )
    return actions


def _route_actions(context: PanelContext, provider: str, message: str) -> list[Action]:
    routes = controls.routes_to(context.config, provider)
    if not routes:  # called by model name, outside any virtual model
        return [Action(message, Control("route", provider), Where(controls.ROUTING))]
    return [
        Action(message, Control("route", name), Where(controls.ROUTING, name)) for name in routes
    ]


_POLICY_CONTROLS: tuple[tuple[str, ControlKind, tuple[str, ...], str], ...] = (
    ("rate_limit_hits", "rate_limit", controls.RATE_LIMITS, "a rate limit"),
    ("budget_hits", "budget", (controls.BUDGETS,), "a budget"),
)


def _control_actions(context: PanelContext, total: Figures) -> list[Action]:
    requests = total["requests"]
    actions = []
    if requests >= MIN_SAMPLES and total["fallbacks"] / requests >= FALLBACK_SHARE_ALERT:
        message = (
            f"{total['fallbacks'] / requests:.0%} of requests were answered by a fallback: "
            "their primary targets are failing or slow; review the route's targets"
        )
        routing = controls.documents(context.config, controls.ROUTING)
        actions += [
            Action(message, Control("route", name), Where(doc_type, name))
            for doc_type, name in routing
        ]
    for measure, kind, types, what in _POLICY_CONTROLS:
        hits = int(total[measure])
        if not hits:
            continue
        message = (
            f"{hits} requests ({hits / requests:.1%}) were acted on by {what}: "
            "raise it if the traffic is expected, or find the caller (group by team or project)"
        )
        docs = controls.documents(context.config, *types)
        if not docs:  # acted on under an earlier config version: none is in force now
            actions.append(Action(message, Control(kind, "none in force"), Where(types[0])))
        actions += [
            Action(message, Control(kind, name), Where(doc_type, name)) for doc_type, name in docs
        ]
    return actions
