from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest
import yaml

from sluicegate.errors import NotFound, UpstreamUnavailable
from sluicegate.model.identity import Envelope
from sluicegate.router.breaker import MemoryBreakerStore
from sluicegate.router.compile import compile_document
from sluicegate.router.documents import LoadBalancingDocument
from sluicegate.router.latency import LatencyTracker
from sluicegate.router.plan import Router
from sluicegate.router.routes import CompiledVirtualModel, Target, target_key
from sluicegate.router.sticky import MemoryStickyStore
from tests.router.conftest import SEED_YAML, Breakers, FakeClock

HEAD = "name: vm\ntype: gateway-load-balancing-config\n"
ENV = Envelope()


def compiled(text: str) -> CompiledVirtualModel:
    return compile_document(LoadBalancingDocument.model_validate(yaml.safe_load(text)))


def seed() -> CompiledVirtualModel:
    return compiled(SEED_YAML.read_text())


def catalog(model: str) -> Target | None:
    return Router.plain_target("openai", model) if model.startswith("gpt-") else None


def make_router(
    *vms: CompiledVirtualModel,
    clock: FakeClock,
    breakers=None,
    latency: LatencyTracker | None = None,
) -> Router:
    router = Router(
        breakers or MemoryBreakerStore(clock=clock),
        sticky=MemoryStickyStore(clock=clock),
        latency=latency or LatencyTracker(clock=clock),
        rng=random.Random(7),
        clock=clock,
    )
    router.set_routes({vm.name: vm for vm in vms}, catalog)
    return router


async def open_circuit(router: Router, vm: CompiledVirtualModel, target_id: str) -> None:
    assert vm.breaker is not None
    for _ in range(vm.breaker.failure_threshold):
        key = target_key(vm.name, target_id)
        await router.breakers.record_failure(key, vm.breaker, probe=False)


async def primaries(router: Router, model: str, n: int, envelope: Envelope = ENV) -> Counter[str]:
    return Counter([(await router.plan(model, envelope)).candidates[0].id for _ in range(n)])


async def test_weights_hold_over_thousands_of_plans(clock: FakeClock):
    router = make_router(seed(), clock=clock)
    counts = await primaries(router, "intent-fast", 5000)
    assert abs(counts["primary-haiku"] / 5000 - 0.90) < 0.02
    assert abs(counts["secondary-bedrock-haiku"] / 5000 - 0.10) < 0.02


async def test_the_plan_is_the_primary_then_the_fallbacks_in_order(clock: FakeClock):
    plan = await make_router(seed(), clock=clock).plan("intent-fast", ENV)
    assert plan.virtual and plan.model == "intent-fast"
    assert [t.id for t in plan.candidates[1:]] == ["openai/gpt-4o-mini", "vertex/gemini-2.0-flash"]
    assert plan.rule_id == plan.candidates[0].id and plan.route_id == "default"
    assert plan.breaker is not None and plan.sticky_key is None


async def test_priority_tiers_share_by_weight_and_later_tiers_fall_back(clock: FakeClock):
    vm = compiled(
        HEAD
        + """
rule_type: priority-based
rules:
  - {id: a, provider: p, model: a, priority: 0, weight: 3}
  - {id: b, provider: p, model: b, priority: 0, weight: 1}
  - {id: c, provider: p, model: c, priority: 1}
fallbacks: [{id: f, provider: q, model: f}]
"""
    )
    router = make_router(vm, clock=clock)
    counts = await primaries(router, "vm", 2000)
    assert set(counts) == {"a", "b"} and abs(counts["a"] / 2000 - 0.75) < 0.04
    plan = await router.plan("vm", ENV)
    assert [t.id for t in plan.candidates][1:] in (["b", "c", "f"], ["a", "c", "f"])
    await open_circuit(router, vm, "a")
    await open_circuit(router, vm, "b")
    plan = await router.plan("vm", ENV)
    assert [t.id for t in plan.candidates] == ["c", "f"]


