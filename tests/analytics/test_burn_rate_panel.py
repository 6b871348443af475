"""The burn-rate panel against direct SQL over the same raw rows (exact requests, tokens
and cost), on SQLite and PostgreSQL: the UNTAGGED row first, the top groups, "other";
month to date and the projected month-end; the budgets and rate limits beside each row,
with budgets' live spend from a real policy engine whose counters were rebuilt from the
same ledger; the actions; and what each role sees."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import pytest
from sqlalchemy import ColumnElement, case, func, literal, or_
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics.config import AnalyticsSettings
from sluicegate.analytics.panels.base import PanelContext
from sluicegate.analytics.panels.burn_rate import BurnRow
from sluicegate.analytics.panels.projection import month_bounds
from sluicegate.analytics.window import DAY, Window, iso
from sluicegate.ledger.sql_store import SqlLedgerStore
from sluicegate.model.record import LedgerRecord
from sluicegate.policy.counters.memory import MemoryCounterStore
from sluicegate.policy.counters.redis_store import RedisCounterStore
from sluicegate.policy.engine import PolicyEngine
from sluicegate.server.roles import AdminPrincipal, Role
from tests.analytics.landing import land
from tests.analytics.panel_support import (
    FINANCE,
    NOW,
    R,
    ask,
    context,
    in_window,
    raw_sums,
    snapshot,
)
from tests.analytics.traffic import traffic
from tests.policy.helpers import policy
from tests.support import free_port

MONTH_START, MONTH_END = month_bounds(NOW)
LEAD = AdminPrincipal("lead", Role.TEAM_LEAD, teams=("search",))
MEMBER = AdminPrincipal("bo", Role.MEMBER, user_id="bo")
RULES = """
name: limits
type: gateway-rate-limit-config
rules:
  - id: per-user
    limit: {requests: 100, window: 1m, scope: user}
  - id: beta-gpt4o-tokens
    when: {metadata: {project: [beta]}, models: [gpt-4o]}
    limit: {tokens: 200000, token_type: input, window: 1h}
---
name: quotas
type: gateway-rate-limiting-config
rules:
  - id: search-daily
    when: {subjects: [team:search]}
    limit_to: 5000
    unit: requests_per_day
