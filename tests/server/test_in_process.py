"""The gateway's whole request path in process: the real app object (hot path, admin
gate, lifespan) through httpx's ASGI transport, the emulator as the injected upstream.
The subprocess end-to-end tests (tests/e2e) cover the same paths through a real server."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from sluicegate.policy.counters.redis_store import connect
from sluicegate.server.app import Gateway
from tests.server.conftest import settings_for
from tests.server.inprocess import InProcessGateway, emulator_upstream, serving
from tests.support import REDIS_URL

HELLO = [{"role": "user", "content": "Hello there"}]


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


async def test_chat_in_the_openai_wire_is_answered_and_recorded(gw: InProcessGateway) -> None:
    key = await gw.create_key(user_id="ana", team="search", project="inproc")
    response = await gw.http.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": HELLO},
        headers=bearer(key),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert "Hello there" in body["choices"][0]["message"]["content"]
    assert body["usage"]["prompt_tokens"] > 0
    request_id = response.headers["x-sluice-request-id"]

    rows = (await gw.http.get("/api/requests", headers=gw.admin)).json()["data"]
    (row,) = [r for r in rows if r["request_id"] == request_id]
    assert (row["status_code"], row["user_id"], row["team"], row["project"]) == (
        200,
        "ana",
        "search",
        "inproc",
    )
    assert row["input_tokens"] == body["usage"]["prompt_tokens"]


async def test_streamed_chat_in_the_anthropic_wire(gw: InProcessGateway) -> None:
    key = await gw.create_key(user_id="bo")
    request = {"model": "claude-haiku-4-5", "max_tokens": 100, "messages": HELLO}
    plain = await gw.http.post("/v1/messages", json=request, headers={"x-api-key": key})
    assert plain.status_code == 200, plain.text
    assert plain.json()["type"] == "message" and plain.json()["stop_reason"] == "end_turn"

    streamed = await gw.http.post(
        "/v1/messages", json={**request, "stream": True}, headers={"x-api-key": key}
    )
    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = [line[7:] for line in streamed.text.splitlines() if line.startswith("event: ")]
    assert events[0] == "message_start" and events[-1] == "message_stop"
    text = "".join(
        orjson.loads(line[6:])["delta"].get("text", "")
        for line in streamed.text.splitlines()
        if line.startswith("data: ") and '"content_block_delta"' in line
    )
    assert text == plain.json()["content"][0]["text"]


async def test_auth_failures_in_each_wire_and_on_the_admin_api(gw: InProcessGateway) -> None:
    chat = {"model": "gpt-4o-mini", "messages": HELLO}
    missing = await gw.http.post("/v1/chat/completions", json=chat)
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    wrong = await gw.http.post(
        "/v1/messages",
        json={**chat, "max_tokens": 10},
        headers={"x-api-key": "sg-not-a-key"},
    )
    assert wrong.status_code == 401 and wrong.json()["type"] == "error"

    key = await gw.create_key(user_id="cy")
    no_key = await gw.http.get("/api/keys")
    not_admin = await gw.http.get("/api/keys", headers=bearer(key))
    unknown_unauthenticated = await gw.http.get("/api/no-such-thing")
    assert (no_key.status_code, not_admin.status_code) == (401, 403)
    assert unknown_unauthenticated.status_code == 401  # routes are not revealed to strangers
    assert not_admin.json()["error"]["code"] == "admin_required"
    for response in (no_key, not_admin, unknown_unauthenticated):
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}


async def test_admin_api_errors_have_one_shape(gw: InProcessGateway) -> None:
    unknown = await gw.http.get("/api/no-such-thing", headers=gw.admin)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["type"] == "not_found_error"
    wrong_method = await gw.http.put("/api/keys", headers=gw.admin)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert wrong_method.headers["allow"]  # Starlette names the first route's methods
    bad = await gw.http.get("/api/requests?limit=many", headers=gw.admin)
    assert bad.status_code == 400
    assert bad.json() == {
        "error": {
            "message": "limit must be an integer",
            "type": "invalid_request_error",
            "param": "limit",
            "code": None,
        }
    }
    refused = await gw.http.post(
        "/api/config",
        content="name: x\ntype: no-such-type\n",
        headers={**gw.admin, "content-type": "application/yaml"},
    )
    assert refused.status_code == 400 and refused.json()["error"]["problems"]
    assert set(refused.json()["error"]) == {"message", "type", "param", "code", "problems"}
    health = await gw.http.get("/healthz")  # outside /api: no key needed
    assert health.json() == {"status": "ok"}


RATE_LIMIT = """name: limits
type: gateway-rate-limit-config
rules:
  - {id: one-a-minute, limit: {requests: 1, window: 1m, scope: key}}
