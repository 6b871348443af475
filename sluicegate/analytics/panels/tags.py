"""`tags`: spend (cost, tokens, requests) by any tag, custom metadata keys included
(seed 002: customers of a multi-tenant SaaS, features): `group_by=metadata.customer_id`.

The top N groups by cost, then an "other" row (the groups past N) and a "(no value)" row
(requests without the first grouped tag), so the rows add up to the total. A metadata key
named in the analytics config is read from its rollup, and its "(no value)" row is the
total (from `rollup_usage`) less what the key's rows hold; any other key is read from
raw requests over a bounded window.

Actions: spend that carries no value for the tag (callers should send it), one value
holding most of the spend without a budget scoped to it, and a key read from raw rows
that should be rolled up.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from sluicegate.analytics.config import AnalyticsSettings
from sluicegate.analytics.dimensions import AnyDimension, Dimension, MetadataDimension
from sluicegate.analytics.measures import Figures, subtract
from sluicegate.analytics.panels import controls
from sluicegate.analytics.panels.base import (
    Action,
    Column,
    Control,
    Layer,
    PanelAnswer,
    PanelContext,
    Where,
)
from sluicegate.analytics.panels.common import (
    NO_VALUE_LABEL,
    answer_of,
    group_of,
    label_of,
    plan,
    share,
    usd,
)
from sluicegate.analytics.scope import ScopedQuery
from sluicegate.model.identity import UNTAGGED

MEASURES = ("requests", "errors", "input_tokens", "output_tokens", "cost_usd")
UNATTRIBUTED_ALERT = 0.05  # share of cost with no value for the tag
CONCENTRATION_ALERT = 0.5  # one value's share of the tagged cost
# the header a caller sets each taggable dimension with
HEADERS = {
    "team": "X-Sluice-Team",
    "project": "X-Sluice-Project",
    "workflow_tag": "X-Sluice-Workflow-Tag",
    "environment": "X-Sluice-Environment",
    "cost_center": "X-Sluice-Cost-Center",
}
METADATA_HEADER = "X-Sluice-Metadata"
BUDGETABLE = frozenset({"team", "project", "workflow_tag", "environment", "cost_center"})

RowKind = Literal["group", "other", "no_value", "total"]


class TagRow(msgspec.Struct, kw_only=True):
    group: dict[str, str | None]
    label: str
    kind: RowKind
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    tokens: int  # input + output
    cost_usd: float
    cost_share: float | None  # of the total cost in the window


COLUMNS = [
    Column("label", "tag"),
    Column("requests", "requests"),
    Column("tokens", "tokens"),
    Column("cost_usd", "cost $"),
    Column("cost_share", "share"),
    Column("errors", "errors"),
]


class TagsPanel:
    name = "tags"
    title = "Spend by tag"
    layer = Layer.ACTIVITY
    question = (
        "Where does the spend go by any tag, such as a customer or a feature, and how much "
        "of it carries no tag at all?"
    )
    default_limit = 20

    def default_group_by(self, settings: AnalyticsSettings) -> str:
        keys = settings.rollup_metadata_keys
        return f"metadata.{keys[0]}" if keys else "project"

    async def answer(self, context: PanelContext, query: ScopedQuery) -> PanelAnswer[Any]:
        reader, q = context.reader, query.query
        first = q.group_by[0]
        read, notes = plan(context, query, MEASURES, group=q.group_by, derives_no_value=True)
        people = any(isinstance(d, Dimension) and d.people for d in q.group_by)
        groups, tagged, total = await reader.groups_and_totals(
            read,
            MEASURES,
            q.group_by,
            limit=q.limit,
            order="names" if people else "figures",
            tagged_by=first,
        )
        if read.source.partial_on == first.name:
            # that table holds only requests with a value for the tag: the whole is elsewhere
            whole, more_notes = plan(context, query, MEASURES, group=())
            notes += more_notes
            total = await reader.total(whole, MEASURES)
        cost = total["cost_usd"]
        rows = [_row(q.group_by, g.values, g.figures, "group", cost) for g in groups]
        other = subtract(tagged, [g.figures for g in groups])
        if other["requests"]:
            rows.append(_row(q.group_by, (), other, "other", cost, label="other"))
        untagged = subtract(total, [tagged])
        if untagged["requests"]:
            rows.append(_row(q.group_by, (), untagged, "no_value", cost, label=NO_VALUE_LABEL))
        answer = answer_of(
            self,
            query,
            source=read.source.name,
            columns=COLUMNS,
            rows=rows,
            totals=_row(q.group_by, (), total, "total", cost, label="total"),
            notes=notes,
        )
        answer.actions = [
            *_unattributed(first, rows, cost),
            *_concentrated(context, q.group_by, rows, tagged["cost_usd"]),
            *_roll_up(context, q.metadata_keys(), read.source.raw),
        ]
        return answer


PANEL = TagsPanel()


def _row(
    dims: Sequence[AnyDimension],
    values: Sequence[str],
    figures: Figures,
    kind: RowKind,
    whole_cost: float,
    *,
    label: str | None = None,
) -> TagRow:
    inputs, outputs = int(figures["input_tokens"]), int(figures["output_tokens"])
    return TagRow(
        group=group_of(dims, values) if kind == "group" else {},
        label=label_of(values) if label is None else label,
        kind=kind,
        requests=int(figures["requests"]),
        errors=int(figures["errors"]),
        input_tokens=inputs,
        output_tokens=outputs,
        tokens=inputs + outputs,
        cost_usd=usd(figures["cost_usd"]),
        cost_share=share(usd(figures["cost_usd"]), usd(whole_cost)),
    )


def _unattributed(first: AnyDimension, rows: list[TagRow], cost: float) -> list[Action]:
    """Spend with no value for the tag: only its callers can fix it, by sending it."""
    if isinstance(first, MetadataDimension):
        header, how = METADATA_HEADER, f'{{"{first.key}": "..."}}'
    elif first.name in HEADERS:
        header, how = HEADERS[first.name], "on every request (or on the caller's key)"
    else:
        return []
    missing = [
        r for r in rows if r.kind == "no_value" or (first.name == "project" and r.label == UNTAGGED)
    ]
    spent = sum(r.cost_usd for r in missing)
    if not cost or spent / cost < UNATTRIBUTED_ALERT:
        return []
    message = (
        f"{spent / cost:.0%} of spend (${spent:.2f}) carries no {first.name}: it cannot be "
        f"attributed or held to a budget; have its callers send {header} {how}"
    )
    return [Action(message, Control("config", first.name), Where("header", header))]


def _concentrated(
    context: PanelContext, dims: Sequence[AnyDimension], rows: list[TagRow], tagged_cost: float
) -> list[Action]:
    """One value with most of the tagged spend and no budget scoped to it."""
    groups = [r for r in rows if r.kind == "group"]
    if len(dims) != 1 or len(rows) < 2 or not groups or tagged_cost <= 0:
        return []
    dim, top = dims[0], max(groups, key=lambda r: r.cost_usd)
    value = top.group.get(dim.name)
    budgetable = isinstance(dim, MetadataDimension) or dim.name in BUDGETABLE
    if not budgetable or value is None or top.cost_usd / tagged_cost < CONCENTRATION_ALERT:
        return []
    if controls.budgets_for(context.config, dim.name, value):
        return []
    scope_key = dim.key if isinstance(dim, MetadataDimension) else dim.name
    message = (
        f"{dim.name} {value} is {top.cost_usd / tagged_cost:.0%} of the tagged spend "
        f"(${top.cost_usd:.2f}) and no budget is scoped to it: add one with "
        f"scope.metadata {{{scope_key}: {value}}}"
    )
    return [Action(message, Control("budget", f"{dim.name}={value}"), Where(controls.BUDGETS))]


def _roll_up(context: PanelContext, keys: set[str], raw: bool) -> list[Action]:
    missing = sorted(k for k in keys if k not in context.settings.rollup_metadata_keys)
    if not raw or not missing:
        return []
    docs = controls.documents(context.config, controls.ANALYTICS)
    name = docs[0][1] if docs else None
    days = context.settings.raw_query_max_days
    return [
        Action(
            f"metadata.{key} is read from raw requests, at most {days} days back: add it to "
            "rollup_metadata_keys so this view is fast and reaches further",
            Control("config", "rollup_metadata_keys"),
            Where(controls.ANALYTICS, name),
        )
        for key in missing
    ]