async def test_latency_based_explores_then_prefers_the_faster_target(clock: FakeClock):
    vm = compiled(
        HEAD
        + """
rule_type: latency-based
latency_explore_pct: 5
rules: [{id: fast, provider: p, model: fast}, {id: slow, provider: p, model: slow}]
"""
    )
    latency = LatencyTracker(clock=clock)
    router = make_router(vm, clock=clock, latency=latency)
    for _ in range(10):
        latency.record(target_key("vm", "fast"), 100, ok=True)
    assert (await primaries(router, "vm", 20)) == {"slow": 20}  # too few samples: explored
    for _ in range(10):
        latency.record(target_key("vm", "slow"), 400, ok=True)
    counts = await primaries(router, "vm", 2000)
    assert 0.93 < counts["fast"] / 2000 < 0.995  # ~97.5%: the rest is exploration
    assert counts["slow"] > 0

    clock.advance(301)  # the old samples age out; slow has become the fast one
    for _ in range(10):
        latency.record(target_key("vm", "fast"), 900, ok=True)
        latency.record(target_key("vm", "slow"), 120, ok=True)
    counts = await primaries(router, "vm", 1000)
    assert counts["slow"] > 930


async def test_latency_within_the_tolerance_band_shares_traffic(clock: FakeClock):
    vm = compiled(
        HEAD
        + """
rule_type: latency-based
latency_tolerance_pct: 20
latency_explore_pct: 0
rules:
  - {id: a, provider: p, model: a}
  - {id: b, provider: p, model: b}
  - {id: c, provider: p, model: c}
"""
    )
    latency = LatencyTracker(clock=clock)
    for target_id, ms in (("a", 100), ("b", 115), ("c", 150)):
        for _ in range(5):
            latency.record(target_key("vm", target_id), ms, ok=True)
    counts = await primaries(make_router(vm, clock=clock, latency=latency), "vm", 1000)
    assert set(counts) == {"a", "b"} and counts["a"] > 400 and counts["b"] > 400


async def test_when_conditions_pick_the_route_first_match_wins(clock: FakeClock):
    vm = compiled(
        HEAD
        + """
routes:
  - id: prod-search
    when: {metadata: {X-TFY-Environment: production}, subjects: ["team:search"]}
    rules: [{id: sonnet, provider: anthropic, model: claude-sonnet-4-6}]
  - id: prod
    when: {metadata: {X-Sluice-Environment: production}}
    rules: [{id: haiku, provider: anthropic, model: claude-haiku-4-5}]
  - id: tagged
    when: {workflow_tag: [classify-intent, triage], metadata: {feature: bot}}
    rules: [{id: mini, provider: openai, model: gpt-4o-mini}]
  - id: default
    rules: [{id: flash, provider: vertex, model: gemini-2.0-flash}]
"""
    )
    router = make_router(vm, clock=clock)
    cases = [
        (Envelope(environment="production", team="search"), "prod-search:sonnet"),
        (Envelope(environment="production", team="ads"), "prod:haiku"),
        (Envelope(workflow_tag="triage", metadata={"feature": "bot"}), "tagged:mini"),
        (Envelope(workflow_tag="triage"), "default:flash"),
    ]
    for envelope, rule_id in cases:
        assert (await router.plan("vm", envelope)).rule_id == rule_id


async def test_no_matching_route_and_no_default_is_not_found(clock: FakeClock):
    vm = compiled(
        HEAD
        + """
routes:
  - {id: prod, when: {metadata: {environment: production}}, rules: [{provider: p, model: m}]}
"""
    )
    with pytest.raises(NotFound, match="no route of 'vm' matches"):
        await make_router(vm, clock=clock).plan("vm", Envelope(environment="dev"))


async def test_unknown_and_plain_models(clock: FakeClock):
    router = make_router(seed(), clock=clock)
    with pytest.raises(NotFound):
        await router.plan("no-such-model", ENV)
    plan = await router.plan("gpt-4o", ENV)
    assert not plan.virtual and plan.breaker is None
    assert [(t.provider, t.model) for t in plan.candidates] == [("openai", "gpt-4o")]
    assert router.virtual_model_names() == ["intent-fast"]


