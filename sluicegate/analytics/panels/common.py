"""Pieces every panel uses: the read plan for a scoped query, and the parts of an answer
that say what was read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sluicegate.analytics.dimensions import AnyDimension
from sluicegate.analytics.panels.base import (
    Column,
    Layer,
    PanelAnswer,
    PanelContext,
    ScopeView,
    WindowView,
)
from sluicegate.analytics.query import Filter
from sluicegate.analytics.reader import Plan
from sluicegate.analytics.scope import ScopedQuery
from sluicegate.analytics.sources import choose
from sluicegate.analytics.window import Window, iso

NO_VALUE_LABEL = "(no value)"
COST_DIGITS = 9  # nano-dollars: sums agree across dialects to far below this


def plan(
    context: PanelContext,
    scoped: ScopedQuery,
    measures: Sequence[str],
    *,
    group: Sequence[AnyDimension],
    derives_no_value: bool = False,
    extra: Sequence[Filter] = (),
) -> tuple[Plan, list[str]]:
    """Where to read `measures` grouped by `group` under the query's filters (and the
    panel's `extra` ones) and the caller's restriction, and notes on that choice."""
    query = scoped.query
    filters = (*query.filters, *extra)
    filtered = [*(f.dimension for f in filters), *scoped.restricted_dimensions()]
    choice = choose(
        group,
        filtered,
        measures,
        window=query.window,
        settings=context.settings,
        derives_no_value=derives_no_value,
        rolled_up_since=context.rolled_up_since,
    )
    read = Plan(choice.source, query.window, filters, scoped.teams, scoped.user_id)
    return read, choice.notes


def window_view(window: Window) -> WindowView:
    return WindowView(
        since=iso(window.since),
        until=iso(window.until),
        since_unix=window.since,
        until_unix=window.until,
        requested_since=iso(window.requested_since),
        requested_until=iso(window.requested_until),
    )


def answer_of(
    panel: Any,
    scoped: ScopedQuery,
    *,
    source: str,
    columns: list[Column],
    rows: list[Any],
    totals: Any,
    notes: Sequence[str] = (),
    group_by: Sequence[AnyDimension] | None = None,
) -> PanelAnswer[Any]:
    """An answer with what was read filled in from the query; a panel adds series,
    breakdowns and actions."""
    query = scoped.query
    layer: Layer = panel.layer
    return PanelAnswer(
        panel=panel.name,
        title=panel.title,
        layer=layer,
        question=panel.question,
        window=window_view(query.window),
        filters={f.dimension.name: f.value for f in query.filters},
        scope=ScopeView(
            teams=list(scoped.teams) if scoped.teams is not None else None,
            user_id=scoped.user_id,
        ),
        group_by=[d.name for d in (query.group_by if group_by is None else group_by)],
        source=source,
        columns=columns,
        rows=rows,
        totals=totals,
        notes=list(dict.fromkeys(notes)),
    )


def group_of(dims: Sequence[AnyDimension], values: Sequence[str]) -> dict[str, str | None]:
    """A row's grouped values by dimension name; None for no value."""
    return {dim.name: (value or None) for dim, value in zip(dims, values, strict=True)}


def label_of(values: Sequence[str]) -> str:
    return " / ".join(value or NO_VALUE_LABEL for value in values)


def usd(value: float) -> float:
    return round(value, COST_DIGITS) + 0.0  # + 0.0: never -0.0


def share(part: float, whole: float) -> float | None:
    return round(part / whole, 6) if whole else None
