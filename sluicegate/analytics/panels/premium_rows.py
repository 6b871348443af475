"""The rows of the premium-review panel, and the columns the CLI and any UI show."""

from __future__ import annotations

from typing import Literal

import msgspec

from sluicegate.analytics.panels.base import Column

RowKind = Literal["untagged", "group", "total"]


class ModelPath(msgspec.Struct, kw_only=True):
    """A part of a row's traffic: the account that served it and the name asked for."""

    provider: str | None
    requested_model: str | None
    requests: int
    cost_usd: float


class PremiumFigures(msgspec.Struct, kw_only=True):
    """A row's figures (or the totals'), built once by `premium_figures.py`."""

    requests: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    tokens: int
    cost_usd: float
    group_share: float | None  # of the group's spend on every model in the window
    frontier_share: float | None  # of all frontier spend in the window
    cache_read_share: float | None  # cache-read / input tokens, as observed
    priced: bool  # the served model has a price (else its recorded cost is null)
    month_usd: float  # the window's recorded cost as a 30-day month
    # the same tokens at the served model's price today: what the projections compare
    # with (the recorded cost may rest on older prices); None: unpriced
    at_price_month_usd: float | None
    target_cost_usd: float | None  # the same tokens on the cheaper target, in the window
    target_month_usd: float | None  # ... as a month
    cached_month_usd: float | None  # with prompt caching on the repeated prefix
    target_cached_month_usd: float | None  # both
    saving_month_usd: float | None  # at_price_month_usd - target_month_usd


class PremiumRow(PremiumFigures, kw_only=True):
    """Its figures (flat in the answer) and what names the row."""

    group: dict[str, str | None]
    label: str
    kind: RowKind
    model: str | None  # the frontier model served (None: the totals)
    target: str | None  # the cheaper model proposed (a catalogue name)
    target_source: str | None  # "config" (cheaper_targets) or "default"
    paths: list[ModelPath] = msgspec.field(default_factory=list)
    changes: list[str] = msgspec.field(default_factory=list)  # virtual models in `yaml`
    yaml: str | None = None  # the load-balancing document(s) that make the move


class TierRow(msgspec.Struct, kw_only=True):
    value: str
    requests: int
    cost_usd: float
    share: float | None  # of the spend


class ChangeRow(msgspec.Struct, kw_only=True):
    virtual_model: str
    existing: bool  # a document of that name is in force (this one replaces it)
    groups: str  # the groups it moves, by label
    yaml: str


COLUMNS = [
    Column("label", "group"),
    Column("model", "frontier model"),
    Column("requests", "requests"),
    Column("tokens", "tokens"),
    Column("cost_usd", "cost $"),
    Column("group_share", "of group"),
    Column("frontier_share", "of frontier"),
    Column("cache_read_share", "cache-read"),
    Column("month_usd", "month $"),
    Column("at_price_month_usd", "month $ at price"),
    Column("target", "cheaper target"),
    Column("target_month_usd", "month $ there"),
    Column("cached_month_usd", "month $ cached"),
    Column("target_cached_month_usd", "month $ both"),
]

CHANGE_COLUMNS = [
    Column("virtual_model", "virtual model"),
    Column("groups", "groups moved"),
    Column("existing", "replaces a document in force"),
]
