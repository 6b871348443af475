"""Virtual models end to end: a real gateway, its emulator as every provider, real HTTP.

Each test routes its own virtual model to upstream model names of its own, so the
emulator's per-model counters and faults tell the targets apart.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
import yaml

from sluicegate.model.identity import Envelope
from sluicegate.router.breaker import MemoryBreakerStore
from sluicegate.router.documents import LoadBalancingDocument, compile_routes
from sluicegate.router.plan import Router
from sluicegate.router.sticky import MemoryStickyStore
from tests.e2e.gateway import run_gateway
from tests.e2e.routing_support import (
    SEED_ROUTING,
    CaptureUpstream,
    burst,
    chat,
    emulator_counts,
    providers_yaml,
    resolved,
    run,
    session,
)

DEAD_PORT = 9  # discard: nothing listens there on loopback
SEED_ARTICLE = Path("/work/shared/seeds/001_ffd380d0781056f3.txt")


@pytest.fixture(scope="module")
def capture():
    with CaptureUpstream() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def rgw(tmp_path_factory, capture):
    db = tmp_path_factory.mktemp("routing") / "sluicegate.db"
    with run_gateway(f"sqlite:///{db}") as gateway:
        gateway.apply(providers_yaml(gateway.url, extra=[
            f"{{name: deadhost, kind: openai, base_url: http://127.0.0.1:{DEAD_PORT}/v1}}",
            f"{{name: capture, kind: openai, base_url: {capture.url}, "
            "headers: {authorization: Bearer cap, x-drop-me: secret}}",
        ]))
        gateway.apply(SEED_ROUTING.read_text())  # the seed, byte for byte
        yield gateway


@pytest.fixture(scope="module")
def key(rgw) -> str:
    return rgw.create_key(user_id="alice", team="search", project="platform-search")["key"]


@pytest.fixture(autouse=True)
def _no_faults(rgw):
    rgw.clear_faults()
    yield
    rgw.clear_faults()


def row_of(gateway, response: httpx.Response) -> dict:
    return gateway.request_row(response.headers["x-sluice-request-id"])


def attempts_of(row: dict) -> list[tuple]:
    return [(a["model"], a["status_code"], a["error_class"], a["reason"])
            for a in row["attempts"]]


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
        return Counter([(await router.plan("intent-fast", Envelope())).candidates[0].id
                        for _ in range(20_000)])

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
    assert 0.055 < share < 0.145, calls  # 10% +- 3 standard deviations
    assert resolved(responses)["bedrock/anthropic.claude-haiku-4-5"] == \
        calls["anthropic.claude-haiku-4-5"]
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
    assert attempts_of(row) == [("rt-prio-0", 503, "UpstreamHTTPError", "primary"),
                                ("rt-prio-1", 200, None, "fallback")]
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
        (other, {"X-TFY-Workflow-Tag": "classify-intent"}, "anthropic/rt-when-classify",
         "classify"),
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
    body = {"model": "rt-overrides", "messages": [{"role": "user", "content": "hi"}],
            "temperature": 0.9, "max_tokens": 20}
    response = httpx.post(f"{rgw.url}/v1/chat/completions", json=body, timeout=30,
                          headers={"authorization": f"Bearer {key}"})
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


# --- fallbacks ----------------------------------------------------------------------------
FALLBACKS = """
name: rt-fallbacks
type: gateway-load-balancing-config
circuit_breaker: {enabled: false}
rules: [{id: main, provider: openai, model: rt-fb-main}]
fallbacks:
  - {provider: anthropic, model: rt-fb-first}
  - {provider: vertex, model: rt-fb-second}
