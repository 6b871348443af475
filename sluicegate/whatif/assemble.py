"""The replay's state and the dry run's result -> the `WhatIfReport` (see report.py)."""

from __future__ import annotations

from typing import Any

import msgspec

from sluicegate.config.service import ApplyResult
from sluicegate.policy.compiled import CompiledBudget
from sluicegate.policy.windows import iso
from sluicegate.whatif.findings import findings
from sluicegate.whatif.policy_replay import budget_scope
from sluicegate.whatif.replayer import Replayer
from sluicegate.whatif.report import (
    RouteOut,
    RuleOut,
    budget_out,
    describe_budget,
    describe_rule,
    difference,
    policy_rules,
    route_out,
    rule_change,
    rule_specs,
    side,
    top,
)
from sluicegate.whatif.tally import OUTCOMES, OutcomeTally
from sluicegate.whatif.window import ReplayWindow


class WhatIfReport(msgspec.Struct):
    window: dict[str, Any]
    rows_read: int
    rows_replayed: int
    truncated: bool
    truncated_reason: str | None  # "max_rows": the row bound stopped the replay
    replayed_until: str | None  # the last row's time
    elapsed_ms: float
    config: dict[str, Any]  # the dry run: live_version, changed, diff, documents, warnings
    totals: dict[str, Any]
    rules: list[RuleOut]
    routes: list[RouteOut]
    findings: list[str]
    notes: list[str]


def assemble(
    replayer: Replayer,
    result: ApplyResult,
    window: ReplayWindow,
    seeded: list[dict[str, Any]],
    *,
    truncated: str | None,
    max_rows: int,
    elapsed_s: float,
) -> WhatIfReport:
    rules = _rules(replayer, result, window, seeded)
    routes = [route_out(model, f) for model, f in replayer.routing.models.items()]
    routes.sort(key=lambda route: -abs(route.cost_change_usd))
    last = replayer.last
    return WhatIfReport(
        window=window.describe(),
        rows_read=replayer.rows,
        rows_replayed=replayer.replayed,
        truncated=truncated is not None,
        truncated_reason=truncated,
        replayed_until=iso(last[0]) if last else None,
        elapsed_ms=round(elapsed_s * 1000, 1),
        config={
            "live_version": result.previous_version,
            "changed": result.changed,
            "message": result.message,
            "diff": result.diff,
            "documents": [
                {"type": d.type, "name": d.name, "action": d.action} for d in result.documents
            ],
            "warnings": [warning.to_dict() for warning in result.warnings],
        },
        totals=_totals(replayer, routes),
        rules=rules,
        routes=routes,
        findings=findings(rules, routes, replayer.replayed),
        notes=_notes(replayer, rules, routes, seeded, truncated, max_rows, last),
    )


def _rules(
    replayer: Replayer,
    result: ApplyResult,
    window: ReplayWindow,
    seeded: list[dict[str, Any]],
) -> list[RuleOut]:
    proposed_specs = rule_specs(result.resulting)
    live_specs = rule_specs(result.replacing)
    policy = replayer.policy
    live = replayer.live.rules
    out: list[RuleOut] = []
    for rule in policy_rules(policy.policy):
        tally = policy.rules[rule.id]
        theirs = live.get(rule.id, OutcomeTally())
        entry = RuleOut(
            id=rule.id,
            kind="budget" if isinstance(rule, CompiledBudget) else "rate_limit",
            document=rule.document,
            change=rule_change(rule.id, proposed_specs, live_specs),
            description=(
                describe_budget(rule, budget_scope(rule.scope))
                if isinstance(rule, CompiledBudget)
                else describe_rule(rule)
            ),
            matched_requests=policy.matched[rule.id],
            proposed=side(tally, window),
            live=side(theirs, window),
            difference=difference(tally, theirs),
            top_scopes=top(tally.scopes),
            fallback_models=top(tally.fallback_models),
            fallback_cost_usd=round(tally.fallback_cost_usd, 6),
        )
        if isinstance(rule, CompiledBudget):
            entry.budget = budget_out(
                rule, policy.budgets[rule.id], tally, _seeded(seeded, rule.id), window
            )
        out.append(entry)
    others = [rule_id for rule_id in live if rule_id not in policy.rules]
    others.sort(key=lambda rule_id: -sum(live[rule_id].counts().values()))
    for rule_id in others:
        spec = live_specs.get(rule_id)
        out.append(
            RuleOut(
                id=rule_id,
                kind=None if spec is None else _kind(spec["type"]),
                document=None if spec is None else spec["document"],
                change=rule_change(rule_id, proposed_specs, live_specs),
                description=None,
                matched_requests=None,
                proposed=None,
                live=side(live[rule_id], window),
                difference=difference(None, live[rule_id]),
                top_scopes=[],
                fallback_models=[],
                fallback_cost_usd=0.0,
            )
        )
    return out


