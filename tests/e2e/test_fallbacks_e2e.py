"""Fallbacks, retries and streams end to end: a real gateway, its emulator as every
provider, faults injected over HTTP. Each test has its own virtual model and upstream
model names, so the emulator's counters and faults tell the targets apart."""

from __future__ import annotations

import threading
import time

import anthropic
import httpx
import openai
import pytest

from tests.e2e.routing_support import (  # noqa: F401 (fixtures)
    HI,
    _no_faults,
    attempts_of,
    capture,
    chat,
    emulator_counts,
    key,
    rgw,
    row_of,
)

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
    assert str(status) in row["route_reason"]  # the ledger says why it fell back


def test_fallbacks_are_tried_in_order_and_a_client_error_does_not_fall_back(rgw, key):
    rgw.apply(FALLBACKS)
    rgw.set_faults({"rt-fb-main": {"status": 500}, "rt-fb-first": {"status": 503}})
    response = chat(rgw, key, "rt-fallbacks")
    assert response.headers["x-sluice-resolved-model"] == "vertex/rt-fb-second"
    assert [a[0] for a in attempts_of(row_of(rgw, response))] == [
        "rt-fb-main",
        "rt-fb-first",
        "rt-fb-second",
    ]

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
    rgw.apply(
        FALLBACKS.replace("name: rt-fallbacks", "name: rt-fallbacks-503")
        + "fallback_status_codes: [503]\n"
    )
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
        "rt-dead",
        None,
        "UpstreamUnavailable",
        "primary",
    )

    rgw.apply(TIMEOUT)
    rgw.set_faults({"rt-slow": {"delay_ms": 3000}})
    started = time.monotonic()
    response = chat(rgw, key, "rt-timeout")
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and elapsed < 2.0
    assert response.headers["x-sluice-resolved-model"] == "vertex/rt-connect-fb"
    first = row_of(rgw, response)["attempts"][0]
    assert (first["model"], first["status_code"], first["error_class"]) == (
        "rt-slow",
        None,
        "UpstreamTimeout",
    )
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
    assert attempts_of(row) == [
        ("rt-retry-main", 429, "UpstreamHTTPError", "primary"),
        ("rt-retry-main", 429, "UpstreamHTTPError", "retry"),
        ("rt-retry-fb", 200, None, "fallback"),
    ]
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
    raw = client.chat.completions.with_raw_response.create(model=model, messages=HI, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)
    return text, raw.headers["x-sluice-request-id"]


def test_ttft_timeout_falls_back_on_streams(rgw, key):
    rgw.apply(STREAMS)
    rgw.set_faults({"rt-stream-main": {"ttft_ms": 3000}})
    started = time.monotonic()
    text, request_id = stream_text_openai(rgw, key, "rt-stream")
    assert time.monotonic() - started < 2.0
    assert "rt-stream-fb" in text  # the fallback answered, translated to the OpenAI format
    row = rgw.request_row(request_id)
    assert row["stream"] and row["status_code"] == 200 and row["fallback_used"]
    assert attempts_of(row) == [
        ("rt-stream-main", None, "UpstreamTimeout", "primary"),
        ("rt-stream-fb", 200, None, "fallback"),
    ]
    assert row["ttft_ms"] >= 300 and row["latency_ms"] >= row["ttft_ms"]
    # ...and the timeout counts as a failure of that target
    status = {
        r["target_id"]: r
        for r in rgw.admin.get("/api/targets").json()["data"]
        if r["virtual_model"] == "rt-stream"
    }
    assert status["main"]["error_rate"] > 0


def test_ttft_and_latency_are_recorded_for_streams(rgw, key):
    rgw.apply(STREAMS)
    rgw.set_faults({"rt-stream-main": {"ttft_ms": 150}})
    client = anthropic.Anthropic(base_url=rgw.url, api_key=key, max_retries=0)
    with client.messages.stream(model="rt-stream", max_tokens=64, messages=HI) as stream:
        text = "".join(stream.text_stream)
        request_id = stream.response.headers["x-sluice-request-id"]
    assert "rt-stream-main" in text
    row = rgw.request_row(request_id)
    assert row["attempt_count"] == 1 and not row["fallback_used"]
    assert 150 <= row["ttft_ms"] <= row["latency_ms"]
    assert row["attempts"][0]["latency_ms"] >= 150


def test_a_stream_failing_before_its_first_byte_falls_back(rgw, key):
    rgw.apply(STREAMS)
    # An error status, a connection cut before any event, and one cut after the role
    # event but before any content (held back by the gateway, so nothing reached the client).
    for fault in ({"status": 503}, {"drop_after_chunks": 0}, {"drop_after_chunks": 1}):
        rgw.set_faults({"rt-stream-main": fault})
        text, request_id = stream_text_openai(rgw, key, "rt-stream")
        assert "rt-stream-fb" in text, fault
        row = rgw.request_row(request_id)
        assert row["status_code"] == 200 and row["fallback_used"], fault


def test_a_stream_cannot_fall_back_after_its_first_byte(rgw, key):
    rgw.apply(STREAMS)
    rgw.set_faults({"rt-stream-main": {"drop_after_chunks": 3}})
    before = emulator_counts(rgw)
    with httpx.stream(
        "POST",
        f"{rgw.url}/v1/chat/completions",
        timeout=30,
        json={"model": "rt-stream", "messages": HI, "stream": True},
        headers={"authorization": f"Bearer {key}"},
    ) as response:
        assert response.status_code == 200  # the status line went out with the first byte
        body = response.read().decode()
        request_id = response.headers["x-sluice-request-id"]
    assert '"error"' in body and "rt-stream-main" in body
    assert not (emulator_counts(rgw) - before)["rt-stream-fb"]
    row = rgw.request_row(request_id)
    assert row["status_code"] == 502 and not row["fallback_used"]


SILENT = """
name: rt-stream-silent
type: gateway-load-balancing-config
circuit_breaker: {enabled: false}
rules: [{id: main, provider: openai, model: rt-silent-main, %s}]
fallbacks: [{provider: anthropic, model: rt-silent-fb}]
"""


@pytest.mark.parametrize(
    ("timeout", "fault"),
    [
        # accepts the call and never sends headers: the target's timeout_ms bounds it
        ("timeout_ms: 400", {"delay_ms": 5000}),
        # headers after 250 ms, first token 250 ms later: 500 ms > ttft_timeout_ms (400)
        ("ttft_timeout_ms: 400", {"delay_ms": 250, "ttft_ms": 250}),
    ],
)
def test_a_stream_to_a_silent_upstream_falls_back_within_its_timeout(rgw, key, timeout, fault):
    rgw.apply(SILENT % timeout)
    rgw.set_faults({"rt-silent-main": fault})
    started = time.monotonic()
    text, request_id = stream_text_openai(rgw, key, "rt-stream-silent")
    elapsed = time.monotonic() - started
    assert "rt-silent-fb" in text and elapsed < 1.5
    row = rgw.request_row(request_id)
    assert row["status_code"] == 200 and row["fallback_used"]
    assert attempts_of(row)[0] == ("rt-silent-main", None, "UpstreamTimeout", "primary")
    assert 350 <= row["attempts"][0]["latency_ms"] < 1000
