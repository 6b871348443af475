"""Keys, the identity envelope and the error contract, through a real gateway."""

from __future__ import annotations

import json
import subprocess
import time

import anthropic
import httpx
import openai
import pytest

from tests.e2e.gateway import run_cli

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {
    "model": "claude-haiku-4-5",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "hi"}],
}


def post(gateway, path, body, key=None, **headers):
    if key:
        headers["authorization"] = f"Bearer {key}"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        gateway.url + path,
        content=content,
        timeout=30,
        headers={"content-type": "application/json", **headers},
    )


def assert_openai_error(response, status, *, param=None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["type"]
    if param:
        assert param in (error.get("param") or "") or param in error["message"]
    assert response.headers["x-sluice-request-id"]
    return error


def assert_anthropic_error(response, status, error_type):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == error_type
    assert response.headers["x-sluice-request-id"]


def ledger_status(gateway, response) -> int:
    return gateway.request_row(response.headers["x-sluice-request-id"])["status_code"]


# --- keys --------------------------------------------------------------------------
def test_key_lifecycle_rotate_with_grace_then_revoke(gateway):
    created = gateway.create_key(user_id="bob", team="ads", name="bob-ci")
    assert created["key"].startswith("sg-") and created["id"]
    listed = gateway.admin.get("/api/keys").json()["data"]
    row = next(k for k in listed if k["id"] == created["id"])
    assert "key" not in row and "key_hash" not in row and row["state"] == "active"

    assert post(gateway, "/v1/chat/completions", CHAT, created["key"]).status_code == 200
    rotated = gateway.admin.post(
        f"/api/keys/{created['id']}/rotate", json={"grace_seconds": 2}
    ).json()
    assert rotated["key"] != created["key"]
    # Inside the grace period both keys work...
    assert post(gateway, "/v1/chat/completions", CHAT, created["key"]).status_code == 200
    assert post(gateway, "/v1/chat/completions", CHAT, rotated["key"]).status_code == 200
    time.sleep(2.2)
    # ...after it only the new one.
    expired = post(gateway, "/v1/chat/completions", CHAT, created["key"])
    assert_openai_error(expired, 401)
    assert post(gateway, "/v1/chat/completions", CHAT, rotated["key"]).status_code == 200

    gateway.admin.delete(f"/api/keys/{rotated['id']}").raise_for_status()
    revoked = post(gateway, "/v1/chat/completions", CHAT, rotated["key"])
    assert_openai_error(revoked, 401)
    assert "revoked" in revoked.json()["error"]["message"]
    assert ledger_status(gateway, revoked) == 401


def test_expired_key_is_refused(gateway):
    created = gateway.create_key(user_id="eve", expires_at=time.time() + 1)
    assert post(gateway, "/v1/chat/completions", CHAT, created["key"]).status_code == 200
    time.sleep(1.2)
    assert_openai_error(post(gateway, "/v1/chat/completions", CHAT, created["key"]), 401)


def test_key_model_allow_list(gateway):
    created = gateway.create_key(user_id="carol", models=["gpt-4o-mini"])
    assert post(gateway, "/v1/chat/completions", CHAT, created["key"]).status_code == 200
    other = post(gateway, "/v1/chat/completions", {**CHAT, "model": "gpt-4o"}, created["key"])
    assert_openai_error(other, 403)
    names = {
        m.id
        for m in openai.OpenAI(base_url=gateway.url + "/v1", api_key=created["key"]).models.list()
    }
    assert names == {"gpt-4o-mini"}


def test_admin_api_refuses_non_admin_keys(gateway, key):
    response = httpx.get(
        gateway.url + "/api/keys", headers={"authorization": f"Bearer {key['key']}"}
    )
    assert response.status_code == 403
    assert httpx.get(gateway.url + "/api/keys").status_code == 401


def test_cli_keys_and_requests_tail(gateway):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(gateway, *args, columns=200)

    created = run(
        "keys",
        "create",
        "--user",
        "dana",
        "--team",
        "search",
        "--project",
        "platform-search",
        "--name",
        "dana-laptop",
    )
    assert created.returncode == 0, created.stderr
    key_id = created.stdout.split("id:")[1].split()[0]
    raw_key = created.stdout.split("key:")[1].split()[0]
    assert post(gateway, "/v1/chat/completions", CHAT, raw_key).status_code == 200
    listed = run("keys", "list")
    assert key_id in listed.stdout and "dana-laptop" in listed.stdout
    tail = run("requests", "tail", "-n", "5")
    assert tail.returncode == 0 and "platform-search" in tail.stdout
    assert run("keys", "rotate", key_id, "--grace", "1h").returncode == 0
    assert run("keys", "revoke", key_id).returncode == 0
    missing = run("keys", "revoke", "key_does_not_exist")
    assert missing.returncode == 1 and "no key" in missing.stderr


# --- the envelope ------------------------------------------------------------------
def test_envelope_headers_attribute_the_request(gateway, key):
    response = post(
        gateway,
        "/v1/chat/completions",
        CHAT,
        key["key"],
        **{
            "X-Sluice-Project": "checkout",
            "X-Sluice-Session-ID": "sess_a3f9",
            "X-Sluice-Workflow-Tag": "classify-intent",
            "X-Sluice-Environment": "production",
            "X-Sluice-Cost-Center": "eng-002",
            "X-Sluice-Metadata": '{"customer": "acme"}',
        },
    )
    assert response.status_code == 200
    row = gateway.request_row(response.headers["x-sluice-request-id"])
    assert (row["project"], row["session_id"], row["workflow_tag"]) == (
        "checkout",
        "sess_a3f9",
        "classify-intent",
    )
    assert row["environment"] == "production" and row["cost_center"] == "eng-002"
    assert row["metadata"] == {"customer": "acme"}
    assert (row["user_id"], row["team"], row["key_id"]) == ("alice", "search", key["id"])


def test_compat_prefix_headers_attribute_the_same(gateway, key):
    response = post(
        gateway,
        "/v1/chat/completions",
        CHAT,
        key["key"],
        **{"X-TFY-Project": "legacy", "X-TFY-Workflow-Tag": "summarise"},
    )
    row = gateway.request_row(response.headers["x-sluice-request-id"])
    assert (row["project"], row["workflow_tag"]) == ("legacy", "summarise")


def test_no_project_is_untagged(gateway):
    created = gateway.create_key(user_id="frank")
    response = post(gateway, "/v1/chat/completions", CHAT, created["key"])
    assert gateway.request_row(response.headers["x-sluice-request-id"])["project"] == "UNTAGGED"


@pytest.mark.parametrize(
    "headers,param",
    [
        ({"X-Sluice-Metadata": "not json"}, "X-Sluice-Metadata"),
        ({"X-Sluice-Metadata": '{"n": 3}'}, "X-Sluice-Metadata"),
        ({"X-Sluice-Project": "bad project!"}, "x-sluice-project"),
        ({"X-Sluice-Session-ID": "x" * 300}, "x-sluice-session-id"),
    ],
)
def test_bad_envelope_values_are_400(gateway, key, headers, param):
    response = post(gateway, "/v1/chat/completions", CHAT, key["key"], **headers)
    error = assert_openai_error(response, 400)
    assert param.lower() in error["message"].lower()
    assert ledger_status(gateway, response) == 400


def test_header_cannot_override_pinned_team(gateway, key):
    response = post(gateway, "/v1/chat/completions", CHAT, key["key"], **{"X-Sluice-Team": "ads"})
    assert_openai_error(response, 403)


# --- errors ------------------------------------------------------------------------
def test_missing_and_unknown_keys_are_401_in_each_format(gateway):
    assert_openai_error(post(gateway, "/v1/chat/completions", CHAT), 401)
    assert_openai_error(post(gateway, "/v1/chat/completions", CHAT, "sg-nope"), 401)
    assert_anthropic_error(
        post(gateway, "/v1/messages", MESSAGES, **{"x-api-key": "sg-nope"}),
        401,
        "authentication_error",
    )
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=gateway.url, api_key="sg-nope", max_retries=0).messages.create(
            **MESSAGES
        )


