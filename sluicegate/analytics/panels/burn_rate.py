"""`burn-rate`: where the money goes (seed 000, panel 2), by project (default), team,
model, workflow or any grouping, over the window; this month's spend against the budgets
that govern each row, and where it is heading.

Rows, in this order: the UNTAGGED row (spend with no value for the first grouped
dimension: no project, no team...) whenever it is non-zero, the top `limit` groups by
cost, then "other" (the groups past the limit); they add up to `totals`. Beside each row:
its month-to-date spend (the UTC calendar month, as of now) and its projected month-end
(`projection.py`: the month-to-date daily rate over the days elapsed), and the budgets
and rate-limit rules in force that govern it (`governing.py`): name, limit, window,
action, and for budgets their live spend from the policy engine's counters with the same
projection over the budget's own window, flagged when it crosses the ceiling.

Actions: untagged spend (require the header, or pin the field on the callers' keys), a
budget spent or projected past its ceiling, and a large spender no budget names.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from sluicegate.analytics.config import AnalyticsSettings
from sluicegate.analytics.dimensions import AnyDimension, Dimension, MetadataDimension
from sluicegate.analytics.measures import Figures, subtract
from sluicegate.analytics.panels import controls
from sluicegate.analytics.panels.base import (
    Action,
    Breakdown,
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
from sluicegate.analytics.panels.governing import Rule, rules_in_force
from sluicegate.analytics.panels.projection import month_bounds, projected
from sluicegate.analytics.panels.row_controls import (
    BUDGET_COLUMNS,
    ControlLister,
    RowControl,
    budget_statuses,
    summary,
)
from sluicegate.analytics.query import MAX_LIMIT, Filter
from sluicegate.analytics.reader import Group, Step
from sluicegate.analytics.scope import ScopedQuery
from sluicegate.analytics.window import DAY, HOUR, Window, iso
from sluicegate.errors import InvalidRequest

# what rollup_users holds too, so a member's own view is read from rollups
MEASURES = ("requests", "input_tokens", "output_tokens", "cost_usd")
SERIES_MEASURES = ("requests", "cost_usd")
HOURLY_UP_TO_S = 3 * DAY
UNBUDGETED_SHARE = 0.05  # a group's share of the spend that deserves a budget of its own
MAX_UNBUDGETED = 3  # such actions
MAX_BUDGET_ACTIONS = 10  # budgets over their ceilings named in actions
# a dimension callers set with a header, and how a key pins it (`sluicegate keys create`)
HEADERS = {
    "project": ("X-Sluice-Project", "--project P --pin project"),
    "team": ("X-Sluice-Team", "--team T (a key's team is always pinned)"),
    "workflow_tag": ("X-Sluice-Workflow-Tag", "--workflow-tag W --pin workflow_tag"),
    "environment": ("X-Sluice-Environment", "--environment E --pin environment"),
    "cost_center": ("X-Sluice-Cost-Center", "--cost-center C --pin cost_center"),
}

METADATA_HEADER = "X-Sluice-Metadata"

RowKind = Literal["untagged", "group", "other", "total"]


class BurnRow(msgspec.Struct, kw_only=True):
    group: dict[str, str | None]
    label: str
    kind: RowKind
    requests: int
    input_tokens: int
    output_tokens: int
    tokens: int
    cost_usd: float
    cost_share: float | None  # of the total cost in the window
    month_to_date_usd: float | None  # None: not read (see notes)
    projected_month_end_usd: float | None
    over_budget: bool  # a budget beside it is spent or projected past its ceiling
    controls: list[RowControl]
    controls_summary: str


class BurnPoint(msgspec.Struct, kw_only=True):
    start: str
    start_unix: float
    requests: int
    cost_usd: float


COLUMNS = [
    Column("label", "group"),
    Column("requests", "requests"),
    Column("tokens", "tokens"),
    Column("cost_usd", "cost $"),
    Column("cost_share", "share"),
    Column("month_to_date_usd", "month to date $"),
    Column("projected_month_end_usd", "month-end $"),
    Column("controls_summary", "budgets and limits"),
]


@dataclass(frozen=True, slots=True)
class Spend:
    groups: list[Group]  # the top groups by cost, the untagged value left out
    untagged: Figures
    total: Figures


@dataclass(frozen=True, slots=True)
class Month:
    """Month-to-date figures of each row, as of now."""

    start: float
    end: float
    now: float
    spend: Spend | None  # None: not readable (notes say why)
    complete: bool  # every group of the month was read (a group not found spent nothing)

    def of(self, values: tuple[str, ...]) -> float | None:
        if self.spend is None:
            return None
        for group in self.spend.groups:
            if group.values == values:
                return group.figures["cost_usd"]
        return 0.0 if self.complete else None


class BurnRatePanel:
    name = "burn-rate"
    title = "Burn rate"
    layer = Layer.ACTIVITY
    question = (
        "Where does the money go by project, team, model or workflow, how does this "
        "month stand against the budgets that govern it, and how much spend has no owner?"
    )
    default_limit = 20

    def default_group_by(self, settings: AnalyticsSettings) -> str:
        return "project"

    async def answer(self, context: PanelContext, query: ScopedQuery) -> PanelAnswer[Any]:
        q = query.query
        spend, notes, source = await _spend(context, query, q.limit)
        month = await _month(context, query, notes)
        rules, cut = rules_in_force(context.config)
        if cut:
            notes.append(f"only the first {len(rules)} budgets and rate-limit rules are shown")
        statuses = await budget_statuses(context, notes)
        listed = ControlLister(rules, query, statuses, month.now)
        rows = _rows(q.group_by, spend, month, listed)
        totals = _row(q.group_by, (), spend.total, "total", spend.total, month, listed)
        answer = answer_of(
            self,
            query,
            source=source,
            columns=COLUMNS,
            rows=rows,
            totals=totals,
            notes=[*notes, *_month_notes(month), *listed.notes],
        )
        answer.series = await _series(context, query)
        answer.breakdowns = [
            Breakdown("budgets", "budgets beside these rows", listed.budget_rows(), BUDGET_COLUMNS)
        ]
        answer.actions = [
            *_untagged_action(q.group_by[0], rows, spend.total),
            *_budget_actions(listed),
            *_unbudgeted_actions(q.group_by, rows, rules, spend.total),
        ]
        return answer


PANEL = BurnRatePanel()


# -- reading ---------------------------------------------------------------------------


def missing_value(dim: AnyDimension) -> str:
    """How a request without the dimension is stored in rollups (UNTAGGED for a project)."""
    return dim.missing if isinstance(dim, Dimension) else ""


async def _spend(
    context: PanelContext, query: ScopedQuery, limit: int
) -> tuple[Spend, list[str], str]:
    """The top groups by cost (the untagged value apart), the untagged part, the total;
    notes on where they were read, and the table read. A rolled-up metadata key is read
    from its rollup, which holds only requests carrying it: its untagged part is then the
    whole (from rollup_usage) less what the key's rows hold."""
    group = query.query.group_by
    first = group[0]
    untagged = Filter(first, missing_value(first))
    read, notes = plan(context, query, MEASURES, group=group, derives_no_value=True)
    reader = context.reader
    groups = await reader.groups(read, MEASURES, group, limit=limit, excluded=untagged)
    if read.source.partial_on == first.name:
        whole, more = plan(context, query, MEASURES, group=())
        notes += more
        total = await reader.total(whole, MEASURES)
        missing = subtract(total, [await reader.total(read, MEASURES)])
    else:
        without = dataclasses.replace(read, filters=(*read.filters, untagged))
        total = await reader.total(read, MEASURES)
        missing = await reader.total(without, MEASURES)
    return Spend(groups, missing, total), notes, read.source.name


