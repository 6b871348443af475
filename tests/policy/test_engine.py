"""PolicyEngine admission, settlement and breach actions, against both counter stores."""

from __future__ import annotations

import asyncio
import time

import pytest

from sluicegate.errors import LimitExceeded, StoreUnavailable
from sluicegate.model.identity import Envelope
from sluicegate.model.usage import Usage
from sluicegate.policy.admission import PolicyBlocked
from sluicegate.policy.counters.redis_store import RedisCounterStore
from sluicegate.policy.engine import PolicyEngine
from tests.policy.helpers import fixture_text, leased, policy, principal, request


def rules(*rule_yaml: str) -> str:
    body = "\n".join(rule_yaml)
    return f"name: test-limits\ntype: gateway-rate-limit-config\nrules:\n{body}\n"


def engine_with(store, *docs: str, **kw) -> PolicyEngine:
    engine = PolicyEngine(store, **kw)
    engine.set_policy(policy(*docs))
    return engine


PER_KEY_50 = """
  - id: per-key-50
    limit: {requests: 50, window: 1h, scope: key}
"""


async def test_no_matching_rule_admits_without_touching_the_store(store):
    engine = engine_with(
        store, rules(PER_KEY_50.replace("limit:", "when: {models: [x]}\n    limit:"))
    )
    admission = await engine.admit(request())
    assert admission.admitted and admission.reservation_id is None and admission.headers == {}


async def test_request_limit_is_exact_under_concurrency(store):
    engine = engine_with(store, rules(PER_KEY_50))
    outcomes = await asyncio.gather(
        *(engine.admit(request()) for _ in range(200)), return_exceptions=True
    )
    admitted = [o for o in outcomes if not isinstance(o, Exception)]
    blocked = [o for o in outcomes if isinstance(o, PolicyBlocked)]
    assert len(admitted) == 50 and len(blocked) == 150
    error = blocked[0]
    assert isinstance(error, LimitExceeded) and error.status == 429
    assert error.rule_id == "per-key-50" and error.code == "rate_limit_exceeded"
    assert error.headers["X-Sluice-Rule-ID"] == "per-key-50"
    assert 0 < int(error.headers["Retry-After"]) <= 3600
    assert "per-key-50" in error.message
    assert [(e.kind, e.rule_id, e.action) for e in error.events] == [
        ("rate_limit", "per-key-50", "hard_block")
    ]
    # another key has its own counter
    assert (await engine.admit(request(who=principal("key-2")))).admitted


@pytest.mark.parametrize("make_store", ["redis"], indirect=True)
async def test_two_replicas_share_limits_through_redis(make_store):
    one, two = (engine_with(make_store(), rules(PER_KEY_50)) for _ in range(2))
    outcomes = await asyncio.gather(
        *(e.admit(request()) for _ in range(100) for e in (one, two)), return_exceptions=True
    )
    assert sum(not isinstance(o, Exception) for o in outcomes) == 50


async def test_headers_report_the_tightest_rules(store):
    engine = engine_with(store, rules(PER_KEY_50, """
  - id: per-user-5
    limit: {requests: 5, window: 1m, scope: user}
  - id: tokens-10k
    limit: {tokens: 10000, window: 1h}
"""))  # fmt: skip
    admission = await engine.admit(request(env=Envelope(user_id="u1"), tokens=300, max_out=200))
    assert admission.headers["X-RateLimit-Limit-Requests"] == "5"
    assert admission.headers["X-RateLimit-Remaining-Requests"] == "4"
    assert admission.headers["X-RateLimit-Reset-Requests"].endswith("s")
    assert admission.headers["X-RateLimit-Limit-Tokens"] == "10000"
    assert admission.headers["X-RateLimit-Remaining-Tokens"] == "9500"


async def test_token_reservation_settles_to_the_actual(store):
    engine = engine_with(store, rules("""
  - id: tokens-5000
    limit: {tokens: 5000, window: 1h, scope: user}
"""))  # fmt: skip
    alice = Envelope(user_id="alice")
    first = await engine.admit(request(env=alice, tokens=400, max_out=None))  # 400 + 4096 default
    assert first.headers["X-RateLimit-Remaining-Tokens"] == "504"
    with pytest.raises(PolicyBlocked):
        await engine.admit(request(env=alice, tokens=100, max_out=500))
    await engine.settle(first, Usage(input_tokens=400, output_tokens=100), 0.001)
    second = await engine.admit(request(env=alice, tokens=100, max_out=500))
    assert second.headers["X-RateLimit-Remaining-Tokens"] == "3900"  # 5000 - 500 used - 600
    await engine.settle(second, None, None)  # the call failed: its reservation is released
    third = await engine.admit(request(env=alice, tokens=4000, max_out=400))
    assert third.headers["X-RateLimit-Remaining-Tokens"] == "100"
    assert (await engine.admit(request(env=Envelope(user_id="bob"), tokens=4000))).admitted


