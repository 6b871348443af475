"""Fault injection and the admin endpoints, seen through the official SDKs."""

from __future__ import annotations

import time
from pathlib import Path

import anthropic
import httpx
import httpx2
import openai
import pytest

from tests.support import ServerProcess, free_port, python_module

HELLO = [{"role": "user", "content": "Hello there, tell me something"}]
# The SDKs ride on httpx2; a cut body surfaces as its transport error or the SDK's own.
BROKEN_STREAM = (httpx2.HTTPError, httpx.HTTPError, openai.APIError, anthropic.APIError)
CLAUDE = "claude-haiku-4-5"


def test_status_faults_raise_typed_sdk_errors(
    admin: httpx.Client, oai: openai.OpenAI, ant: anthropic.Anthropic
) -> None:
    admin.put(
        "/_emulator/faults",
        json={
            "gpt-4o": {"status": 500, "failure_rate": 1.0},
            CLAUDE: {"status": 529, "error_message": "busy"},
        },
    ).raise_for_status()
    with pytest.raises(openai.InternalServerError) as oai_error:
        oai.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert oai_error.value.body["type"] == "server_error"
    with pytest.raises(anthropic.OverloadedError) as ant_error:
        ant.messages.create(model=CLAUDE, max_tokens=50, messages=HELLO)
    assert ant_error.value.body["error"] == {"type": "overloaded_error", "message": "busy"}
    # other models are unaffected
    assert oai.chat.completions.create(model="gpt-4o-mini", messages=HELLO).choices


def test_rate_limit_fault_sets_retry_after(
    admin: httpx.Client, oai: openai.OpenAI, ant: anthropic.Anthropic
) -> None:
    admin.put("/_emulator/faults", json={"*": {"status": 429, "retry_after": 7}})
    with pytest.raises(openai.RateLimitError) as oai_error:
        oai.chat.completions.create(model="any-model", messages=HELLO)
    assert oai_error.value.response.headers["retry-after"] == "7"
    with pytest.raises(anthropic.RateLimitError) as ant_error:
        ant.messages.create(model=CLAUDE, max_tokens=50, messages=HELLO)
    assert ant_error.value.response.headers["retry-after"] == "7"
    assert ant_error.value.body["error"]["type"] == "rate_limit_error"


def test_stats_count_every_request_per_model(
    admin: httpx.Client, oai: openai.OpenAI, ant: anthropic.Anthropic
) -> None:
    admin.put("/_emulator/faults", json={"broken": {"status": 500}})
    oai.chat.completions.create(model="gpt-4o", messages=HELLO)
    oai.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True).close()
    ant.messages.create(model=CLAUDE, max_tokens=50, messages=HELLO)
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="broken", messages=HELLO)
    list(oai.models.list())
    stats = admin.get("/_emulator/stats").json()
    assert stats["requests"] == {"gpt-4o": 2, CLAUDE: 1, "broken": 1, "(none)": 1}
    assert stats["total"] == 5
    admin.post("/_emulator/reset").raise_for_status()
    assert admin.get("/_emulator/stats").json() == {"requests": {}, "total": 0}


def test_fault_table_put_patch_delete(admin: httpx.Client) -> None:
    table = admin.put("/_emulator/faults", json={"a": {"status": 500}}).json()["faults"]
    assert table["a"]["status"] == 500 and table["a"]["failure_rate"] == 1.0
    merged = admin.patch("/_emulator/faults", json={"b": {"delay_ms": 5}}).json()["faults"]
    assert set(merged) == {"a", "b"} and merged["b"]["status"] is None
    removed = admin.patch("/_emulator/faults", json={"a": None}).json()["faults"]
    assert set(removed) == {"b"}
    assert admin.delete("/_emulator/faults").json() == {"faults": {}}
    bad = admin.put("/_emulator/faults", json={"a": {"failure_rate": 2}})
    assert bad.status_code == 400 and "failure_rate" in bad.json()["error"]["message"]
    assert admin.put("/_emulator/faults", json={"a": {"bogus": 1}}).status_code == 400


def test_failure_rate_is_seeded_and_repeatable(admin: httpx.Client, emulator_url: str) -> None:
    def outcomes() -> list[int]:
        admin.put("/_emulator/faults", json={"flaky": {"status": 503, "failure_rate": 0.5}})
        return [
            httpx.post(
                f"{emulator_url}/v1/chat/completions",
                json={"model": "flaky", "messages": HELLO},
                headers={"authorization": "Bearer x"},
            ).status_code
            for _ in range(20)
        ]

    first = outcomes()
    admin.post("/_emulator/reset")
    assert outcomes() == first
    assert set(first) == {200, 503}


def test_drop_after_chunks_breaks_the_stream(
    admin: httpx.Client, oai: openai.OpenAI, ant: anthropic.Anthropic
) -> None:
    admin.put("/_emulator/faults", json={"*": {"drop_after_chunks": 3}})
    received = []
    with pytest.raises(BROKEN_STREAM):
        for chunk in oai.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True):
            received.append(chunk)
    assert len(received) == 3
    with (
        pytest.raises(BROKEN_STREAM),
        ant.messages.stream(model=CLAUDE, max_tokens=100, messages=HELLO) as stream,
    ):
        stream.get_final_message()


def test_ttft_and_delay_faults_slow_responses(admin: httpx.Client, oai: openai.OpenAI) -> None:
    admin.put(
        "/_emulator/faults",
        json={
            "slow-first": {"ttft_ms": 400},
            "slow-all": {"delay_ms": 300},
            "slow-gaps": {"inter_chunk_ms": 20},
        },
    )
    started = time.monotonic()
    stream = oai.chat.completions.create(model="slow-first", messages=HELLO, stream=True)
    headers_after = time.monotonic() - started
    first_content = next(c for c in stream if c.choices and c.choices[0].delta.content)
    assert first_content and time.monotonic() - started >= 0.35
    assert headers_after < 0.35  # ttft delays the events, not the headers
    stream.close()
    started = time.monotonic()
    oai.chat.completions.create(model="slow-all", messages=HELLO)
    assert time.monotonic() - started >= 0.25
    started = time.monotonic()
    chunks = list(oai.chat.completions.create(model="slow-gaps", messages=HELLO, stream=True))
    assert time.monotonic() - started >= 0.02 * (len(chunks) - 1) * 0.8


def test_faults_file_on_the_command_line(tmp_path: Path) -> None:
    faults = tmp_path / "faults.yaml"
    faults.write_text("gpt-4o:\n  status: 503\n  retry_after: 3\n", encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = python_module("sluicegate.emulator", "--port", str(port), "--faults", str(faults))
    with ServerProcess(args, f"{url}/healthz"):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model="gpt-4o", messages=HELLO)
        assert caught.value.status_code == 503
        assert caught.value.response.headers["retry-after"] == "3"
        assert httpx.get(f"{url}/_emulator/faults").json()["faults"]["gpt-4o"]["status"] == 503
