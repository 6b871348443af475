"""Virtual models end to end: a real gateway, its emulator as every provider, real HTTP.
Routing: the seed's weights, rule types, `when`, per-target settings, sticky sessions,
`/v1/models`, and policy fallbacks resolved through the router. (Fallbacks, retries and
streams: test_fallbacks_e2e; breakers, latency routing, replicas: test_breakers_e2e.)

Each test routes its own virtual model to upstream model names of its own, so the
emulator's per-model counters and faults tell the targets apart.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from sluicegate.model.identity import Envelope
from sluicegate.router.breaker import MemoryBreakerStore
from sluicegate.router.compile import compile_routes
from sluicegate.router.documents import LoadBalancingDocument
from sluicegate.router.plan import Router
from sluicegate.router.sticky import MemoryStickyStore
from tests.e2e.routing_support import (  # noqa: F401 (fixtures)
    SEED_ROUTING,
    _no_faults,
    attempts_of,
    burst,
    capture,
    chat,
    emulator_counts,
    key,
    resolved,
    rgw,
    row_of,
    run,
    session,
)

SEED_ARTICLE = Path(__file__).resolve().parents[3] / "shared/seeds/001_ffd380d0781056f3.txt"


# --- the seed's routing-config.yaml -------------------------------------------------
def test_seed_routing_config_is_the_articles_byte_for_byte():
    if not SEED_ARTICLE.exists():
        pytest.skip(f"{SEED_ARTICLE} is not on this machine")
    assert SEED_ROUTING.read_text().strip() in SEED_ARTICLE.read_text(encoding="utf-8")


def test_seed_weights_hold_over_thousands_of_plans():
    """90/10 within a point over 20,000 routing decisions (the router in process)."""
    doc = LoadBalancingDocument.model_validate(yaml.safe_load(SEED_ROUTING.read_text()))
    router = Router(MemoryBreakerStore(), sticky=MemoryStickyStore(), rng=random.Random(7))
    router.set_routes(compile_routes([doc]), lambda model: None)

    async def primaries() -> Counter[str]:
        return Counter(
            [(await router.plan("intent-fast", Envelope())).candidates[0].id for _ in range(20_000)]
        )

    counts = run(primaries())
    assert abs(counts["primary-haiku"] / 20_000 - 0.90) < 0.01
    assert abs(counts["secondary-bedrock-haiku"] / 20_000 - 0.10) < 0.01


def test_seed_weights_hold_through_the_gateway(rgw, key):
    before = emulator_counts(rgw)
    responses = run(burst(rgw, key, "intent-fast", 400, concurrency=16))
    assert all(r.status_code == 200 for r in responses)
    assert all(r.headers["x-sluice-attempts"] == "1" for r in responses)
    calls = emulator_counts(rgw) - before
    assert calls["claude-haiku-4-5"] + calls["anthropic.claude-haiku-4-5"] == 400
    assert not calls["gpt-4o-mini"] and not calls["gemini-2.0-flash"]  # fallbacks unused
    share = calls["anthropic.claude-haiku-4-5"] / 400
    assert abs(share - 0.10) < 0.05, calls  # 10% within 5 points (3.3 standard deviations)
    assert (
        resolved(responses)["bedrock/anthropic.claude-haiku-4-5"]
        == calls["anthropic.claude-haiku-4-5"]
    )
    row = row_of(rgw, responses[0])
    assert row["requested_model"] == "intent-fast"
    assert row["routing_rule"] in ("primary-haiku", "secondary-bedrock-haiku")
    assert row["provider"] in ("anthropic", "bedrock")
    assert row["latency_ms"] > 0 and row["attempts"][0]["latency_ms"] > 0


def test_models_lists_the_virtual_models_a_key_may_use(rgw, key):
    names = {m.id for m in openai.OpenAI(base_url=rgw.url + "/v1", api_key=key).models.list()}
    assert {"intent-fast", "gpt-4o-mini", "claude-haiku-4-5"} <= names
    limited = rgw.create_key(user_id="lim", models=["intent-fast"])["key"]
    names = {m.id for m in openai.OpenAI(base_url=rgw.url + "/v1", api_key=limited).models.list()}
    assert names == {"intent-fast"}
    assert chat(rgw, limited, "intent-fast").status_code == 200
    assert chat(rgw, limited, "gpt-4o-mini").status_code == 403


# --- rule types and `when` -------------------------------------------------------------
PRIORITY = """
name: rt-priority
type: gateway-load-balancing-config
rule_type: priority-based
circuit_breaker: {enabled: false}
rules:
  - {id: tier-0, priority: 0, target: {provider: openai, model: rt-prio-0}}
  - {id: tier-1, priority: 1, target: {provider: anthropic, model: rt-prio-1}}