async def test_input_and_output_token_rules(store):
    engine = engine_with(store, rules("""
  - id: input-only
    limit: {tokens: 1000, token_type: input, window: 1h}
  - id: output-only
    limit: {tokens: 1000, token_type: output, window: 1h}
"""))  # fmt: skip
    a = await engine.admit(request(tokens=600, max_out=300))
    await engine.settle(a, Usage(input_tokens=600, output_tokens=None), None)  # output unreported
    levels = await store.usage([h.key for h in a.holds])
    assert [lv.used for lv in levels.values()] == [600, 300]  # the reserved output is kept
    with pytest.raises(PolicyBlocked) as caught:
        await engine.admit(request(tokens=500, max_out=10))
    assert caught.value.rule_id == "input-only"


async def test_settle_never_raises_and_settles_once(store):
    engine = engine_with(store, rules("""
  - id: tokens-1000
    limit: {tokens: 1000, window: 1h}
"""))  # fmt: skip
    admission = await engine.admit(request(tokens=100, max_out=100))
    await engine.settle(admission, Usage(input_tokens=100, output_tokens=100), None)
    await engine.settle(admission, Usage(input_tokens=100, output_tokens=100), None)
    (level,) = (await store.usage([admission.holds[0].key])).values()
    assert (level.used, level.reserved) == (200, 0)
    broken = PolicyEngine(RedisCounterStore("redis://127.0.0.1:1/0", "x:", timeout_s=0.2))
    admission.settled = False
    await broken.settle(admission, None, None)  # logged, not raised
    assert not broken.healthy


async def test_queue_waits_for_capacity_freed_by_settlement(store):
    engine = engine_with(store, rules("""
  - id: queued-tokens
    limit: {tokens: 1000, window: 1h}
    on_breach: queue_then_429
    queue_timeout_ms: 3000
"""))  # fmt: skip
    first = await engine.admit(request(tokens=500, max_out=400))

    async def finish_first():
        await asyncio.sleep(0.3)
        await engine.settle(first, Usage(input_tokens=50, output_tokens=50), None)

    started = time.monotonic()
    second, _ = await asyncio.gather(engine.admit(request(tokens=500, max_out=400)), finish_first())
    waited = time.monotonic() - started
    assert second.admitted and 0.25 < waited < 2
    (event,) = second.events
    assert (event.rule_id, event.action) == ("queued-tokens", "queued")
    assert event.detail and event.detail.startswith("waited ")


async def test_queue_waits_for_the_window_to_reset(store):
    engine = engine_with(store, rules("""
  - id: one-per-second
    limit: {requests: 1, window: 1s}
    on_breach: queue_then_429
    queue_timeout_ms: 2500
"""))  # fmt: skip
    await engine.admit(request())
    started = time.time()
    second = await engine.admit(request())
    assert second.admitted and int(time.time()) > int(started)  # admitted in the next window
    assert second.events[0].action == "queued"


async def test_queue_gives_429_after_the_timeout(store):
    engine = engine_with(store, rules("""
  - id: slow-queue
    limit: {requests: 1, window: 1h}
    on_breach: queue_then_429
    queue_timeout_ms: 300
"""))  # fmt: skip
    await engine.admit(request())
    started = time.monotonic()
    with pytest.raises(PolicyBlocked) as caught:
        await engine.admit(request())
    assert 0.3 <= time.monotonic() - started < 1.5
    assert [e.action for e in caught.value.events] == ["queued", "hard_block"]


async def test_fallback_is_returned_without_reserving(store):
    engine = engine_with(store, rules("""
  - id: soft-cap
    when: {metadata: {X-TFY-Workflow-Tag: classify-intent}}
    limit: {requests: 2, window: 1h}
    on_breach: fallback_to_haiku
"""))  # fmt: skip
    env = Envelope(workflow_tag="classify-intent")
    for _ in range(2):
        assert (await engine.admit(request("claude-sonnet-4-6", env=env))).admitted
    decision = await engine.admit(request("claude-sonnet-4-6", env=env))
    assert not decision.admitted and decision.reservation_id is None
    assert (decision.fallback_model, decision.fallback_rule_id, decision.fallback_kind) == (
        "claude-haiku-4-5", "soft-cap", "model")  # fmt: skip
    assert [(e.rule_id, e.action) for e in decision.events] == [("soft-cap", "fallback")]
    retry = await engine.admit(request("claude-haiku-4-5", env=env, exempt=frozenset({"soft-cap"})))
    assert retry.admitted and retry.reservation_id
    (level,) = (await store.usage([retry.holds[0].key])).values()
    # the fallback request is counted, not refused (besides what a capacity lease holds)
    assert level.reserved - leased(store, retry.holds[0].key) == 3
    with pytest.raises(PolicyBlocked):  # already on the fallback model and not exempt: block
        await engine.admit(request("claude-haiku-4-5", env=env))


