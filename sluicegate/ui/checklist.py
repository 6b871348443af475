"""The overview's eight-item control-room checklist (seed 000), computed live: each item
green, amber or red, why, and where to fix it.

Figures come from panel answers read for the caller (`PanelRead`: the API's own
`panel_answer`, so the caller's scope applies), configuration from the live snapshot.
Items that need features this gateway does not have yet (guardrails, the runaway-agent
detector) are red and say so: an operator should not read a missing feature as done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sluicegate.config.live import ConfigSnapshot
from sluicegate.policy.documents import Budget, BudgetDocument, RateLimitDocument

Status = Literal["green", "amber", "red"]
PanelRead = Callable[[str, Sequence[tuple[str, str]]], Awaitable[dict[str, Any]]]

WEEK = "7d"
MONTH = "30d"
TAGGED_GREEN = 0.99  # share of requests with a project and a team
TAGGED_AMBER = 0.90
SOFT_ALERT_PCT = 80.0  # seed 000: a hard ceiling and a soft alert at 80%
AUDIT_ONLY = "audit"  # any other on_exceed enforces the ceiling (a block or a fallback)


@dataclass(frozen=True, slots=True)
class Item:
    number: int
    condition: str
    status: Status
    why: str
    fix: str  # a path in this UI, or a doc to read
    fix_label: str


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


async def tagging(read: PanelRead) -> Item:
    by_project = await read("burn-rate", [("since", WEEK), ("group_by", "project")])
    by_team = await read("tags", [("since", WEEK), ("group_by", "team")])
    total = by_project["totals"]["requests"]
    condition = "Every request carries user, team, project and session metadata"
    if not total:
        return Item(
            1,
            condition,
            "amber",
            "no requests in the last 7 days",
            "/ui/panels/burn-rate",
            "burn rate",
        )
    untagged = sum(r["requests"] for r in by_project["rows"] if r["kind"] == "untagged")
    no_team = sum(r["requests"] for r in by_team["rows"] if r["kind"] == "no_value")
    project_share = 1 - _share(untagged, total)
    team_share = 1 - _share(no_team, total)
    worst = min(project_share, team_share)
    status: Status = (
        "green" if worst >= TAGGED_GREEN else "amber" if worst >= TAGGED_AMBER else "red"
    )
    why = (
        f"last 7 days: {project_share:.1%} of requests name a project, {team_share:.1%} a "
        "team (users come from keys; session ids are not counted by the rollups). No "
        "identity policy can refuse untagged requests yet."
    )
    return Item(
        1, condition, status, why, "/ui/panels/burn-rate?group_by=project", "untagged spend"
    )


def _soft_alert(budget: Budget) -> bool:
    return any(alert.at_pct <= SOFT_ALERT_PCT for alert in budget.alerts)


async def budgets(read: PanelRead, snapshot: ConfigSnapshot) -> Item:
    condition = "Every project has a hard budget ceiling and a soft 80% alert"
    configured = {
        (doc.name, b.id): b
        for doc in snapshot.models_of("gateway-budget-config", BudgetDocument)
        for b in doc.budgets
    }
    answer = await read("burn-rate", [("since", WEEK), ("group_by", "project")])
    projects = [r for r in answer["rows"] if r["kind"] == "group"]
    if not projects:
        return Item(
            2,
            condition,
            "amber",
            "no tagged project traffic in the last 7 days",
            "/ui/panels/burn-rate",
            "burn rate",
        )

    def governed(row: dict[str, Any]) -> bool:
        for control in row.get("controls") or []:
            budget = configured.get((control.get("document", ""), control.get("id", "")))
            if (
                control.get("kind") == "budget"
                and control.get("coverage") == "whole"
                and budget is not None
                and budget.on_exceed != AUDIT_ONLY
                and _soft_alert(budget)
            ):
                return True
        return False

    missing = [r["label"] for r in projects if not governed(r)]
    status: Status = "green" if not missing else "amber" if len(missing) < len(projects) else "red"
    why = (
        f"{len(projects) - len(missing)} of {len(projects)} projects with traffic have a "
        "budget that enforces its ceiling with an alert at or under 80%"
        + (f"; missing: {', '.join(missing[:8])}" if missing else "")
    )
    return Item(
        2, condition, status, why, "/ui/panels/burn-rate?group_by=project", "burn rate and budgets"
    )


def rate_limits(snapshot: ConfigSnapshot) -> Item:
    condition = "Per-user and per-model rate limits are in place"
    rules = [
        rule
        for doc in snapshot.models_of("gateway-rate-limit-config", RateLimitDocument)
        for rule in doc.rules
    ]
    per_user = [r.id for r in rules if r.limit.scope == "user"]
    per_model = [r.id for r in rules if r.limit.scope == "model" or r.when.models]
    status: Status = (
        "green" if per_user and per_model else "amber" if per_user or per_model else "red"
    )
    why = (
        f"per-user rules: {', '.join(per_user[:5]) or 'none'}; "
        f"per-model rules: {', '.join(per_model[:5]) or 'none'} "
        "(gateway-rate-limit-config)"
    )
    return Item(3, condition, status, why, "/ui/panels/latency", "limits hit (latency and errors)")


async def outcome_join(read: PanelRead, base_url: str) -> Item:
    condition = "At least one workflow has the outcome join instrumented"
    answer = await read("outcomes", [("since", MONTH)])
    totals = answer["totals"]
    joined = [r["label"] for r in answer["rows"] if r["kind"] == "group" and r["outcomes"]]
    if joined:
        why = (
            f"last 30 days: outcomes joined for {', '.join(joined[:5])} "
            f"({totals['outcomes']} outcomes)"
        )
        return Item(7, condition, "green", why, "/ui/panels/outcomes", "outcome join")
    why = (
        "no outcome joined to a session in the last 30 days: send them to "
        f"{base_url}/api/outcomes or wire the GitHub / helpdesk webhooks"
    )
    return Item(7, condition, "red", why, "/ui/panels/outcomes", "how to send outcomes")


async def routing(read: PanelRead, snapshot: ConfigSnapshot) -> Item:
    condition = "Routing policies reviewed; premium-model share tracked weekly"
    routes = [doc.name for doc in snapshot.of_type("gateway-load-balancing-config")]
    answer = await read("premium-review", [("since", WEEK)])
    actions = answer["actions"]
    if not routes:
        why = (
            "no virtual model routes (gateway-load-balancing-config): every call names a "
            "concrete model"
        )
        return Item(8, condition, "red", why, "/ui/panels/premium-review", "premium-model review")
    status: Status = "amber" if actions else "green"
    why = f"{len(routes)} routed virtual model(s); premium review proposes {len(actions)} change(s)"
    return Item(8, condition, status, why, "/ui/panels/premium-review", "premium-model review")


async def checklist(read: PanelRead, snapshot: ConfigSnapshot, base_url: str) -> list[Item]:
    items = [
        await tagging(read),
        await budgets(read, snapshot),
        rate_limits(snapshot),
        _missing(
            4,
            "Secrets scan is in mutate mode on all production traffic",
            "guardrails (secrets scanning)",
        ),
        _missing(5, "PII detection active at the request-input hook", "guardrails (PII detection)"),
        _missing(
            6, "Loop detection alert with sub-5-minute MTTD is live", "the runaway-agent detector"
        ),
        await outcome_join(read, base_url),
        await routing(read, snapshot),
    ]
    return items


def _missing(number: int, condition: str, feature: str) -> Item:
    return Item(
        number,
        condition,
        "red",
        f"{feature} is not built in this gateway yet, so this cannot hold",
        "",
        "",
    )
