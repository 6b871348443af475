"""What premium-review proposes someone do next: move a group to its cheaper target
(the row's document, checked by a what-if first), cache the repeated prefix, and tag the
frontier traffic no route can match yet."""

from __future__ import annotations

from collections.abc import Sequence

from sluicegate.analytics.dimensions import AnyDimension, MetadataDimension
from sluicegate.analytics.panels import controls
from sluicegate.analytics.panels.base import Action, Control, Where
from sluicegate.analytics.panels.burn_rate import HEADERS, METADATA_HEADER
from sluicegate.analytics.panels.common import share
from sluicegate.analytics.panels.premium_rows import PremiumRow

MAX_MOVE_ACTIONS = 5
MAX_CACHE_ACTIONS = 3
CACHE_ACTION_MIN_SAVING = 0.1  # of the row's month: smaller gains are not worth an action
WHAT_IF = "sluicegate apply -f premium-review.yaml --what-if 7d"


def actions(
    dims: Sequence[AnyDimension],
    shown: list[PremiumRow],
    rows: list[PremiumRow],
    cache_share: float,
) -> list[Action]:
    return [
        *_move_actions(dims, shown),
        *_cache_actions(shown, cache_share),
        *_untagged_actions(dims[0], rows),
    ]


def _move_actions(dims: Sequence[AnyDimension], rows: list[PremiumRow]) -> list[Action]:
    """A group (with a value: routes cannot match a missing one) whose traffic would cost
    less on its target; with the row's document when one could be made."""
    actions = []
    for row in rows:
        now, there = row.at_price_month_usd, row.target_month_usd
        if row.kind != "group" or now is None or there is None or now <= there:
            continue
        what = " / ".join(d.name for d in dims)
        message = (
            f"review {what} {row.label}: {row.group_share or 0:.0%} of its spend "
            f"(${row.cost_usd:,.2f} in the window) is on {row.model}, ~${now:,.2f}/month at "
            f"its price; on {row.target} the same tokens would cost ~${there:,.2f}/month. "
        )
        if row.changes:
            message += (
                f"Route it with the row's document (virtual model {', '.join(row.changes)}) "
                f"and check it against the ledger first: `{WHAT_IF}`"
            )
            control, where = (
                Control("route", row.changes[0]),
                Where(controls.ROUTING, row.changes[0]),
            )
        else:  # the notes say why no document could be made
            message += "Route it through a virtual model with a route for it (see the notes)"
            control, where = Control("route", row.model or ""), Where(controls.ROUTING)
        actions.append(Action(message, control, where))
        if len(actions) == MAX_MOVE_ACTIONS:
            break
    return actions


def _cache_actions(rows: list[PremiumRow], cache_share: float) -> list[Action]:
    actions = []
    for row in rows:
        month, cached = row.at_price_month_usd, row.cached_month_usd
        if month is None or cached is None or month <= 0:
            continue
        if (month - cached) / month < CACHE_ACTION_MIN_SAVING:
            continue
        message = (
            f"{row.label} on {row.model} reads {row.cache_read_share or 0:.0%} of its input "
            f"from cache; with {cache_share:.0%} of each prompt (its repeated prefix: system "
            f"prompt, tools) cached it would cost ~${cached:,.2f}/month instead of "
            f"~${month:,.2f}: have its callers mark the prefix cacheable (Anthropic "
            "cache_control; OpenAI caches repeated prefixes over 1024 tokens) and keep it "
            "byte-identical across calls"
        )
        actions.append(Action(message, Control("config", "prompt_caching")))
        if len(actions) == MAX_CACHE_ACTIONS:
            break
    return actions


def _untagged_actions(first: AnyDimension, rows: list[PremiumRow]) -> list[Action]:
    frontier_cost = sum(r.cost_usd for r in rows)
    spent = sum(r.cost_usd for r in rows if r.kind == "untagged")
    if spent <= 0:
        return []
    if isinstance(first, MetadataDimension):
        header = METADATA_HEADER
    elif first.name in HEADERS:
        header = HEADERS[first.name][0]
    else:
        return []
    message = (
        f"${spent:,.2f} of frontier-model spend ({share(spent, frontier_cost) or 0:.0%}) has "
        f"no {first.name}: it cannot be reviewed or routed by {first.name} until its "
        f"callers send {header}"
    )
    return [Action(message, Control("config", first.name), Where("header", header))]