fallbacks:
  - {provider: vertex, model: rt-prio-fb}
"""


def test_priority_tiers_are_tried_in_order(rgw, key):
    rgw.apply(PRIORITY)
    before = emulator_counts(rgw)
    assert resolved(run(burst(rgw, key, "rt-priority", 30))) == {"openai/rt-prio-0": 30}
    rgw.set_faults({"rt-prio-0": {"status": 503}})
    response = chat(rgw, key, "rt-priority")
    assert response.status_code == 200
    assert response.headers["x-sluice-resolved-model"] == "anthropic/rt-prio-1"
    assert response.headers["x-sluice-attempts"] == "2"
    assert response.headers["x-sluice-fallback"] == "true"
    row = row_of(rgw, response)
    assert attempts_of(row) == [
        ("rt-prio-0", 503, "UpstreamHTTPError", "primary"),
        ("rt-prio-1", 200, None, "fallback"),
    ]
    assert row["fallback_used"] and not row["retry_used"] and row["routing_rule"] == "tier-0"
    assert (row["provider"], row["model"]) == ("anthropic", "rt-prio-1")
    rgw.set_faults({"rt-prio-0": {"status": 503}, "rt-prio-1": {"status": 500}})
    response = chat(rgw, key, "rt-priority")
    assert response.headers["x-sluice-resolved-model"] == "vertex/rt-prio-fb"
    assert response.headers["x-sluice-attempts"] == "3"
    assert (emulator_counts(rgw) - before)["rt-prio-fb"] == 1


WHEN = """
name: rt-when
type: gateway-load-balancing-config
routes:
  - id: prod-search
    when: {metadata: {X-TFY-Environment: production}, subjects: ["team:search"]}
    rules: [{provider: openai, model: rt-when-prod}]
  - id: classify
    when: {workflow_tag: classify-intent}
    rules: [{provider: anthropic, model: rt-when-classify}]
  - id: acme
    when: {metadata: {customer: [acme, initech]}}
    rules: [{provider: vertex, model: rt-when-acme}]
  - id: default
    rules: [{provider: bedrock, model: rt-when-default}]
"""


def test_when_conditions_choose_the_rule_first_match_wins(rgw, key):
    rgw.apply(WHEN)
    other = rgw.create_key(user_id="bob", team="ads")["key"]
    prod = {"X-Sluice-Environment": "production", "X-Sluice-Workflow-Tag": "classify-intent"}
    cases = [
        (key, prod, "openai/rt-when-prod", "prod-search"),  # both match: the first wins
        (other, prod, "anthropic/rt-when-classify", "classify"),  # not team:search
        (
            other,
            {"X-TFY-Workflow-Tag": "classify-intent"},
            "anthropic/rt-when-classify",
            "classify",
        ),
        (other, {"X-Sluice-Metadata": '{"customer": "initech"}'}, "vertex/rt-when-acme", "acme"),
        (key, {"X-Sluice-Environment": "staging"}, "bedrock/rt-when-default", "default"),
    ]
    for raw_key, headers, target, route in cases:
        response = chat(rgw, raw_key, "rt-when", **headers)
        assert response.status_code == 200, response.text
        assert response.headers["x-sluice-resolved-model"] == target, (headers, route)
        assert row_of(rgw, response)["routing_rule"].startswith(route + ":")


# --- per-target settings -----------------------------------------------------------------
OVERRIDES = """
name: rt-overrides
type: gateway-load-balancing-config
rules:
  - id: pinned
    target: {provider: capture, model: base-model}
    override_params: {model: base-model-2024-08-06, temperature: 0.1}
    headers:
      set: {x-team-tag: search, authorization: Bearer pinned-credential}
      remove: [x-drop-me]