"""


@pytest.fixture
async def records(engine: AsyncEngine) -> list[LedgerRecord]:
    landed = traffic(2500, start=NOW - 45 * DAY, span_s=45 * DAY - 60)
    await land(engine, landed)
    return landed


def _project() -> ColumnElement[str]:
    return case((or_(R.project.is_(None), R.project == ""), literal("UNTAGGED")), else_=R.project)


def _sums() -> dict[str, Any]:
    return {
        "requests": func.count(),
        "input_tokens": func.sum(func.coalesce(R.input_tokens, 0)),
        "output_tokens": func.sum(func.coalesce(R.output_tokens, 0)),
        "cost_usd": func.sum(func.coalesce(R.cost_usd, 0.0)),
    }


def _window(answer: Any) -> Window:
    w = answer.window
    return Window(w.since_unix, w.until_unix, w.since_unix, w.until_unix)


def _month() -> ColumnElement[bool]:
    return (R.ts >= MONTH_START) & (R.ts <= NOW)


def _assert_figures(row: BurnRow, expected: dict[str, Any]) -> None:
    for name in ("requests", "input_tokens", "output_tokens"):
        assert getattr(row, name) == int(expected[name] or 0), (row.label, name)
    assert row.cost_usd == pytest.approx(float(expected["cost_usd"] or 0.0), abs=1e-8)


def _add_up(rows: list[BurnRow], totals: BurnRow) -> None:
    for name in ("requests", "input_tokens", "output_tokens", "tokens"):
        assert sum(getattr(r, name) for r in rows) == getattr(totals, name), name
    assert sum(r.cost_usd for r in rows) == pytest.approx(totals.cost_usd, abs=1e-8)


def _projection(month_to_date: float) -> float:
    return month_to_date / (NOW - MONTH_START) * (MONTH_END - MONTH_START)


def _at_now(ctx: PanelContext, engine: PolicyEngine | None = None) -> PanelContext:
    status = None if engine is None else engine.budget_status
    return dataclasses.replace(ctx, clock=lambda: NOW, budget_status=status)


async def test_spend_by_project_untagged_first_equals_sql(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    answer = await ask(_at_now(context(engine)), "burn-rate")
    assert answer.group_by == ["project"] and answer.source == "rollup_cuboids:spend"
    assert [r.kind for r in answer.rows] == ["untagged", "group", "group"]
    untagged = answer.rows[0]
    assert untagged.label == "UNTAGGED" and untagged.group == {"project": "UNTAGGED"}
    expected = await raw_sums(engine, [_project()], _sums(), in_window(_window(answer)))
    for row in answer.rows:
        _assert_figures(row, expected[(row.group["project"],)])
    assert answer.rows[1].cost_usd >= answer.rows[2].cost_usd
    (total,) = (await raw_sums(engine, [], _sums(), in_window(_window(answer)))).values()
    _assert_figures(answer.totals, total)
    _add_up(answer.rows, answer.totals)
    month = await raw_sums(engine, [_project()], _sums(), _month())
    for row in answer.rows:
        spent = float(month[(row.group["project"],)]["cost_usd"])
        assert row.month_to_date_usd == pytest.approx(spent, abs=1e-8)
        assert row.projected_month_end_usd == pytest.approx(_projection(spent), abs=1e-6)
    (month_total,) = (await raw_sums(engine, [], _sums(), _month())).values()
    assert answer.totals.month_to_date_usd == pytest.approx(month_total["cost_usd"], abs=1e-8)
    assert sum(p.cost_usd for p in answer.series or []) == pytest.approx(
        answer.totals.cost_usd, abs=1e-6
    )
    (action,) = [msgspec.to_builtins(a) for a in answer.actions if a.control.kind == "config"]
    share = untagged.cost_usd / answer.totals.cost_usd
    assert action["message"].startswith(
        f"${untagged.cost_usd:,.2f} ({share:.0%} of spend) is UNTAGGED: it cannot be attributed"
    )
    assert "require X-Sluice-Project" in action["message"]
    assert "--project P --pin project" in action["message"]
    assert action["control"] == {"kind": "config", "name": "project"}
    assert action["where"] == {"type": "header", "name": "X-Sluice-Project"}
    assert any(note.startswith("month to date: 2026-09-01T00:00:00Z") for note in answer.notes)


async def test_past_the_limit_other_holds_the_rest_and_untagged_stays_first(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    answer = await ask(
        _at_now(context(engine)), "burn-rate", ("group_by", "team,model"), ("limit", "3")
    )
    assert [r.kind for r in answer.rows] == ["untagged", "group", "group", "group", "other"]
    assert answer.rows[0].group == {"team": None} and answer.rows[0].label == "(no value)"
    window = in_window(_window(answer))
    team, model = func.coalesce(R.team, ""), func.coalesce(R.model, "")
    expected = await raw_sums(engine, [team, model], _sums(), window)
    for row in answer.rows[1:4]:
        _assert_figures(row, expected[(row.group["team"], row.group["model"] or "")])
    (no_team,) = (await raw_sums(engine, [], _sums(), window, team == "")).values()
    _assert_figures(answer.rows[0], no_team)
    _add_up(answer.rows, answer.totals)
    assert answer.rows[-1].month_to_date_usd is None  # "other" differs month to window
    header = [msgspec.to_builtins(a) for a in answer.actions if a.control.kind == "config"]
    assert header[0]["where"] == {"type": "header", "name": "X-Sluice-Team"}
    by_model = await ask(_at_now(context(engine)), "burn-rate", ("group_by", "model"))
    assert by_model.rows[0].kind == "untagged"  # requests no provider answered
    assert not [a for a in by_model.actions if a.control.kind == "config"]  # no header for it


async def test_rules_beside_each_row_and_who_sees_them(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    config = snapshot(
        RULES
        + """---
name: budgets
type: gateway-budget-config
budgets:
  - {id: alpha-monthly, scope: {metadata: {project: [alpha]}}, ceiling_usd: 500, window: monthly}
  - {id: org, ceiling_usd: 10000, windows: [monthly, daily]}
  - {id: search-team, scope: {subjects: [team:search]}, ceiling_usd: 50, window: weekly}
  - id: ana-alpha
    scope: {metadata: {project: [alpha], X-Sluice-User-ID: [ana]}}
    ceiling_usd: 5
    window: daily