"""


@pytest.mark.parametrize("status", [401, 403, 404, 408, 429, 500, 502, 503, 504])
def test_default_fallback_statuses(rgw, key, status):
    rgw.apply(FALLBACKS)
    rgw.set_faults({"rt-fb-main": {"status": status}})
    response = chat(rgw, key, "rt-fallbacks")
    assert response.status_code == 200, response.text
    assert response.headers["x-sluice-resolved-model"] == "anthropic/rt-fb-first"
    row = row_of(rgw, response)
    assert attempts_of(row)[0] == ("rt-fb-main", status, "UpstreamHTTPError", "primary")
    assert row["fallback_used"] and row["attempt_count"] == 2


def test_fallbacks_are_tried_in_order_and_a_client_error_does_not_fall_back(rgw, key):
    rgw.apply(FALLBACKS)
    rgw.set_faults({"rt-fb-main": {"status": 500}, "rt-fb-first": {"status": 503}})
    response = chat(rgw, key, "rt-fallbacks")
    assert response.headers["x-sluice-resolved-model"] == "vertex/rt-fb-second"
    assert [a[0] for a in attempts_of(row_of(rgw, response))] == [
        "rt-fb-main", "rt-fb-first", "rt-fb-second"]

    rgw.set_faults({"rt-fb-main": {"status": 400, "error_message": "bad temperature"}})
    before = emulator_counts(rgw)
    response = chat(rgw, key, "rt-fallbacks")
    assert response.status_code == 400 and "bad temperature" in response.text
    assert response.headers["x-sluice-attempts"] == "1"
    assert not (emulator_counts(rgw) - before)["rt-fb-first"]

    rgw.set_faults({"*": {"status": 503}})  # every provider down: the client is told
    response = chat(rgw, key, "rt-fallbacks")
    assert response.status_code == 502, response.text
    assert response.headers["x-sluice-attempts"] == "3"
    row = row_of(rgw, response)
    assert row["status_code"] == 502 and row["attempt_count"] == 3 and row["fallback_used"]


def test_fallback_status_codes_are_configurable(rgw, key):
    rgw.apply(FALLBACKS.replace("name: rt-fallbacks", "name: rt-fallbacks-503")
              + "fallback_status_codes: [503]\n")
    rgw.set_faults({"rt-fb-main": {"status": 500}})
    response = chat(rgw, key, "rt-fallbacks-503")
    assert response.status_code == 502 and response.headers["x-sluice-attempts"] == "1"
    rgw.set_faults({"rt-fb-main": {"status": 503}})
    response = chat(rgw, key, "rt-fallbacks-503")
    assert response.status_code == 200
    assert response.headers["x-sluice-resolved-model"] == "anthropic/rt-fb-first"


CONNECT = """
name: rt-connect
type: gateway-load-balancing-config
circuit_breaker: {enabled: false}
rules: [{id: dead, provider: deadhost, model: rt-dead}]
fallbacks: [{provider: vertex, model: rt-connect-fb}]
"""
TIMEOUT = """
name: rt-timeout
type: gateway-load-balancing-config
circuit_breaker: {enabled: false}
rules: [{id: slow, provider: openai, model: rt-slow, timeout_ms: 300}]
fallbacks: [{provider: vertex, model: rt-connect-fb}]
"""


def test_connection_errors_and_timeouts_fall_back(rgw, key):
    rgw.apply(CONNECT)
    response = chat(rgw, key, "rt-connect")
    assert response.status_code == 200
    assert response.headers["x-sluice-resolved-model"] == "vertex/rt-connect-fb"
    assert attempts_of(row_of(rgw, response))[0] == (
        "rt-dead", None, "UpstreamUnavailable", "primary")

    rgw.apply(TIMEOUT)
    rgw.set_faults({"rt-slow": {"delay_ms": 3000}})
    started = time.monotonic()
    response = chat(rgw, key, "rt-timeout")
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and elapsed < 2.0
    assert response.headers["x-sluice-resolved-model"] == "vertex/rt-connect-fb"
    first = row_of(rgw, response)["attempts"][0]
    assert (first["model"], first["status_code"], first["error_class"]) == (
        "rt-slow", None, "UpstreamTimeout")
    assert 250 <= first["latency_ms"] < 1500


# --- retries ------------------------------------------------------------------------------
RETRY = """
name: rt-retry
type: gateway-load-balancing-config
circuit_breaker: {enabled: false}
rules:
  - id: main
    target: {provider: openai, model: rt-retry-main}
    retry: {attempts: 2, delay_ms: 20, max_delay_ms: 40}