def test_malformed_and_invalid_bodies_are_400_naming_the_field(gateway, key):
    bad_json = post(gateway, "/v1/chat/completions", b"{not json", key["key"])
    assert_openai_error(bad_json, 400)
    assert ledger_status(gateway, bad_json) == 400
    no_messages = post(gateway, "/v1/chat/completions", {"model": "gpt-4o-mini"}, key["key"])
    assert_openai_error(no_messages, 400, param="messages")
    bad_role = post(
        gateway,
        "/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": [{"role": 7, "content": "x"}]},
        key["key"],
    )
    assert_openai_error(bad_role, 400, param="messages[0].role")
    anthropic_bad = post(
        gateway,
        "/v1/messages",
        {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}]},
        key["key"],
    )
    assert_anthropic_error(anthropic_bad, 400, "invalid_request_error")
    assert "max_tokens" in anthropic_bad.json()["error"]["message"]


def test_unknown_model_is_404(gateway, key):
    response = post(gateway, "/v1/chat/completions", {**CHAT, "model": "gpt-99"}, key["key"])
    assert_openai_error(response, 404)
    assert ledger_status(gateway, response) == 404
    with pytest.raises(anthropic.NotFoundError):
        anthropic.Anthropic(
            base_url=gateway.url, api_key=key["key"], max_retries=0
        ).messages.create(**{**MESSAGES, "model": "claude-99"})