"""
    )
    ctx = _at_now(context(engine, config=config))
    answer = await ask(ctx, "burn-rate")
    rows = {r.label: r for r in answer.rows}

    def listed(row: BurnRow) -> dict[str, str]:
        return {c.id: c.coverage for c in row.controls}

    assert listed(rows["alpha"]) == {
        "alpha-monthly": "whole",
        "org": "whole",
        "ana-alpha": "part",  # some of alpha's requests: ana's
        "per-user": "whole",
    }
    assert listed(rows["beta"]) == {
        "org": "whole",
        "per-user": "whole",
        "beta-gpt4o-tokens": "part",
    }
    assert listed(rows["UNTAGGED"]) == {"org": "whole", "per-user": "whole"}
    assert listed(answer.totals) == {"org": "whole", "per-user": "whole"}
    tokens = {c.id: c for c in rows["beta"].controls}["beta-gpt4o-tokens"]
    assert (tokens.limit, tokens.window, tokens.per, tokens.action) == (
        "200,000 tokens (input)", "1h", "global", "hard_block",
    )  # fmt: skip
    assert tokens.type == "gateway-rate-limit-config" and tokens.document == "limits"
    org = {c.id: c for c in rows["beta"].controls}["org"]
    assert (org.limit, org.window, org.status) == ("$10,000.00", "monthly, daily", None)
    assert rows["alpha"].controls_summary.startswith("alpha-monthly $500.00/monthly; org ")
    # a budget naming a user is for admins' eyes only
    finance = await ask(ctx, "burn-rate", principal=FINANCE)
    assert "ana-alpha" not in listed({r.label: r for r in finance.rows}["alpha"])
    # by team: the search quota and team budget sit beside search; a team lead sees only
    # the budgets confined to its teams (not the org-wide one), and its own rows
    by_team = await ask(ctx, "burn-rate", ("group_by", "team"), principal=LEAD)
    assert [r.label for r in by_team.rows] == ["search"]
    assert listed(by_team.rows[0]) == {
        "search-team": "whole",
        "per-user": "whole",
        "search-daily": "whole",
    }
    own = await ask(ctx, "burn-rate", principal=MEMBER)
    assert own.source == "rollup_users" and own.scope.user_id == "bo"
    (own_month,) = (await raw_sums(engine, [], _sums(), _month(), R.user_id == "bo")).values()
    assert own.totals.month_to_date_usd == pytest.approx(own_month["cost_usd"], abs=1e-8)
    assert own.totals.requests == sum(
        1 for r in records if r.user_id == "bo" and _window(own).since <= r.ts < _window(own).until
    )
    assert all(c.kind == "rate_limit" for r in own.rows for c in r.controls)


async def test_budgets_live_spend_projection_and_actions(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    month = await raw_sums(engine, [_project()], _sums(), _month())
    alpha, beta = (float(month[(p,)]["cost_usd"]) for p in ("alpha", "beta"))
    # alpha: spent under its ceiling, projected past it; beta: already past its ceiling
    alpha_ceiling = round((alpha + _projection(alpha)) / 2, 2)
    beta_ceiling = round(beta / 2, 2)
    budgets = f"""
name: budgets
type: gateway-budget-config
budgets:
  - {{id: alpha-monthly, scope: {{metadata: {{project: [alpha]}}}}, ceiling_usd: {alpha_ceiling}, window: monthly}}
  - {{id: beta-monthly, scope: {{metadata: {{project: [beta]}}}}, ceiling_usd: {beta_ceiling}, window: monthly, on_exceed: fallback_to_cheaper}}
  - {{id: org, ceiling_usd: 100000, window: monthly}}
  - {{id: org-rolling, ceiling_usd: 100000, window: rolling_7d}}
