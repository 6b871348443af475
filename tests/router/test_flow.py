"""The router and the attempts loop together, the way the pipeline drives them."""

from __future__ import annotations

import random
from collections import Counter

import yaml

from sluicegate.errors import UpstreamHTTPError
from sluicegate.model.identity import Envelope
from sluicegate.router.attempts import AttemptsOutcome
from sluicegate.router.breaker import MemoryBreakerStore
from sluicegate.router.compile import compile_routes
from sluicegate.router.documents import LoadBalancingDocument
from sluicegate.router.latency import LatencyTracker
from sluicegate.router.plan import Router
from sluicegate.router.routes import Target
from sluicegate.router.sticky import MemoryStickyStore
from tests.router.conftest import SEED_YAML, FakeClock


class Provider:
    """Every target answers with its id, except those marked down (HTTP 503)."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.calls: Counter[str] = Counter()

    async def __call__(self, target: Target, reason: str) -> str:
        self.calls[target.id] += 1
        if target.id in self.down:
            raise UpstreamHTTPError("overloaded", upstream_status=503)
        return target.id


async def test_an_outage_opens_the_circuit_then_a_probe_brings_the_target_back(clock: FakeClock):
    doc = LoadBalancingDocument.model_validate(yaml.safe_load(SEED_YAML.read_text()))
    router = Router(
        MemoryBreakerStore(clock=clock),
        sticky=MemoryStickyStore(clock=clock),
        latency=LatencyTracker(clock=clock),
        rng=random.Random(3),
        clock=clock,
    )
    router.set_routes(compile_routes([doc]), lambda model: None)
    provider = Provider()

    async def request() -> AttemptsOutcome[str]:
        plan = await router.plan("intent-fast", Envelope())
        return await router.run(plan, provider)

    provider.down.add("primary-haiku")
    answers = Counter([(await request()).unwrap() for _ in range(100)])
    assert provider.calls["primary-haiku"] == 5  # the threshold, then the circuit is open
    assert answers["primary-haiku"] == 0
    assert answers["openai/gpt-4o-mini"] == 5  # each failure fell back once

    clock.advance(31)  # cooldown over: half-open; the provider has recovered
    provider.down.clear()
    provider.calls.clear()
    while provider.calls["primary-haiku"] == 0:
        outcome = await request()
    assert outcome.unwrap() == "primary-haiku" and provider.calls["primary-haiku"] == 1
    answers = Counter([(await request()).unwrap() for _ in range(1000)])
    assert 850 < answers["primary-haiku"] < 950  # closed again: back to its 90%
    rows = {row["target_id"]: row for row in await router.status()}
    assert rows["primary-haiku"]["state"] == "closed"


async def test_the_router_learns_time_per_output_token_of_the_target_that_answered(
    clock: FakeClock,
):
    doc = LoadBalancingDocument.model_validate(yaml.safe_load(SEED_YAML.read_text()))
    router = Router(
        MemoryBreakerStore(clock=clock),
        sticky=MemoryStickyStore(clock=clock),
        latency=LatencyTracker(clock=clock),
        rng=random.Random(3),
        clock=clock,
    )
    router.set_routes(compile_routes([doc]), lambda model: None)
    outcome = await router.run(await router.plan("intent-fast", Envelope()), Provider())
    router.record_generation(outcome, 50, 1000.0)  # 50 tokens in one second
    router.record_generation(outcome, None, 1000.0)  # usage not reported: no sample
    rows = {row["target_id"]: row for row in await router.status()}
    assert outcome.final_target is not None
    assert rows[outcome.final_target.id]["tpot_p50_ms"] == 20.0
    assert rows[outcome.final_target.id]["requests"] == 1