async def _month(context: PanelContext, query: ScopedQuery, notes: list[str]) -> Month:
    """The same rows over the UTC month so far; when the month cannot be read with this
    grouping (raw rows reach less far), a note says why and the figures are None."""
    now = context.clock()
    start, end = month_bounds(now)
    until = math.ceil(now / HOUR) * HOUR
    window = Window(start, float(until), start, now)
    month_query = dataclasses.replace(query.query, window=window)
    try:
        spend, more, _ = await _spend(
            context, dataclasses.replace(query, query=month_query), MAX_LIMIT
        )
    except InvalidRequest as exc:
        notes.append(f"month to date not shown: {exc.message}")
        return Month(start, end, now, None, False)
    notes += [f"month to date: {note}" for note in more]
    return Month(start, end, now, spend, len(spend.groups) < MAX_LIMIT)


async def _series(context: PanelContext, query: ScopedQuery) -> list[Any]:
    window = query.query.window
    step: Step = "hour" if window.seconds <= HOURLY_UP_TO_S else "day"
    width = HOUR if step == "hour" else DAY
    read, _ = plan(context, query, SERIES_MEASURES, group=())
    points = await context.reader.series(
        read, SERIES_MEASURES, step, limit=math.ceil(window.seconds / width) + 1
    )
    return [
        BurnPoint(
            start=iso(p.step or 0.0),
            start_unix=p.step or 0.0,
            requests=int(p.figures["requests"]),
            cost_usd=usd(p.figures["cost_usd"]),
        )
        for p in points
    ]