fallbacks: [{provider: anthropic, model: rt-retry-fb}]
"""


def test_429_retry_after_is_honoured_then_falls_back(rgw, key):
    rgw.apply(RETRY)
    rgw.set_faults({"rt-retry-main": {"status": 429, "retry_after": "1"}})
    before = emulator_counts(rgw)
    started = time.monotonic()
    response = chat(rgw, key, "rt-retry")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert elapsed >= 1.0  # the retry waited for Retry-After, not the 20 ms back-off
    assert response.headers["x-sluice-attempts"] == "3"
    row = row_of(rgw, response)
    assert attempts_of(row) == [("rt-retry-main", 429, "UpstreamHTTPError", "primary"),
                                ("rt-retry-main", 429, "UpstreamHTTPError", "retry"),
                                ("rt-retry-fb", 200, None, "fallback")]
    assert row["retry_used"] and row["fallback_used"]
    assert (emulator_counts(rgw) - before)["rt-retry-main"] == 2


def test_429_retry_succeeds_once_the_provider_recovers(rgw, key):
    rgw.apply(RETRY)
    rgw.set_faults({"rt-retry-main": {"status": 429, "retry_after": "1"}})
    threading.Timer(0.4, rgw.clear_faults).start()
    started = time.monotonic()
    response = chat(rgw, key, "rt-retry")
    assert time.monotonic() - started >= 1.0
    assert response.headers["x-sluice-resolved-model"] == "openai/rt-retry-main"
    row = row_of(rgw, response)
    assert [a[3] for a in attempts_of(row)] == ["primary", "retry"]
    assert row["retry_used"] and not row["fallback_used"]


def test_retry_after_beyond_the_cap_moves_on_at_once(rgw, key):
    rgw.apply(RETRY)
    rgw.set_faults({"rt-retry-main": {"status": 429, "retry_after": "120"}})
    started = time.monotonic()
    response = chat(rgw, key, "rt-retry")
    assert time.monotonic() - started < 1.0
    assert [a[3] for a in attempts_of(row_of(rgw, response))] == ["primary", "fallback"]


def test_upstream_429_reaches_the_client_with_retry_after(rgw, key):
    rgw.apply("""
name: rt-retry-alone
type: gateway-load-balancing-config
circuit_breaker: {enabled: false}
rules: [{provider: openai, model: rt-retry-alone}]
""")
    rgw.set_faults({"rt-retry-alone": {"status": 429, "retry_after": "7"}})
    response = chat(rgw, key, "rt-retry-alone")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.headers["x-sluice-attempts"] == "1"


@pytest.mark.parametrize("jitter,low,high", [(False, 0.6, 1.2), (True, 0.3, 0.9)])
def test_retry_backs_off_exponentially_with_jitter(rgw, key, jitter, low, high):
    name = f"rt-backoff-{str(jitter).lower()}"
    rgw.apply(f"""
name: {name}
type: gateway-load-balancing-config
circuit_breaker: {{enabled: false}}
rules:
  - target: {{provider: openai, model: {name}}}
    retry: {{attempts: 3, delay_ms: 200, max_delay_ms: 1000, jitter: {str(jitter).lower()}}}
""")
    rgw.set_faults({name: {"status": 503}})
    started = time.monotonic()
    response = chat(rgw, key, name)
    elapsed = time.monotonic() - started
    assert response.status_code == 502 and response.headers["x-sluice-attempts"] == "3"
    assert low <= elapsed < high  # 200 ms then 400 ms; jitter keeps 50-100% of each


# --- streams ------------------------------------------------------------------------------
STREAMS = """
name: rt-stream
type: gateway-load-balancing-config
circuit_breaker: {enabled: false}
rules:
  - {id: main, provider: openai, model: rt-stream-main, ttft_timeout_ms: 300}
