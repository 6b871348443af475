"""What one request may ask of the emulator is bounded (`sluicegate.emulator.limits`):
past a limit it answers a 400 (413 for the body) in the provider's own error format, at
once, and keeps serving. Each case once sent the real server into seconds of work, a
reply of hundreds of MB, or a 500."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from sluicegate.emulator.limits import MAX_BODY_BYTES

OPENAI_HEADERS = {"authorization": "Bearer x"}
ANTHROPIC_HEADERS = {"x-api-key": "x", "anthropic-version": "2023-06-01"}
FAST = 2.0  # seconds: a refusal is immediate; before the limits some took minutes


@pytest.fixture
def http(emulator_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator_url, timeout=10) as client:
        yield client
        assert client.get("/healthz", timeout=FAST).status_code == 200  # still serving


def refused(response: httpx.Response, started: float, status: int = 400) -> dict[str, Any]:
    assert time.monotonic() - started < FAST
    assert response.status_code == status, response.text[:300]
    assert len(response.content) < 2000
    return dict(response.json())


def openai_refusal(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    error = refused(http.post(path, json=body, headers=OPENAI_HEADERS), started)["error"]
    assert error["type"] == "invalid_request_error"
    return dict(error)


def anthropic_refusal(http: httpx.Client, body: dict[str, Any]) -> str:
    started = time.monotonic()
    payload = refused(http.post("/v1/messages", json=body, headers=ANTHROPIC_HEADERS), started)
    assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    return str(payload["error"]["message"])


def embeddings(inputs: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "text-embedding-3-small", "input": inputs, **extra}


def test_embeddings_requests_are_bounded(http: httpx.Client) -> None:
    body = embeddings(["a"] * 20_000)  # ~100 KB that asked for 30M floats (653 MB)
    assert openai_refusal(http, "/v1/embeddings", body)["param"] == "input"
    many = openai_refusal(http, "/v1/embeddings", embeddings(["hi"] * 2049))
    assert "maximum length 2048" in many["message"]
    wide = openai_refusal(http, "/v1/embeddings", embeddings("hi", dimensions=3073))
    assert wide["param"] == "dimensions" and "<= 3072" in wide["message"]
    total = openai_refusal(http, "/v1/embeddings", embeddings(["hi"] * 200))
    assert total["code"] == "emulator_limit" and "262144" in total["message"]
    long = openai_refusal(http, "/v1/embeddings", embeddings(["word " * 8000]))
    assert "maximum context length is 8192 tokens" in long["message"]
    tokens = openai_refusal(http, "/v1/embeddings", embeddings([[1, 2, 2**40]]))
    assert tokens["param"] == "input[0]"

    ok = http.post("/v1/embeddings", json=embeddings(["hi"] * 100), headers=OPENAI_HEADERS)
    assert ok.status_code == 200 and len(ok.json()["data"]) == 100


def tool_request(schema: dict[str, Any], api: str) -> dict[str, Any]:
    hello = [{"role": "user", "content": "call f"}]
    if api == "openai":
        return {
            "model": "gpt-4o-mini",
            "messages": hello,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": schema}}],
            "tool_choice": "required",
        }
    return {
        "model": "claude-haiku-4-5",
        "max_tokens": 100,
        "messages": hello,
        "tools": [{"name": "f", "input_schema": schema}],
        "tool_choice": {"type": "any"},
    }


def nested(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


def arguments(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {name: schema}, "required": [name]}


SCHEMAS = {
    "minItems": (arguments("x", {"type": "array", "minItems": 3_000_000}), "minItems 3000000"),
    "minLength": (arguments("x", {"type": "string", "minLength": 10**8}), "minLength"),
    "minimum": (arguments("x", {"type": "integer", "minimum": 1e308}), "2**53"),
    "maximum": (arguments("x", {"type": "integer", "exclusiveMaximum": -1e300}), "2**53"),
    "doubling": (  # two required self-references: 2**24 values
        {
            "type": "object",
            "required": ["a", "b"],
            "properties": {"a": {"$ref": "#"}, "b": {"$ref": "#"}},
        },
        "more than 10000 values",
    ),
    "items of items": (
        arguments(
            "x", {"type": "array", "minItems": 500, "items": {"type": "array", "minItems": 500}}
        ),
        "more than 10000 values",
    ),
    "nesting": (nested(300), "cannot be processed"),
}


@pytest.mark.parametrize("case", sorted(SCHEMAS))
def test_tool_schemas_are_bounded_in_both_apis(http: httpx.Client, case: str) -> None:
    schema, problem = SCHEMAS[case]
    error = openai_refusal(http, "/v1/chat/completions", tool_request(schema, "openai"))
    assert problem in error["message"]
    assert problem in anthropic_refusal(http, tool_request(schema, "anthropic"))


def test_a_bounded_schema_still_gets_arguments(http: httpx.Client) -> None:
    schema = arguments("x", {"type": "number", "minimum": 1e308, "maximum": 1.5e308})
    response = http.post(
        "/v1/chat/completions", json=tool_request(schema, "openai"), headers=OPENAI_HEADERS
    )
    assert response.status_code == 200, response.text
    call = response.json()["choices"][0]["message"]["tool_calls"][0]
    value = orjson.loads(call["function"]["arguments"])["x"]
    assert isinstance(value, float) and 1e308 < value < 1.5e308  # finite, within the bounds


def test_output_tokens_are_bounded(http: httpx.Client) -> None:
    hello = [{"role": "user", "content": "hi"}]
    for field in ("max_tokens", "max_completion_tokens"):
        body = {"model": "gpt-4o-mini", "messages": hello, field: 10**15}
        error = openai_refusal(http, "/v1/chat/completions", body)
        assert error["param"] == field and "<= 128000" in error["message"]
    body = {"model": "claude-haiku-4-5", "messages": hello, "max_tokens": 128_001}
    assert "max_tokens" in anthropic_refusal(http, body)


def test_a_body_past_the_limit_is_refused_before_it_is_read(emulator_url: str) -> None:
    port = int(emulator_url.rsplit(":", 1)[1])
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=FAST) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: e\r\nauthorization: Bearer x\r\n"
            + b"content-type: application/json\r\n"
            + f"content-length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode()
        )
        head = sock.recv(65536).decode("latin-1")
    assert time.monotonic() - started < FAST
    assert head.startswith("HTTP/1.1 413"), head
    assert "maximum allowed number of bytes" in head