"""


def test_target_override_params_and_headers(rgw, key, capture):
    rgw.apply(OVERRIDES)
    body = {
        "model": "rt-overrides",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.9,
        "max_tokens": 20,
    }
    response = httpx.post(
        f"{rgw.url}/v1/chat/completions",
        json=body,
        timeout=30,
        headers={"authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    headers, sent = capture.requests[-1]
    assert sent["model"] == "base-model-2024-08-06" and sent["temperature"] == 0.1
    assert sent["max_tokens"] == 20  # what is not overridden passes through
    assert headers["x-team-tag"] == "search"
    assert headers["authorization"] == "Bearer pinned-credential"
    assert "x-drop-me" not in headers
    assert response.headers["x-sluice-resolved-model"] == "capture/base-model-2024-08-06"
    row = row_of(rgw, response)
    assert row["model"] == "base-model-2024-08-06" and row["routing_rule"] == "pinned"


# --- sticky sessions --------------------------------------------------------------------
STICKY = """
name: rt-sticky
type: gateway-load-balancing-config
sticky_session: {enabled: true, ttl_seconds: 2}
rules:
  - {id: a, weight: 50, provider: openai, model: rt-sticky-a}
  - {id: b, weight: 50, provider: anthropic, model: rt-sticky-b}
"""


def test_sticky_sessions_keep_their_target_until_the_ttl(rgw, key):
    rgw.apply(STICKY)
    sessions = [session() for _ in range(16)]

    def targets() -> dict[str, set[str]]:
        seen: dict[str, set[str]] = {}
        for sid in sessions:
            for response in run(
                burst(rgw, key, "rt-sticky", 4, concurrency=1, headers={"X-Sluice-Session-ID": sid})
            ):
                seen.setdefault(sid, set()).add(response.headers["x-sluice-resolved-model"])
        return seen

    first = targets()
    assert all(len(t) == 1 for t in first.values()), first
    assert len({next(iter(t)) for t in first.values()}) == 2  # sessions spread over both
    time.sleep(2.2)  # the pins expire: sessions are routed afresh
    second = targets()
    assert all(len(t) == 1 for t in second.values())
    assert any(first[sid] != second[sid] for sid in sessions)


# --- policy fallbacks go through the router ------------------------------------------------
POLICY_ROUTES = """
name: rt-premium
type: gateway-load-balancing-config
rules: [{id: premium, provider: anthropic, model: rt-premium}]
fallbacks: [{provider: vertex, model: rt-premium-cheap}]
---
name: rt-cheap
type: gateway-load-balancing-config
rules: [{id: cheap, provider: openai, model: rt-cheap-main}]
fallbacks: [{provider: vertex, model: rt-cheap-fb}]
"""
RATE_LIMIT = """
name: rt-policy-limits
type: gateway-rate-limit-config
rules:
  - id: premium-two-per-minute
    when: {models: [rt-premium]}
    limit: {requests: 2, window: 1m, scope: user}
    on_breach: fallback_to_rt-cheap
"""
BUDGET = """
name: rt-policy-budget
type: gateway-budget-config
budgets:
  - id: rt-tiny-budget
    scope: {metadata: {X-TFY-Project: rt-budget-project}}
    ceiling_usd: 0.0000001
    window: monthly
    on_exceed: fallback_to_cheaper   # uses fallback model from routing config
"""


def test_rate_limit_fallback_resolves_through_the_router(rgw, key):
    rgw.apply(POLICY_ROUTES + "---" + RATE_LIMIT)
    user = rgw.create_key(user_id="rt-policy-user")["key"]
    first = [chat(rgw, user, "rt-premium") for _ in range(2)]
    assert {r.headers["x-sluice-resolved-model"] for r in first} == {"anthropic/rt-premium"}
    rgw.set_faults({"rt-cheap-main": {"status": 503}})  # the fallback model's own fallback
    response = chat(rgw, user, "rt-premium")
    assert response.status_code == 200
    assert response.headers["x-sluice-resolved-model"] == "vertex/rt-cheap-fb"
    row = row_of(rgw, response)
    assert row["requested_model"] == "rt-premium" and row["routing_rule"] == "cheap"
    assert any(
        e["rule_id"] == "premium-two-per-minute" and e["action"] == "fallback"
        for e in row["policy_events"]
    )
    assert attempts_of(row)[0][:2] == ("rt-cheap-main", 503)


def test_budget_fallback_to_cheaper_uses_the_routing_configs_fallback(rgw, key):
    rgw.apply(POLICY_ROUTES + "---" + BUDGET)
    response = chat(rgw, key, "rt-premium", **{"X-Sluice-Project": "rt-budget-project"})
    assert response.status_code == 200, response.text
    assert response.headers["x-sluice-resolved-model"] == "vertex/rt-premium-cheap"
    row = row_of(rgw, response)
    assert any(e["rule_id"] == "rt-tiny-budget" for e in row["policy_events"])
