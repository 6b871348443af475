"""Budget proposals replayed on ledgers whose spend crosses the ceiling on a known day,
on SQLite and PostgreSQL."""

from __future__ import annotations

from sluicegate.policy.windows import iso
from tests.whatif.support import DAY, HOUR, WED, bench, rule, served

MONTHLY = """
name: budgets
type: gateway-budget-config
budgets:
  - id: data-monthly
    scope: {metadata: {team: [data]}}
    ceiling_usd: 100
    window: monthly
    alerts: [{at_pct: 50}, {at_pct: 90}]
"""


def daily_spend(days: int, *, first: int = 0) -> list:
    """Four $10 requests of team data a day from 1 January (09:00, 11:00, 13:00, 15:00),
    and one of another team that no budget here counts."""
    rows = []
    for day in range(days):
        for i in range(4):
            n = first + day * 10 + i
            rows.append(served(n, WED + day * DAY + (9 + 2 * i) * HOUR, team="data", cost=10.0))
        noon = WED + day * DAY + 12 * HOUR
        rows.append(served(first + day * 10 + 9, noon, team="web", cost=10.0))
    return rows


async def test_a_budget_reaches_its_ceiling_on_day_3_and_refuses_what_follows(engine):
    """$40 a day against $100 a month from the 1st: $40, $80, then on day 3 the 09:00 and
    11:00 requests take it to exactly $100 and the 13:00 one is the first refused; every
    later request of the team is refused (2 on day 3, 4 a day after)."""
    b = bench(engine)
    await b.write(daily_spend(7))
    report = await b.run(MONTHLY, "7d", until=WED + 7 * DAY)

    budget = rule(report, "data-monthly")
    assert budget.kind == "budget"
    assert budget.matched_requests == 28  # team data only
    assert budget.proposed.refused.requests == 2 + 4 * 4
    assert budget.proposed.refused.cost_usd == 18 * 10.0
    first = budget.proposed.first_trip
    assert first.request_id == "req-0000022"  # day 3 (index 2), third request
    assert first.day == 3
    assert budget.budget.ceiling_reached_day == 3
    assert budget.budget.ceiling_reached_at == iso(WED + 2 * DAY + 11 * HOUR)  # at $100
    assert budget.budget.peak_spent_usd == 100.0
    assert budget.budget.peak_pct == 100.0
    assert budget.budget.spend_before_window_usd == {"monthly": 0.0}
    alerts = [(a.at_pct, a.day, a.windows) for a in budget.budget.alerts]
    assert alerts == [(50.0, 2, 1), (90.0, 3, 1)]  # $50 at day 2's 09:00; $90 on day 3
    assert any(
        f.startswith("budget data-monthly would have reached its ceiling ($100.00) on day 3")
        for f in report.findings
    ), report.findings


async def test_spend_before_the_window_counts_as_the_gateway_rebuilds_it(engine):
    """Replaying 3-9 January against a budget of January: the $80 team data spent on the
    1st and 2nd is counted first (from the ledger, as the gateway rebuilds budgets), so
    the ceiling is reached on the window's first day."""
    b = bench(engine)
    await b.write(daily_spend(9))
    report = await b.run(MONTHLY, "7d", until=WED + 9 * DAY)

    budget = rule(report, "data-monthly")
    assert budget.budget.spend_before_window_usd == {"monthly": 80.0}
    assert budget.matched_requests == 28
    assert budget.budget.ceiling_reached_day == 1
    assert budget.proposed.first_trip.request_id == "req-0000022"
    assert budget.proposed.refused.requests == 28 - 2


async def test_a_fallback_budget_moves_requests_to_the_cheaper_model_at_its_price(engine):
    """A budget that falls back to gpt-4o-mini once $1 of gpt-4o is spent: later gpt-4o
    requests are counted at gpt-4o-mini's price, which the test computes itself."""
    from sluicegate.model.usage import Usage
    from sluicegate.pricing import PriceBook

    prices = PriceBook()
    usage = Usage(input_tokens=10_000, output_tokens=2_000)
    big = prices.price("openai", "gpt-4o", usage).cost_usd
    small = prices.price("openai", "gpt-4o-mini", usage).cost_usd
    assert big is not None and small is not None and small < big
    b = bench(engine)
    per = int(1.0 // big)  # requests that fit the $1 ceiling
    rows = [
        served(
            n, WED + n * 60.0, model="gpt-4o", input_tokens=10_000, output_tokens=2_000, cost=big
        )
        for n in range(per + 10)
    ]
    await b.write(rows)
    proposal = """
name: budgets
type: gateway-budget-config
budgets:
  - id: cap-gpt-4o
    scope: {models: [gpt-4o]}
    ceiling_usd: 1
    window: daily
    on_exceed: fallback_to_cheaper
    fallback_model: gpt-4o-mini
"""
    report = await b.run(proposal, "1d", until=WED + DAY)
    budget = rule(report, "cap-gpt-4o")
    assert budget.proposed.fallback.requests == 10
    assert [(m.name, m.requests) for m in budget.fallback_models] == [("gpt-4o-mini", 10)]
    assert round(budget.fallback_cost_usd, 9) == round(10 * small, 9)
    assert round(budget.proposed.fallback.cost_usd, 9) == round(10 * big, 9)  # as recorded
    assert budget.proposed.refused.requests == 0
    assert budget.budget.spend_before_window_usd == {"daily": None}  # models: not in ledger