fallbacks: [{provider: anthropic, model: rt-stream-fb}]
"""


def stream_text_openai(rgw, key, model) -> tuple[str, str]:
    client = openai.OpenAI(base_url=rgw.url + "/v1", api_key=key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model=model, messages=HI_MSG,
                                                           stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse()
                   if chunk.choices)
    return text, raw.headers["x-sluice-request-id"]


HI_MSG = [{"role": "user", "content": "hi"}]


def test_ttft_timeout_falls_back_on_streams(rgw, key):
    rgw.apply(STREAMS)
    rgw.set_faults({"rt-stream-main": {"ttft_ms": 3000}})
    started = time.monotonic()
    text, request_id = stream_text_openai(rgw, key, "rt-stream")
    assert time.monotonic() - started < 2.0
    assert "rt-stream-fb" in text  # the fallback answered, translated to the OpenAI format
    row = rgw.request_row(request_id)
    assert row["stream"] and row["status_code"] == 200 and row["fallback_used"]
    assert attempts_of(row) == [("rt-stream-main", None, "UpstreamTimeout", "primary"),
                                ("rt-stream-fb", 200, None, "fallback")]
    assert row["ttft_ms"] >= 300 and row["latency_ms"] >= row["ttft_ms"]


def test_ttft_and_latency_are_recorded_for_streams(rgw, key):
    rgw.apply(STREAMS)
    rgw.set_faults({"rt-stream-main": {"ttft_ms": 150}})
    client = anthropic.Anthropic(base_url=rgw.url, api_key=key, max_retries=0)
    with client.messages.stream(model="rt-stream", max_tokens=64, messages=HI_MSG) as stream:
        text = "".join(stream.text_stream)
        request_id = stream.response.headers["x-sluice-request-id"]
    assert "rt-stream-main" in text
    row = rgw.request_row(request_id)
    assert row["attempt_count"] == 1 and not row["fallback_used"]
    assert 150 <= row["ttft_ms"] <= row["latency_ms"]
    assert row["attempts"][0]["latency_ms"] >= 150


def test_a_stream_failing_before_its_first_byte_falls_back(rgw, key):
    rgw.apply(STREAMS)
    for fault in ({"status": 503}, {"drop_after_chunks": 0}):
        rgw.set_faults({"rt-stream-main": fault})
        text, request_id = stream_text_openai(rgw, key, "rt-stream")
        assert "rt-stream-fb" in text, fault
        row = rgw.request_row(request_id)
        assert row["status_code"] == 200 and row["fallback_used"], fault


def test_a_stream_cannot_fall_back_after_its_first_byte(rgw, key):
    rgw.apply(STREAMS)
    rgw.set_faults({"rt-stream-main": {"drop_after_chunks": 3}})
    before = emulator_counts(rgw)
    with httpx.stream("POST", f"{rgw.url}/v1/chat/completions", timeout=30,
                      json={"model": "rt-stream", "messages": HI_MSG, "stream": True},
                      headers={"authorization": f"Bearer {key}"}) as response:
        assert response.status_code == 200  # the status line went out with the first byte
        body = response.read().decode()
        request_id = response.headers["x-sluice-request-id"]
    assert '"error"' in body and "rt-stream-main" in body
    assert not (emulator_counts(rgw) - before)["rt-stream-fb"]
    row = rgw.request_row(request_id)
    assert row["status_code"] == 502 and not row["fallback_used"]


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
            for response in run(burst(rgw, key, "rt-sticky", 4, concurrency=1,
                                      headers={"X-Sluice-Session-ID": sid})):
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
    assert any(e["rule_id"] == "premium-two-per-minute" and e["action"] == "fallback"
               for e in row["policy_events"])
    assert attempts_of(row)[0][:2] == ("rt-cheap-main", 503)


def test_budget_fallback_to_cheaper_uses_the_routing_configs_fallback(rgw, key):
    rgw.apply(POLICY_ROUTES + "---" + BUDGET)
    response = chat(rgw, key, "rt-premium", **{"X-Sluice-Project": "rt-budget-project"})
    assert response.status_code == 200, response.text
    assert response.headers["x-sluice-resolved-model"] == "vertex/rt-premium-cheap"
    row = row_of(rgw, response)
    assert any(e["rule_id"] == "rt-tiny-budget" for e in row["policy_events"])