async def test_open_circuits_are_skipped_and_all_open_fails_fast(clock: FakeClock):
    vm = seed()
    router = make_router(vm, clock=clock)
    await open_circuit(router, vm, "primary-haiku")
    assert await primaries(router, "intent-fast", 200) == {"secondary-bedrock-haiku": 200}
    plan = await router.plan("intent-fast", ENV)
    assert "primary-haiku" not in [t.id for t in plan.candidates]

    for target_id in ("secondary-bedrock-haiku", "openai/gpt-4o-mini"):
        await open_circuit(router, vm, target_id)
    plan = await router.plan("intent-fast", ENV)
    assert [t.id for t in plan.candidates] == ["vertex/gemini-2.0-flash"]
    assert plan.rule_id == "vertex/gemini-2.0-flash"
    await open_circuit(router, vm, "vertex/gemini-2.0-flash")
    with pytest.raises(UpstreamUnavailable, match="every target of 'intent-fast' has an open"):
        await router.plan("intent-fast", ENV)


async def test_half_open_lets_exactly_one_concurrent_plan_probe(
    breakers: Breakers, clock: FakeClock
):
    vm = compiled(
        HEAD
        + """
rules: [{id: a, provider: p, model: a}]
fallbacks: [{id: f, provider: q, model: f}]
circuit_breaker: {failure_threshold: 2, window_seconds: 60, cooldown_seconds: 0.2}
"""
    )
    router = make_router(vm, clock=clock, breakers=breakers.make())
    await open_circuit(router, vm, "a")
    assert (await router.plan("vm", ENV)).candidates[0].id == "f"
    await breakers.advance(0.3)

    plans = await asyncio.gather(*(router.plan("vm", ENV) for _ in range(20)))
    probing = [p for p in plans if p.candidates[0].id == "a"]
    assert len(probing) == 1 and probing[0].probe_ids == {"a"}
    assert all([t.id for t in p.candidates] == ["f"] for p in plans if p not in probing)


async def test_sticky_sessions_keep_their_target(clock: FakeClock):
    vm = compiled(
        HEAD
        + """
sticky_session: {enabled: true, ttl_seconds: 600}
rules: [{id: a, provider: p, model: a}, {id: b, provider: p, model: b}]
"""
    )
    router = make_router(vm, clock=clock)
    for session in ("s1", "s2", "s3", "s4"):
        counts = await primaries(router, "vm", 30, Envelope(session_id=session))
        assert len(counts) == 1
    plan = await router.plan("vm", Envelope(session_id="s1"))
    assert plan.sticky_key == "vm:s1"
    assert len(await primaries(router, "vm", 100)) == 2  # no session: not pinned

    pinned = plan.candidates[0].id
    await open_circuit(router, vm, pinned)  # the pinned target fails: the session moves
    moved = (await router.plan("vm", Envelope(session_id="s1"))).candidates[0].id
    assert moved != pinned
    clock.advance(60)
    assert await primaries(router, "vm", 10, Envelope(session_id="s1")) == {moved: 10}


async def test_hot_reload_swaps_the_table(clock: FakeClock):
    router = make_router(seed(), clock=clock)
    router.set_routes(
        {"other": compiled(HEAD.replace("vm", "other") + "rules: [{provider: p, model: m}]\n")},
        catalog,
    )
    assert router.virtual_model_names() == ["other"]
    with pytest.raises(NotFound):
        await router.plan("intent-fast", ENV)