"""  # noqa: E501
    counters = MemoryCounterStore(clock=lambda: NOW)
    policy_engine = PolicyEngine(counters, clock=lambda: NOW)
    policy_engine.set_policy(policy(budgets))
    ledger = SqlLedgerStore(engine)
    try:
        await policy_engine.rebuild_budgets(ledger.sum_cost)  # the counters hold the ledger's
    finally:
        await ledger.close()
    ctx = _at_now(context(engine, config=snapshot(budgets)), policy_engine)
    answer = await ask(ctx, "burn-rate")
    rows = {r.label: r for r in answer.rows}
    (alpha_state,) = {c.id: c for c in rows["alpha"].controls}["alpha-monthly"].status or []
    assert alpha_state.spent_usd == pytest.approx(alpha, abs=2e-6)
    assert alpha_state.ceiling_usd == alpha_ceiling and alpha_state.resets_at is not None
    assert alpha_state.projected_usd == pytest.approx(_projection(alpha), abs=1e-4)
    assert alpha_state.over and alpha_state.spent_usd < alpha_ceiling
    assert rows["alpha"].over_budget and rows["beta"].over_budget
    assert not rows["UNTAGGED"].over_budget
    (rolling,) = {c.id: c for c in answer.totals.controls}["org-rolling"].status or []
    assert rolling.resets_at is None and rolling.projected_usd is None and not rolling.over
    budget_actions = {
        a.control.name: msgspec.to_builtins(a) for a in answer.actions if a.control.kind == "budget"
    }
    assert set(budget_actions) == {"alpha-monthly", "beta-monthly"}
    projected = budget_actions["alpha-monthly"]
    assert projected["message"].startswith(
        f"budget alpha-monthly is projected to reach ${alpha_state.projected_usd:,.2f} by "
        "2026-10-01"
    )
    assert projected["where"] == {"type": "gateway-budget-config", "name": "budgets"}
    assert budget_actions["beta-monthly"]["message"].startswith("budget beta-monthly has spent $")
    breakdown = {b.name: b for b in answer.breakdowns}["budgets"]
    governs = {(r.label, r.state.window): r.governs for r in breakdown.rows}
    assert governs[("alpha-monthly", "monthly")] == ["alpha"]
    assert sorted(governs[("org", "monthly")]) == ["UNTAGGED", "alpha", "beta", "total"]


async def test_a_large_spender_no_budget_names_is_flagged(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    org_only = (
        "name: b\ntype: gateway-budget-config\nbudgets:\n"
        "  - {id: org, ceiling_usd: 1000000, window: monthly}\n"
    )
    answer = await ask(_at_now(context(engine, config=snapshot(org_only))), "burn-rate")
    flagged = {
        a.control.name: msgspec.to_builtins(a) for a in answer.actions if a.control.kind == "budget"
    }
    assert set(flagged) == {"project=alpha", "project=beta"}
    assert flagged["project=beta"]["where"] == {"type": "gateway-budget-config", "name": None}
    message = flagged["project=beta"]["message"]
    assert "no budget names it: add one (scope.metadata {project: [beta]})" in message
    named = org_only + (
        "  - {id: a, scope: {metadata: {X-TFY-Project: [alpha]}}, ceiling_usd: 1, window: daily}\n"
    )
    answer = await ask(_at_now(context(engine, config=snapshot(named))), "burn-rate")
    assert {a.control.name for a in answer.actions if a.control.kind == "budget"} == {
        "project=beta"
    }


async def test_month_to_date_past_the_raw_reach_is_noted_not_guessed(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    answer = await ask(_at_now(context(engine)), "burn-rate", ("metadata.customer_id", "cust-1"))
    assert answer.source == "requests"  # not rolled up: raw rows, 7 days reach
    assert all(
        r.month_to_date_usd is None and r.projected_month_end_usd is None for r in answer.rows
    )
    assert any(n.startswith("month to date not shown: metadata.customer_id") for n in answer.notes)
    customer = func.coalesce(R.metadata["customer_id"].as_string(), "") == "cust-1"
    (total,) = (await raw_sums(engine, [], _sums(), in_window(_window(answer)), customer)).values()
    _assert_figures(answer.totals, total)
    assert iso(MONTH_START) == "2026-09-01T00:00:00Z"


async def test_a_rolled_up_metadata_key_with_its_untagged_part_derived(
    engine: AsyncEngine,
) -> None:
    await land(engine, traffic(1500, start=NOW - 30 * DAY, span_s=30 * DAY - 60), ("customer_id",))
    settings = AnalyticsSettings(rollup_metadata_keys=("customer_id",))
    ctx = _at_now(context(engine, settings))
    answer = await ask(ctx, "burn-rate", ("group_by", "metadata.customer_id"), ("limit", "4"))
    assert answer.source == "rollup_metadata"
    assert [r.kind for r in answer.rows] == [
        "untagged",
        "group",
        "group",
        "group",
        "group",
        "other",
    ]
    customer = func.coalesce(R.metadata["customer_id"].as_string(), "")
    window = in_window(_window(answer))
    expected = await raw_sums(engine, [customer], _sums(), window)
    _assert_figures(answer.rows[0], expected[("",)])
    assert answer.rows[0].label == "(no value)" and answer.rows[0].group == {
        "metadata.customer_id": None
    }
    for row in answer.rows[1:5]:
        _assert_figures(row, expected[(row.group["metadata.customer_id"],)])
    _add_up(answer.rows, answer.totals)
    month = await raw_sums(engine, [customer], _sums(), _month())
    assert answer.rows[0].month_to_date_usd == pytest.approx(month[("",)]["cost_usd"], abs=1e-8)
    (action,) = [msgspec.to_builtins(a) for a in answer.actions if a.control.kind == "config"]
    assert action["where"] == {"type": "header", "name": "X-Sluice-Metadata"}
    assert 'send X-Sluice-Metadata {"customer_id": "..."}' in action["message"]


async def test_a_counter_store_that_is_down_leaves_the_spend_and_says_why(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    budgets = (
        "name: budgets\ntype: gateway-budget-config\nbudgets:\n"
        "  - {id: org, ceiling_usd: 100, window: monthly}\n"
    )
    nowhere = RedisCounterStore(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    down = PolicyEngine(nowhere, clock=lambda: NOW)
    down.set_policy(policy(budgets))
    try:
        answer = await ask(_at_now(context(engine, config=snapshot(budgets)), down), "burn-rate")
    finally:
        await nowhere.close()
    assert {c.id: c.status for c in answer.totals.controls} == {"org": None}
    assert any(note.startswith("budget spend not shown: ") for note in answer.notes)
    assert answer.totals.requests > 0  # the figures stand without it