# -- rows ------------------------------------------------------------------------------


def _rows(
    dims: Sequence[AnyDimension], spend: Spend, month: Month, listed: ControlLister
) -> list[BurnRow]:
    rows = []
    if spend.untagged["requests"]:
        rows.append(_row(dims, (), spend.untagged, "untagged", spend.total, month, listed))
    rows += [
        _row(dims, g.values, g.figures, "group", spend.total, month, listed) for g in spend.groups
    ]
    other = subtract(spend.total, [spend.untagged, *(g.figures for g in spend.groups)])
    if other["requests"]:
        rows.append(_row(dims, (), other, "other", spend.total, month, listed))
    return rows


def _row(
    dims: Sequence[AnyDimension],
    values: tuple[str, ...],
    figures: Figures,
    kind: RowKind,
    whole: Figures,
    month: Month,
    listed: ControlLister,
) -> BurnRow:
    first = dims[0]
    if kind == "group":
        group, label = group_of(dims, values), label_of(values)
        governed = _governed(dims, values)
    elif kind == "untagged":
        missing = missing_value(first)
        group = {first.name: missing or None}
        label = missing or NO_VALUE_LABEL
        governed = {first.name: None}
    else:
        group, label, governed = {}, kind, {}
    to_date = _month_figure(month, kind, values)
    row_controls = listed.beside(governed, label) if kind != "other" else []
    inputs, outputs = int(figures["input_tokens"]), int(figures["output_tokens"])
    return BurnRow(
        group=group,
        label=label,
        kind=kind,
        requests=int(figures["requests"]),
        input_tokens=inputs,
        output_tokens=outputs,
        tokens=inputs + outputs,
        cost_usd=usd(figures["cost_usd"]),
        cost_share=share(usd(figures["cost_usd"]), usd(whole["cost_usd"])),
        month_to_date_usd=None if to_date is None else usd(to_date),
        projected_month_end_usd=(
            None if to_date is None else projected(to_date, month.start, month.end, month.now)
        ),
        over_budget=any(s.over for c in row_controls for s in c.status or []),
        controls=row_controls,
        controls_summary=summary(row_controls),
    )


def _governed(dims: Sequence[AnyDimension], values: Sequence[str]) -> dict[str, str | None]:
    """A group's values as rules read them: a missing value (UNTAGGED, "") is None."""
    return {
        dim.name: (None if value in ("", missing_value(dim)) else value)
        for dim, value in zip(dims, values, strict=True)
    }


def _month_figure(month: Month, kind: RowKind, values: tuple[str, ...]) -> float | None:
    spend = month.spend
    if spend is None:
        return None
    if kind == "group":
        return month.of(values)
    if kind == "untagged":
        return spend.untagged["cost_usd"]
    if kind == "total":
        return spend.total["cost_usd"]
    return None  # "other" holds different groups in the month than in the window


