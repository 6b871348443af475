"""Routing proposals valued on recorded traffic: the cost the same tokens would have had on
the new targets at their prices, per model and per target, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from sluicegate.model.usage import Usage
from sluicegate.pricing import PriceBook
from tests.whatif.support import DAY, WED, bench, served

USAGE = Usage(input_tokens=1_000, output_tokens=500)
PRICES = PriceBook()
GPT_4O = PRICES.price("openai", "gpt-4o", USAGE).cost_usd or 0.0
MINI = PRICES.price("openai", "gpt-4o-mini", USAGE).cost_usd or 0.0

LIVE = """
name: assistant
type: gateway-load-balancing-config
rules:
  - target: {provider: openai, model: gpt-4o}
"""


def assistant_rows(count: int, *, first: int = 0, **fields) -> list:
    return [
        served(
            first + n,
            WED + 3600 + n * 30.0,
            model="assistant",
            input_tokens=1_000,
            output_tokens=500,
            cost=GPT_4O,
            **fields,
        )
        for n in range(count)
    ]


def _served_as_gpt_4o(rows: list) -> list:
    for row in rows:  # served as gpt-4o under the name the client asked for
        row.model = "gpt-4o"
    return rows


async def test_a_route_moved_to_a_cheaper_model_costs_its_price_ratio(engine):
    """40 requests of `assistant` served by gpt-4o; the proposal sends three quarters to
    gpt-4o-mini and a quarter to a self-hosted model with no price: 30 requests at
    gpt-4o-mini's price, 10 counted apart as unpriced; plain gpt-4o-mini traffic, routed
    the same either way, is not in the routing figures."""
    assert 0 < MINI < GPT_4O
    b = bench(engine)
    await b.apply(LIVE)
    rows = _served_as_gpt_4o(assistant_rows(40))
    rows += [served(1000 + n, WED + 7200 + n, model="gpt-4o-mini") for n in range(25)]
    await b.write(rows)
    proposal = """
name: assistant
type: gateway-load-balancing-config
rules:
  - {target: {provider: openai, model: gpt-4o-mini}, weight: 3}
  - {target: {provider: openai, model: my-llama-70b}, weight: 1}
"""
    report = await b.run(proposal, "1d", until=WED + DAY)

    (route,) = report.routes
    assert route.model == "assistant"
    assert route.requests == 40
    assert route.input_tokens == 40_000 and route.output_tokens == 20_000
    assert route.current_cost_usd == pytest.approx(40 * GPT_4O)
    assert route.proposed_cost_usd == pytest.approx(30 * MINI)
    assert route.proposed_unpriced_requests == 10
    assert route.cost_change_usd == pytest.approx(30 * MINI - 40 * GPT_4O)
    assert [(t.target, t.requests, t.cost_usd) for t in route.current_targets] == [
        ("openai/gpt-4o", 40, pytest.approx(40 * GPT_4O))
    ]
    by_target = {t.target: t for t in route.proposed_targets}
    mini, llama = by_target["openai/gpt-4o-mini"], by_target["openai/my-llama-70b"]
    assert (mini.share, mini.requests, mini.unpriced_requests) == (0.75, 30, 0)
    assert mini.cost_usd == pytest.approx(30 * MINI)
    assert (llama.share, llama.requests, llama.unpriced_requests) == (0.25, 10, 10)
    assert llama.cost_usd is None
    assert report.totals["routing"]["requests"] == 40
    assert any(f.startswith("assistant: 40 requests would cost") for f in report.findings)
    assert any("10 on openai/my-llama-70b have no price" in f for f in report.findings)


async def test_only_requests_whose_route_changes_are_valued(engine):
    """A route added for team search moves only that team's requests; the others keep
    the live route and their recorded cost."""
    b = bench(engine)
    await b.apply(LIVE)
    rows = _served_as_gpt_4o(assistant_rows(12, team="search"))
    rows += _served_as_gpt_4o(assistant_rows(20, first=100, team="web"))
    await b.write(rows)
    proposal = """
name: assistant
type: gateway-load-balancing-config
routes:
  - id: search
    when: {subjects: ["team:search"]}
    rules: [{target: {provider: openai, model: gpt-4o-mini}}]
  - id: default
    rules: [{target: {provider: openai, model: gpt-4o}}]
"""
    report = await b.run(proposal, "1d", until=WED + DAY)
    (route,) = report.routes
    assert route.requests == 12
    assert route.proposed_cost_usd == pytest.approx(12 * MINI)
    assert route.current_cost_usd == pytest.approx(12 * GPT_4O)


async def test_a_removed_virtual_model_is_counted_as_unroutable(engine):
    b = bench(engine)
    await b.apply(LIVE)
    await b.write(_served_as_gpt_4o(assistant_rows(5)))
    other = """
name: other
type: gateway-load-balancing-config
rules: [{target: {provider: openai, model: gpt-4o}}]
"""
    report = await b.run(other, "1d", until=WED + DAY, replace=True)
    (route,) = report.routes
    assert (route.model, route.unroutable_requests) == ("assistant", 5)
    assert report.totals["unroutable_requests"] == 5
    assert any("5 requests would find no model (404)" in f for f in report.findings)