def _kind(type_name: str) -> Any:
    return "budget" if type_name == "gateway-budget-config" else "rate_limit"


def _seeded(report: list[dict[str, Any]], budget_id: str) -> dict[str, float | None]:
    return {
        row["window"]: row.get("ledger_spent_usd") if row.get("seeded") else None
        for row in report
        if row.get("id") == budget_id and "window" in row
    }


def _totals(replayer: Replayer, routes: list[RouteOut]) -> dict[str, Any]:
    proposed = replayer.policy.requests.counts()
    live = replayer.live.requests.counts()
    return {
        "rows_read": replayer.rows,
        "rows_replayed": replayer.replayed,
        "rows_skipped": replayer.rows - replayer.replayed,
        "proposed": proposed,
        "live": live,
        "difference": {outcome: proposed[outcome] - live[outcome] for outcome in OUTCOMES},
        "unroutable_requests": replayer.policy.unroutable,
        "fallback_failed": replayer.policy.fallback_failed,
        "admitted_unknown_usage": replayer.policy.admitted_unknown_usage,
        "routing": {
            "requests": sum(route.requests for route in routes),
            "current_cost_usd": round(sum(route.current_cost_usd for route in routes), 6),
            "proposed_cost_usd": round(sum(route.proposed_cost_usd for route in routes), 6),
        },
    }


def _notes(
    replayer: Replayer,
    rules: list[RuleOut],
    routes: list[RouteOut],
    seeded: list[dict[str, Any]],
    truncated: str | None,
    max_rows: int,
    last: tuple[float, str] | None,
) -> list[str]:
    notes: list[str] = []
    if truncated == "max_rows":
        until = iso(last[0]) if last else "the start"
        notes.append(
            f"stopped at the row bound ({max_rows:,} rows; serve --what-if-max-rows): the "
            f"figures cover the window up to {until}"
        )
    if any(rule.kind == "rate_limit" and rule.proposed is not None for rule in rules):
        notes.append(
            "rate-limit windows already open when the replay starts count from zero; each "
            "request reserves what it really used (the gateway reserves its max_tokens)"
        )
    for row in seeded:
        if row.get("seeded") is False and row.get("reason") != "counted by the store":
            notes.append(
                f"budget {row.get('id')} ({row.get('window')}): spend before the window is "
                f"not counted ({row.get('reason')})"
            )
    unknown = replayer.policy.admitted_unknown_usage
    if unknown:
        notes.append(
            f"{unknown:,} requests the live policy refused would be admitted; they never "
            "ran, so their tokens and cost are unknown and count as none"
        )
    if routes:
        notes.append(
            "costs on a changed route are expected values: each request's recorded tokens "
            "priced on every target it could go to, weighted by the target's share"
        )
    if replayer.live.unattributed:
        notes.append(
            f"{replayer.live.unattributed:,} live policy events name rules past the first "
            "1,000 and are not broken down"
        )
    return notes
