"""The premium-review panel's proposal replayed by the what-if over the same ledger: the
replay's cost of the moved traffic on the new target equals the panel's projection for
the same window, on SQLite and PostgreSQL; the document is accepted by the config
service's own apply."""

from __future__ import annotations

import random

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics.window import iso
from sluicegate.model.record import LedgerRecord
from sluicegate.model.usage import Usage
from sluicegate.pricing import PriceBook
from tests.analytics.panel_support import ask
from tests.analytics.premium_traffic import CONFIG, premium_context
from tests.whatif.support import DAY, WED, bench, served

PRICES = PriceBook()


def _opus(n: int, workflow: str, rng: random.Random) -> LedgerRecord:
    usage = Usage(
        input_tokens=rng.randint(100, 5000),
        output_tokens=rng.randint(10, 700),
        cache_read_tokens=rng.choice((0, 64)),
    )
    return served(
        n,
        WED + 3600 + n * 40.0,
        model="claude-opus-4-7",
        provider="anthropic",
        workflow_tag=workflow,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cost=PRICES.price("anthropic", "claude-opus-4-7", usage).cost_usd,
    )


async def test_the_replay_of_the_proposal_costs_what_the_panel_projects(
    engine: AsyncEngine,
) -> None:
    rng = random.Random(3)
    b = bench(engine)
    await b.apply(CONFIG)
    rows = [_opus(n, ("review", "classify")[n % 3 == 0], rng) for n in range(90)]
    await b.write(rows)
    ctx = premium_context(engine)
    window = (("since", iso(WED)), ("until", iso(WED + DAY)))
    answer = await ask(ctx, "premium-review", *window)
    (review,) = [r for r in answer.rows if r.label == "review"]
    assert review.requests == sum(1 for r in rows if r.workflow_tag == "review")
    assert review.yaml is not None and review.target == "claude-sonnet-4-6"

    report = await b.run(review.yaml, "1d", until=WED + DAY)

    (route,) = report.routes
    assert route.model == "claude-opus-4-7"
    assert route.requests == review.requests  # classify is routed as before: not counted
    # the report rounds dollars to 6 places
    assert route.proposed_cost_usd == pytest.approx(review.target_cost_usd, abs=1e-6)
    assert route.current_cost_usd == pytest.approx(review.cost_usd, abs=1e-6)
    (target,) = route.proposed_targets
    assert target.target == "anthropic/claude-sonnet-4-6"
    await b.apply(review.yaml)  # and the config service takes it as it is