def _month_notes(month: Month) -> list[str]:
    elapsed = (month.now - month.start) / DAY
    days = (month.end - month.start) / DAY
    return [
        f"month to date: {iso(month.start)} to now ({elapsed:.1f} of {days:.0f} days, UTC); "
        "projected month-end = month-to-date spend / days elapsed x days in the month "
        "(shown from the month's second day)"
    ]


# -- actions ---------------------------------------------------------------------------


def _untagged_action(first: AnyDimension, rows: list[BurnRow], total: Figures) -> list[Action]:
    """Spend nobody owns: only its callers can fix it, by sending the header, or the
    platform by pinning the field on their keys."""
    found = [r for r in rows if r.kind == "untagged"]
    if not found or found[0].cost_usd <= 0:
        return []
    spent = found[0].cost_usd
    portion = share(spent, usd(total["cost_usd"])) or 0.0
    if isinstance(first, MetadataDimension):
        header, fix = METADATA_HEADER, f'send {METADATA_HEADER} {{"{first.key}": "..."}}'
    elif first.name in HEADERS:
        header, pin = HEADERS[first.name]
        fix = (
            f"require {header} from its callers, or pin a {first.name} on their keys "
            f"(sluicegate keys create {pin})"
        )
    else:
        return []  # not something callers send (the model, the status...)
    what = "UNTAGGED" if first.name == "project" else f"without {first.name}"
    message = (
        f"${spent:,.2f} ({portion:.0%} of spend) is {what}: it cannot be attributed, or "
        f"held to a budget by {first.name}; {fix}"
    )
    return [Action(message, Control("config", first.name), Where("header", header))]


def _budget_actions(listed: ControlLister) -> list[Action]:
    actions = []
    for row in listed.budget_rows():
        state = row.state
        if not state.over:
            continue
        if state.spent_usd >= state.ceiling_usd:
            message = (
                f"budget {row.label} has spent ${state.spent_usd:,.2f}, {state.pct:.0f}% of its "
                f"${state.ceiling_usd:,.2f} {state.window} ceiling: raise it, or move its "
                "traffic to a cheaper model (premium-review)"
            )
        else:
            ends = (state.resets_at or "")[:10]
            message = (
                f"budget {row.label} is projected to reach ${state.projected_usd or 0:,.2f} by "
                f"{ends}, {state.projected_pct or 0:.0f}% of its ${state.ceiling_usd:,.2f} "
                f"{state.window} ceiling (${state.spent_usd:,.2f} spent in "
                f"{state.elapsed_days:.1f} days): raise the ceiling, or move traffic to a "
                "cheaper model (premium-review) before it binds"
            )
        actions.append(
            Action(message, Control("budget", row.label), Where(controls.BUDGETS, row.document))
        )
        if len(actions) == MAX_BUDGET_ACTIONS:
            break
    return actions


def _unbudgeted_actions(
    dims: Sequence[AnyDimension], rows: list[BurnRow], rules: list[Rule], total: Figures
) -> list[Action]:
    """A group holding a large share of the spend that no budget names (every budget in
    force counts, seen by the caller or not: the action never claims there is none when
    there is one)."""
    first = dims[0]
    if len(dims) != 1 or first.name not in HEADERS or total["cost_usd"] <= 0:
        return []
    named = [r for r in rules if r.kind == "budget" and r.names_dimension(first.name)]
    actions: list[Action] = []
    for row in rows:
        value = row.group.get(first.name)
        if row.kind != "group" or value is None or (row.cost_share or 0) < UNBUDGETED_SHARE:
            continue
        if any(r.coverage({first.name: value}) for r in named):
            continue
        message = (
            f"{first.name} {value} spent ${row.cost_usd:,.2f} ({row.cost_share or 0:.0%} of the "
            f"window's spend) and no budget names it: add one (scope.metadata "
            f"{{{first.name}: [{value}]}}) with an alert at 80%"
        )
        actions.append(
            Action(message, Control("budget", f"{first.name}={value}"), Where(controls.BUDGETS))
        )
        if len(actions) == MAX_UNBUDGETED:
            break
    return actions