def test_oversized_body_is_413(gateway, key):
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * (11 * 1024 * 1024)}]}
    response = post(gateway, "/v1/chat/completions", big, key["key"])
    assert_openai_error(response, 413)
    assert ledger_status(gateway, response) == 413


def test_upstream_failure_is_502_and_timeout_504(gateway, key):
    try:
        gateway.set_faults({"gpt-4o": {"status": 500, "failure_rate": 1.0}})
        failed = post(gateway, "/v1/chat/completions", {**CHAT, "model": "gpt-4o"}, key["key"])
        assert_openai_error(failed, 502)
        row = gateway.request_row(failed.headers["x-sluice-request-id"])
        assert row["status_code"] == 502 and row["attempts"][0]["status_code"] == 500

        gateway.set_faults({"claude-sonnet-4-6": {"status": 529, "failure_rate": 1.0}})
        overloaded = post(
            gateway, "/v1/messages", {**MESSAGES, "model": "claude-sonnet-4-6"}, key["key"]
        )
        assert_anthropic_error(overloaded, 502, "api_error")

        gateway.set_faults({"gpt-4o": {"status": 429, "failure_rate": 1.0, "retry_after": 7}})
        throttled = post(gateway, "/v1/chat/completions", {**CHAT, "model": "gpt-4o"}, key["key"])
        assert_openai_error(throttled, 429)
        assert throttled.headers["retry-after"] == "7"
    finally:
        gateway.clear_faults()


def test_upstream_timeout_is_504(gateway, key):
    """Providers time out per their configured timeout; the emulator is made slower than
    a 1 s timeout set by a providers document."""
    gateway.apply(TIMEOUT_PROVIDERS.format(url=gateway.url))
    try:
        gateway.set_faults({"slow-model": {"delay_ms": 3000}})
        response = post(
            gateway, "/v1/chat/completions", {**CHAT, "model": "slow-model"}, key["key"]
        )
        assert_openai_error(response, 504)
        assert ledger_status(gateway, response) == 504
    finally:
        gateway.clear_faults()
        gateway.admin.delete("/api/config/gateway-providers/timeouts")


TIMEOUT_PROVIDERS = """
name: timeouts
type: gateway-providers
providers:
  - name: openai
    kind: openai
    base_url: {url}/emulator/v1
    headers: {{authorization: Bearer emulator}}
  - name: anthropic
    kind: anthropic
    base_url: {url}/emulator
    headers: {{x-api-key: emulator}}
  - name: slow
    kind: openai
    base_url: {url}/emulator/v1
    headers: {{authorization: Bearer emulator}}
    timeout_ms: 1000
models:
  gpt-4o-mini: {{provider: openai}}
  slow-model: {{provider: slow}}
"""


def test_client_disconnect_mid_stream_is_recorded(gateway, key):
    gateway.set_faults({"claude-opus-4-7": {"inter_chunk_ms": 200}})
    try:
        with httpx.stream(
            "POST",
            gateway.url + "/v1/chat/completions",
            timeout=30,
            json={
                "model": "claude-opus-4-7",
                "stream": True,
                "max_tokens": 200,
                "messages": [{"role": "user", "content": "tell me a long story " * 5}],
            },
            headers={"authorization": f"Bearer {key['key']}"},
        ) as response:
            request_id = response.headers["x-sluice-request-id"]
            lines = response.iter_lines()
            next(lines)
            next(lines)
        # the client has gone; the request is still in the ledger with what was known
        row = gateway.request_row(request_id, timeout=10)
        assert row["status_code"] == 499 and row["client_disconnected"] is True
        assert row["input_tokens"] is not None
    finally:
        gateway.clear_faults()


def test_response_headers(gateway, key):
    response = post(gateway, "/v1/chat/completions", CHAT, key["key"])
    assert response.headers["x-sluice-resolved-model"] == "openai/gpt-4o-mini"
    assert float(response.headers["x-sluice-cost-usd"]) > 0
    assert response.headers["x-sluice-request-id"].startswith("req_")


def test_health_endpoints(gateway):
    assert httpx.get(gateway.url + "/healthz").json()["status"] == "ok"
    ready = httpx.get(gateway.url + "/readyz").json()
    assert ready["ready"] is True and ready["checks"]["counters"]["backend"] == "memory"