async def test_status_reports_breakers_latency_and_share(clock: FakeClock):
    vm = seed()
    latency = LatencyTracker(clock=clock)
    router = make_router(vm, clock=clock, latency=latency)
    await open_circuit(router, vm, "secondary-bedrock-haiku")
    for ms in (100, 200, 300, 400):
        latency.record(target_key("intent-fast", "primary-haiku"), ms, ok=True)
    latency.record(target_key("intent-fast", "openai/gpt-4o-mini"), 50, ok=False)

    rows = {row["target_id"]: row for row in await router.status()}
    assert list(rows) == [
        "primary-haiku",
        "secondary-bedrock-haiku",
        "openai/gpt-4o-mini",
        "vertex/gemini-2.0-flash",
    ]
    haiku, mini = rows["primary-haiku"], rows["openai/gpt-4o-mini"]
    bedrock = rows["secondary-bedrock-haiku"]
    assert haiku["state"] == "closed" and haiku["p50_ms"] == 200 and haiku["p95_ms"] == 400
    assert haiku["share"] == 0.8 and haiku["error_rate"] == 0.0
    assert mini["error_rate"] == 1.0 and mini["p50_ms"] is None
    assert bedrock["state"] == "open" and bedrock["open_until"] == clock.now + 30
    assert bedrock["provider"] == "bedrock" and bedrock["virtual_model"] == "intent-fast"


async def test_cheaper_model_is_the_first_fallback(clock: FakeClock):
    router = make_router(seed(), clock=clock)
    assert router.cheaper_model("intent-fast") == "gpt-4o-mini"
    assert router.cheaper_model("gpt-4o") is None


async def test_cheaper_model_outside_the_catalog_plans_the_fallbacks(clock: FakeClock):
    """The first fallback is not a catalog model (vertex/gemini here): the cheaper model
    is the virtual model's fallbacks, planned in order, open circuits skipped, under the
    virtual model's own breaker keys."""
    vm = compiled(
        HEAD
        + """
rules: [{id: main, provider: anthropic, model: claude-sonnet-4-6}]
fallbacks:
  - {provider: vertex, model: gemini-2.0-flash}
  - {provider: openai, model: gpt-4o-mini}
"""
    )
    router = make_router(vm, clock=clock)
    assert router.cheaper_model("vm") == "vm:fallbacks"
    assert router.cheaper_model("vm:fallbacks") is None
    plan = await router.plan("vm:fallbacks", ENV)
    assert [t.id for t in plan.candidates] == ["vertex/gemini-2.0-flash", "openai/gpt-4o-mini"]
    assert plan.key_for(plan.candidates[0]) == target_key("vm", "vertex/gemini-2.0-flash")
    await open_circuit(router, vm, "vertex/gemini-2.0-flash")
    plan = await router.plan("vm:fallbacks", ENV)
    assert [t.id for t in plan.candidates] == ["openai/gpt-4o-mini"]
    with pytest.raises(NotFound):
        await router.plan("nothing:fallbacks", ENV)


async def test_latency_based_follows_a_target_that_slows_down(clock: FakeClock):
    vm = compiled(
        HEAD
        + """
rule_type: latency-based
latency_explore_pct: 0
rules: [{id: a, provider: p, model: a}, {id: b, provider: p, model: b}]
"""
    )
    latency = LatencyTracker(clock=clock)
    router = make_router(vm, clock=clock, latency=latency)
    for _ in range(200):  # a long history of a being the faster one
        latency.record(target_key("vm", "a"), 50, ok=True)
        latency.record(target_key("vm", "b"), 100, ok=True)
    assert await primaries(router, "vm", 100) == {"a": 100}
    for _ in range(10):  # a few slow answers from a
        latency.record(target_key("vm", "a"), 400, ok=True)
    assert await primaries(router, "vm", 100) == {"b": 100}


async def test_plans_name_their_fallback_targets(clock: FakeClock):
    vm = seed()
    router = make_router(vm, clock=clock)
    await open_circuit(router, vm, "primary-haiku")
    await open_circuit(router, vm, "secondary-bedrock-haiku")
    plan = await router.plan("intent-fast", ENV)
    assert plan.fallback_ids == {"openai/gpt-4o-mini", "vertex/gemini-2.0-flash"}
    assert plan.candidates[0].id in plan.fallback_ids
