"""The answer of a what-if: plain data (msgspec), built once the replay is done.

WhatIfReport
  window, rows, truncated        what was replayed, and whether a bound stopped it
  config                         the dry run: diff, documents, warnings
  totals                         requests refused / sent to a fallback / queued /
                                 audited, by the proposal and by the live policy
  rules                          per rule and budget: matched requests, each outcome's
                                 requests, tokens and cost, the first trip; the live
                                 policy's figures beside them and the difference
  routes                         per model routed differently: current vs proposed
                                 cost, per target
  findings, notes                sentences for people (`findings.py`)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from sluicegate.config.parse import Document
from sluicegate.policy.compiled import CompiledBudget, CompiledPolicy, CompiledRule
from sluicegate.policy.documents import BudgetDocument, QuotaDocument, RateLimitDocument
from sluicegate.policy.windows import iso
from sluicegate.whatif.policy_replay import BudgetWatch
from sluicegate.whatif.routing_replay import ModelFigures
from sluicegate.whatif.tally import OUTCOMES, Amounts, OutcomeTally, Trip
from sluicegate.whatif.window import ReplayWindow

Change = Literal["added", "changed", "unchanged", "removed"]
MAX_LISTED = 10  # top scopes / fallback models listed per rule


class AmountsOut(msgspec.Struct):
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class TripOut(msgspec.Struct):
    at: str
    at_unix: float
    day: int  # of the window, from 1
    request_id: str
    outcome: str
    nth_match: int | None
    scope: str | None
    detail: str | None


class SideOut(msgspec.Struct):
    refused: AmountsOut
    fallback: AmountsOut
    queued: AmountsOut
    audited: AmountsOut
    first_trip: TripOut | None


class Counted(msgspec.Struct):
    name: str
    requests: int


class AlertOut(msgspec.Struct):
    at_pct: float
    first_at: str
    first_at_unix: float
    day: int
    windows: int


class BudgetOut(msgspec.Struct):
    ceiling_usd: float
    windows: list[str]
    # by window: spend from the window's start to the replay's (None: the scope cannot be
    # read from the ledger, so it starts from $0)
    spend_before_window_usd: dict[str, float | None]
    peak_spent_usd: float
    peak_pct: float
    peak_at: str | None
    ceiling_reached_at: str | None
    ceiling_reached_at_unix: float | None
    ceiling_reached_day: int | None
    alerts: list[AlertOut]


class RuleOut(msgspec.Struct):
    id: str
    kind: Literal["rate_limit", "budget"] | None  # None: a rule only the ledger names
    document: str | None
    change: Change
    description: str | None
    matched_requests: int | None
    proposed: SideOut | None  # None: the proposal has no such rule
    live: SideOut
    difference: dict[str, int]  # proposed - live, per outcome
    top_scopes: list[Counted]  # of the requests the proposal refuses
    fallback_models: list[Counted]
    fallback_cost_usd: float  # what the fallen-back requests cost on their new model
    budget: BudgetOut | None = None


class ServedOut(msgspec.Struct):
    target: str
    requests: int
    cost_usd: float
    unpriced_requests: int


class TargetOut(msgspec.Struct):
    target: str
    id: str
    share: float
    requests: float
    input_tokens: float
    output_tokens: float
    cost_usd: float | None  # None: no price here (see unpriced_requests)
    unpriced_requests: float


class RouteOut(msgspec.Struct):
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    current_cost_usd: float
    current_unpriced_requests: int
    proposed_cost_usd: float
    proposed_unpriced_requests: float
    unroutable_requests: int
    cost_change_usd: float
    cost_change_pct: float | None
    current_targets: list[ServedOut]
    proposed_targets: list[TargetOut]


def amounts(a: Amounts) -> AmountsOut:
    return AmountsOut(a.requests, a.input_tokens, a.output_tokens, round(a.cost_usd, 6))


def trip(t: Trip | None, window: ReplayWindow) -> TripOut | None:
    if t is None:
        return None
    day = int((t.at - window.since) // 86400) + 1
    return TripOut(iso(t.at), t.at, day, t.request_id, t.outcome, t.nth_match, t.scope, t.detail)


def side(tally: OutcomeTally, window: ReplayWindow) -> SideOut:
    return SideOut(
        refused=amounts(tally.refused),
        fallback=amounts(tally.fallback),
        queued=amounts(tally.queued),
        audited=amounts(tally.audited),
        first_trip=trip(tally.first_trip, window),
    )


def top(counts: dict[str, int]) -> list[Counted]:
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:MAX_LISTED]
    return [Counted(name, n) for name, n in ranked]


def rule_specs(documents: Sequence[Document]) -> dict[str, dict[str, Any]]:
    """Rule and budget id -> {document, type, spec}: its definition, to tell added,
    changed and unchanged apart."""
    specs: dict[str, dict[str, Any]] = {}
    for document in documents:
        model = document.model
        if isinstance(model, (RateLimitDocument, QuotaDocument)):
            items: Sequence[Any] = model.rules
        elif isinstance(model, BudgetDocument):
            items = model.budgets
        else:
            continue
        for item in items:
            spec = item.model_dump(mode="json")
            specs[item.id] = {"document": document.name, "type": document.type, "spec": spec}
    return specs


def describe_rule(rule: CompiledRule) -> str:
    unit = "requests" if rule.measure == "requests" else "tokens"
    if rule.measure == "tokens" and rule.token_type != "total":
        unit = f"{rule.token_type} tokens"
    scope = "" if rule.scope_name == "global" else f" per {rule.scope_name}"
    return f"{rule.limit:,} {unit} per {rule.window.label}{scope}; {_breach(rule.breach)}"


def describe_budget(budget: CompiledBudget, scope: str) -> str:
    windows = ", ".join(w.label for w in budget.windows)
    where = "" if scope == "*" else f" for {scope}"
    return f"${budget.ceiling_usd:,.2f} per {windows}{where}; {_breach(budget.breach)}"


def _breach(breach: Any) -> str:
    if breach.action == "fallback":
        return f"over it: fallback to {breach.fallback_model or 'a cheaper model'}"
    return {"hard_block": "over it: refuse", "queue": "over it: queue, then refuse"}.get(
        breach.action, "over it: record only (audit)"
    )


def rule_change(rule_id: str, proposed: dict[str, Any], live: dict[str, Any]) -> Change:
    if rule_id not in live:
        return "added" if rule_id in proposed else "removed"
    if rule_id not in proposed:
        return "removed"
    mine, theirs = proposed[rule_id], live[rule_id]
    same = (mine["type"], mine["spec"]) == (theirs["type"], theirs["spec"])
    return "unchanged" if same else "changed"


def budget_out(
    budget: CompiledBudget,
    watch: BudgetWatch,
    tally: OutcomeTally,
    seeded: dict[str, float | None],
    window: ReplayWindow,
) -> BudgetOut:
    """`ceiling_reached`: the first request the budget stopped (or would have: audit), or
    the first that took its settled spend to the ceiling."""
    reached = watch.ceiling_at
    first = tally.first_trip
    if first is not None and (reached is None or first.at < reached):
        reached = first.at
    alerts = [
        AlertOut(pct, iso(c.first_at), c.first_at, _day(c.first_at, window), c.windows)
        for pct, c in sorted(watch.thresholds.items())
    ]
    return BudgetOut(
        ceiling_usd=budget.ceiling_usd,
        windows=[w.label for w in budget.windows],
        spend_before_window_usd=seeded,
        peak_spent_usd=round(watch.peak_usd, 6),
        peak_pct=round(watch.peak_pct, 2),
        peak_at=iso(watch.peak_at) if watch.peak_at is not None else None,
        ceiling_reached_at=iso(reached) if reached is not None else None,
        ceiling_reached_at_unix=reached,
        ceiling_reached_day=_day(reached, window) if reached is not None else None,
        alerts=alerts,
    )


def _day(ts: float, window: ReplayWindow) -> int:
    return int((ts - window.since) // 86400) + 1


def difference(proposed: OutcomeTally | None, live: OutcomeTally) -> dict[str, int]:
    mine = proposed.counts() if proposed is not None else dict.fromkeys(OUTCOMES, 0)
    theirs = live.counts()
    return {outcome: mine[outcome] - theirs[outcome] for outcome in OUTCOMES}


def route_out(model: str, figures: ModelFigures) -> RouteOut:
    current = figures.current_cost_usd
    change = figures.proposed_cost_usd - current
    served = sorted(figures.served.items(), key=lambda item: -item[1].requests)
    targets = sorted(figures.targets.items(), key=lambda item: -item[1].requests)
    routable = max(figures.requests - figures.unroutable_requests, 1)
    return RouteOut(
        model=model,
        requests=figures.requests,
        input_tokens=figures.input_tokens,
        output_tokens=figures.output_tokens,
        current_cost_usd=round(current, 6),
        current_unpriced_requests=figures.current_unpriced_requests,
        proposed_cost_usd=round(figures.proposed_cost_usd, 6),
        proposed_unpriced_requests=round(figures.proposed_unpriced_requests, 2),
        unroutable_requests=figures.unroutable_requests,
        cost_change_usd=round(change, 6),
        cost_change_pct=round(change / current * 100, 2) if current > 0 else None,
        current_targets=[
            ServedOut(label, s.requests, round(s.cost_usd, 6), s.unpriced_requests)
            for label, s in served
        ],
        proposed_targets=[
            TargetOut(
                target=label,
                id=t.target_id,
                share=round(t.requests / routable, 4),
                requests=round(t.requests, 2),
                input_tokens=round(t.input_tokens, 1),
                output_tokens=round(t.output_tokens, 1),
                cost_usd=round(t.cost_usd, 6) if t.unpriced_requests < t.requests else None,
                unpriced_requests=round(t.unpriced_requests, 2),
            )
            for label, t in targets
        ],
    )


def policy_rules(policy: CompiledPolicy) -> list[CompiledRule | CompiledBudget]:
    return [*policy.rules, *policy.budgets]