"""


async def test_a_rate_limit_refuses_with_429_naming_its_rule(gw: InProcessGateway) -> None:
    await gw.apply(RATE_LIMIT)
    key = await gw.create_key(user_id="di")
    chat = {"model": "gpt-4o-mini", "messages": HELLO}
    first = await gw.http.post("/v1/chat/completions", json=chat, headers=bearer(key))
    second = await gw.http.post("/v1/chat/completions", json=chat, headers=bearer(key))
    assert (first.status_code, second.status_code) == (200, 429)
    assert second.headers["x-sluice-rule-id"] == "one-a-minute"
    assert int(second.headers["retry-after"]) >= 1
    assert second.json()["error"]["rule_id"] == "one-a-minute"
    rows = (await gw.http.get("/api/requests?status=429", headers=gw.admin)).json()["data"]
    assert [r["request_id"] for r in rows] == [second.headers["x-sluice-request-id"]]


@pytest.mark.redis
async def test_an_injected_redis_client_is_shared_and_left_open(tmp_path: Path) -> None:
    """Counters, breakers and sticky pins all use the client given; the gateway does not
    close a client it did not make."""
    prefix = f"inproc-{uuid.uuid4().hex[:8]}:"
    redis: aioredis.Redis = connect(REDIS_URL)
    settings = settings_for(tmp_path, redis_prefix=prefix)
    gateway = Gateway(settings, upstream=emulator_upstream(), redis=redis)
    try:
        async with serving(gateway) as gw:
            await gw.apply(RATE_LIMIT)
            key = await gw.create_key(user_id="ed")
            chat = {"model": "gpt-4o-mini", "messages": HELLO}
            statuses = [
                (
                    await gw.http.post("/v1/chat/completions", json=chat, headers=bearer(key))
                ).status_code
                for _ in range(2)
            ]
            assert statuses == [200, 429]
            ready = (await gw.http.get("/readyz")).json()
            assert ready["checks"]["counters"]["backend"] == "redis"
        assert gateway.redis is redis
        assert await redis.ping()  # still open after the gateway stopped
        assert [k async for k in redis.scan_iter(match=prefix + "*")]
    finally:
        keys = [k async for k in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


@pytest.mark.redis
async def test_a_gateway_made_client_is_closed_once_at_stop(tmp_path: Path) -> None:
    prefix = f"inproc-{uuid.uuid4().hex[:8]}:"
    gateway = Gateway(settings_for(tmp_path, redis_url=REDIS_URL, redis_prefix=prefix))
    assert gateway.redis is not None
    closed: list[bool] = []
    real_close = gateway.redis.aclose

    async def counting_close(*args: object, **kwargs: object) -> None:
        closed.append(True)
        await real_close()

    gateway.redis.aclose = counting_close  # type: ignore[method-assign]
    async with serving(gateway):
        pass
    assert closed == [True]
    cleanup = connect(REDIS_URL)
    keys = [k async for k in cleanup.scan_iter(match=prefix + "*")]
    if keys:
        await cleanup.delete(*keys)
    await cleanup.aclose()


PER_SESSION = """
name: per-session
type: gateway-rate-limit-config
rules:
  - id: per-session-5
    limit: {requests: 5, window: 1h, scope: session}
"""


async def test_counters_per_session_are_capped_and_readyz_says_so(tmp_path: Path) -> None:
    """A client choosing a new session id per request cannot grow the gateway without
    bound: past --max-counter-keys the least recently used counter goes, and /readyz
    reports how many went."""
    settings = settings_for(tmp_path, max_counter_keys=100)
    async with serving(Gateway(settings, upstream=emulator_upstream())) as gw:
        await gw.apply(PER_SESSION)
        key = await gw.create_key(user_id="di")
        chat = {"model": "gpt-4o-mini", "messages": HELLO}
        for i in range(130):
            headers = {**bearer(key), "x-sluice-session-id": f"s-{i}"}
            answer = await gw.http.post("/v1/chat/completions", json=chat, headers=headers)
            assert answer.status_code == 200
        counters = (await gw.http.get("/readyz")).json()["checks"]["counters"]
        assert counters["keys"] == 100 and counters["evicted"] == 30
        assert counters["max_keys_per_family"] == 100
