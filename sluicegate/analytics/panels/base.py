"""What every panel is and answers.

A panel (one module in this package, one line in `PANELS`) has a name (its path and CLI
argument), a title, the metric layer it belongs to (activity, control or outcome: seed
000 keeps them apart), the question it answers, and `answer(context, query)`: a
`PanelAnswer` that says what was read (the effective window, filters, scope, grouping,
source), the figures, and `actions`: what someone should do next, each naming the
control it concerns and where that control is changed (principles 3 and 5).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Literal, Protocol, TypeVar

import msgspec

from sluicegate.analytics.config import AnalyticsSettings
from sluicegate.analytics.reader import AnalyticsReader
from sluicegate.analytics.scope import ScopedQuery
from sluicegate.config.live import ConfigSnapshot
from sluicegate.providers.catalog import Catalog

RowT = TypeVar("RowT")

# The budgets in force with their live spend (`PolicyEngine.budget_status` rows), only
# those the caller may see (the rule of `GET /api/budgets`).
BudgetStatus = Callable[[], Awaitable[list[dict[str, Any]]]]


class Layer(StrEnum):
    ACTIVITY = "activity"  # tokens, cost, requests, adoption: budget reallocation
    CONTROL = "control"  # limits, budgets, fallbacks, errors, latency: policy tuning
    OUTCOME = "outcome"  # merged PRs, closed tickets, cost per outcome: investment


ControlKind = Literal["budget", "rate_limit", "route", "guardrail", "config"]


class Control(msgspec.Struct, frozen=True):
    kind: ControlKind
    name: str  # the budget / rule id, virtual model, provider, setting...


class Where(msgspec.Struct, frozen=True):
    """Where the control is changed: a config document's type and name (name None: a new
    document of that type), or `header` and its name for what callers send."""

    type: str
    name: str | None = None


class Action(msgspec.Struct, frozen=True):
    message: str
    control: Control
    where: Where | None = None


class Column(msgspec.Struct, frozen=True):
    """A figure to show, by its dotted path in a row (`latency_ms.p99`), and its title:
    the CLI (and any UI) renders every panel from these."""

    key: str
    title: str


class WindowView(msgspec.Struct, frozen=True):
    since: str  # the effective window, ISO 8601 UTC (whole hours)
    until: str
    since_unix: float
    until_unix: float
    requested_since: str  # as asked, before snapping outward to whole hours
    requested_until: str


class ScopeView(msgspec.Struct, frozen=True):
    """The restriction the caller's role put on every figure (None: not restricted)."""

    teams: list[str] | None = None
    user_id: str | None = None


class Breakdown(msgspec.Struct, Generic[RowT], frozen=True):
    name: str
    title: str
    rows: list[RowT]
    # the figures to show, when its rows are not value / requests / share rows
    columns: list[Column] | None = None


class PanelAnswer(msgspec.Struct, Generic[RowT], kw_only=True):
    panel: str
    title: str
    layer: Layer
    question: str
    window: WindowView
    filters: dict[str, str]
    scope: ScopeView
    group_by: list[str]
    source: str  # the table the rows were read from (rollup_usage, ..., requests)
    columns: list[Column]
    rows: list[RowT]
    totals: RowT
    series: list[Any] | None = None
    breakdowns: list[Breakdown[Any]] = msgspec.field(default_factory=list)
    actions: list[Action] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)


@dataclass(frozen=True)
class PanelContext:
    """What a panel reads: the rollups and ledger, the analytics config in force, and the
    whole config snapshot (to name the controls its actions concern)."""

    reader: AnalyticsReader
    settings: AnalyticsSettings
    config: ConfigSnapshot
    # metadata key -> since when its rollup rows are complete (a key absent: none yet);
    # None: not known, and rollups are taken as complete
    rolled_up_since: Mapping[str, float] | None = None
    budget_status: BudgetStatus | None = None  # None: no policy engine to ask
    clock: Callable[[], float] = time.time  # "now" for figures as of now (month to date)
    # the provider catalogue in force (accounts, models, prices): what premium-review
    # prices a cheaper target with; None: no projections
    catalog: Catalog | None = None


class Panel(Protocol):
    name: str
    title: str
    layer: Layer
    question: str
    default_limit: int

    def default_group_by(self, settings: AnalyticsSettings) -> str:
        """The grouping when the query gives none."""
        ...

    async def answer(self, context: PanelContext, query: ScopedQuery) -> PanelAnswer[Any]: ...