async def test_seed_rules_end_to_end(store):
    engine = engine_with(store, fixture_text("rate-limit-config.yaml"))
    env = Envelope(environment="production", session_id="sess-1", user_id="u1")
    admission = await engine.admit(request(env=env, tokens=150_000, max_out=40_000))
    assert admission.admitted
    with pytest.raises(PolicyBlocked) as caught:  # the session guard: 190k + 20k > 200k
        await engine.admit(request(env=env, tokens=10_000, max_out=10_000))
    assert caught.value.rule_id == "per-session-loop-guard"
    other_session = Envelope(environment="production", session_id="sess-2", user_id="u1")
    assert (await engine.admit(request(env=other_session, tokens=10_000, max_out=10_000))).admitted


async def test_audit_rule_admits_and_records(store):
    engine = engine_with(store, rules("""
  - id: watch-only
    limit: {requests: 1, window: 1h}
    on_breach: audit
"""))  # fmt: skip
    assert (await engine.admit(request())).events == []
    second = await engine.admit(request())
    assert second.admitted and [(e.rule_id, e.action) for e in second.events] == [
        ("watch-only", "audit")
    ]


async def test_hot_reload_swaps_the_policy(store):
    engine = engine_with(store, rules(PER_KEY_50.replace("50, window", "1, window")))
    await engine.admit(request())
    with pytest.raises(PolicyBlocked):
        await engine.admit(request())
    engine.set_policy(policy(rules(PER_KEY_50)))  # same rule id: the count carries over
    assert (await engine.admit(request())).headers["X-RateLimit-Remaining-Requests"] == "48"


async def test_fail_open_when_the_store_is_unreachable():
    store = RedisCounterStore("redis://127.0.0.1:1/0", "x:", timeout_s=0.2)
    engine = engine_with(store, rules(PER_KEY_50), failure_mode="fail_open")
    admission = await engine.admit(request())
    assert admission.admitted and admission.unreserved_at is not None  # nothing reserved
    (event,) = admission.events
    assert (event.kind, event.rule_id, event.action) == ("policy", "counter-store", "fail_open")
    assert not engine.healthy and "unavailable" in (engine.last_error or "")
    await engine.settle(admission, Usage(input_tokens=1, output_tokens=1), 0.1)
    await store.close()


async def test_fail_closed_when_the_store_is_unreachable():
    store = RedisCounterStore("redis://127.0.0.1:1/0", "x:", timeout_s=0.2)
    engine = engine_with(store, rules(PER_KEY_50), failure_mode="fail_closed", store_retry_s=0)
    with pytest.raises(StoreUnavailable) as caught:
        await engine.admit(request())
    assert caught.value.status == 503
    assert not engine.healthy
    await store.close()


async def test_health_recovers_after_a_successful_call(store):
    engine = engine_with(store, rules(PER_KEY_50), store_retry_s=0)
    engine._store.note_failure(RuntimeError("blip"))
    assert not engine.healthy
    await engine.admit(request())
    assert engine.healthy and engine.last_error is None


async def test_quota_rules_count_per_subject(store):
    quota = (
        fixture_text("ratelimiting-config.yaml")
        .replace("5000", "2")
        .replace(
            '["team:frontend"]',
            '["team:frontend", "user:bob@email.com", "virtualaccount:va-james"]',
        )
    )
    engine = engine_with(store, quota)
    frontend = Envelope(team="frontend")
    for _ in range(2):
        await engine.admit(request(env=frontend))
    with pytest.raises(PolicyBlocked) as caught:
        await engine.admit(request(env=frontend))
    assert caught.value.rule_id == "rule-id" and caught.value.code == "rate_limit_exceeded"
    assert (await engine.admit(request(env=Envelope(user_id="bob@email.com")))).admitted
    james = principal("key-9", name="va-james")
    assert (await engine.admit(request(who=james))).admitted
    assert (await engine.admit(request(env=Envelope(team="backend")))).reservation_id is None


async def test_leaked_reservations_expire(store):
    engine = engine_with(store, rules("""
  - id: tokens-1000
    limit: {tokens: 1000, window: 1h}
"""), reservation_ttl_s=0.3)  # fmt: skip
    await engine.admit(request(tokens=500, max_out=400))  # never settled: a crashed replica
    with pytest.raises(PolicyBlocked):
        await engine.admit(request(tokens=500, max_out=400))
    await asyncio.sleep(0.4)
    assert (await engine.admit(request(tokens=500, max_out=400))).admitted
