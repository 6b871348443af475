"""Official SDKs, unchanged, against a real gateway on loopback: every combination of
client format x provider format x stream/non-stream x tools. The answer must parse in the
SDK, and the ledger must hold the usage the response reported, priced."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from sluicegate.model.usage import Usage
from sluicegate.pricing import PriceBook

MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer"},
    },
    "required": ["city", "unit", "days"],
}
# The same tool in each wire format, with a tool call required.
OPENAI_TOOL = {
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": WEATHER_SCHEMA,
            },
        }
    ],
    "tool_choice": "required",
}
ANTHROPIC_TOOL = [
    {"name": "get_weather", "description": "Weather for a city", "input_schema": WEATHER_SCHEMA}
]


def oa_client(gateway, key, **headers):
    return openai.OpenAI(
        base_url=gateway.url + "/v1",
        api_key=key["key"],
        max_retries=0,
        default_headers=headers or None,
    )


def an_client(gateway, key, **headers):
    return anthropic.Anthropic(
        base_url=gateway.url, api_key=key["key"], max_retries=0, default_headers=headers or None
    )


def expected_cost(provider: str, model: str, usage: Usage) -> float | None:
    return PriceBook().price(provider, model, usage).cost_usd


def assert_ledgered(gateway, request_id: str, provider: str, usage: Usage, *, stream: bool):
    row = gateway.request_row(request_id)
    assert row["status_code"] == 200
    assert row["provider"] == provider and row["model"] == MODELS[provider]
    assert row["stream"] is stream
    assert row["input_tokens"] == usage.input_tokens
    assert row["output_tokens"] == usage.output_tokens
    assert row["project"] == "platform-search" and row["team"] == "search"
    assert row["user_id"] == "alice"
    assert row["cost_usd"] == pytest.approx(expected_cost(provider, MODELS[provider], usage))
    assert row["price_id"] and row["price_version"]
    return row


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("tools", [False, True], ids=["text", "tools"])
def test_openai_client_non_stream(gateway, key, provider, tools):
    client = oa_client(gateway, key)
    kwargs = OPENAI_TOOL if tools else {}
    raw = client.chat.completions.with_raw_response.create(
        model=MODELS[provider],
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Oslo?"},
        ],
        max_tokens=64,
        **kwargs,
    )
    completion = raw.parse()
    assert raw.headers["x-sluice-resolved-model"] == f"{provider}/{MODELS[provider]}"
    message = completion.choices[0].message
    if tools:
        assert completion.choices[0].finish_reason == "tool_calls"
        args = json.loads(message.tool_calls[0].function.arguments)
        assert set(WEATHER_SCHEMA["required"]) <= set(args)
        assert args["unit"] in ("celsius", "fahrenheit") and isinstance(args["days"], int)
    else:
        assert message.content
    usage = Usage(
        input_tokens=completion.usage.prompt_tokens,
        output_tokens=completion.usage.completion_tokens,
    )
    row = assert_ledgered(
        gateway, raw.headers["x-sluice-request-id"], provider, usage, stream=False
    )
    assert float(raw.headers["x-sluice-cost-usd"]) == pytest.approx(row["cost_usd"], abs=1e-8)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("tools", [False, True], ids=["text", "tools"])
def test_openai_client_stream(gateway, key, provider, tools):
    session = f"sess-oa-stream-{provider}-{tools}"
    client = oa_client(gateway, key, **{"X-Sluice-Session-ID": session})
    kwargs = OPENAI_TOOL if tools else {}
    with client.chat.completions.stream(
        model=MODELS[provider],
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        max_tokens=64,
        stream_options={"include_usage": True},
        **kwargs,
    ) as stream:
        final = stream.get_final_completion()
    request_id = gateway.session_rows(session)[0]["request_id"]
    if tools:
        call = final.choices[0].message.tool_calls[0]
        assert call.function.name == "get_weather"
        assert set(WEATHER_SCHEMA["required"]) <= set(json.loads(call.function.arguments))
    else:
        assert final.choices[0].message.content
    usage = Usage(
        input_tokens=final.usage.prompt_tokens, output_tokens=final.usage.completion_tokens
    )
    row = assert_ledgered(gateway, request_id, provider, usage, stream=True)
    assert row["ttft_ms"] is not None and row["ttft_ms"] > 0


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_openai_stream_without_usage_option_still_ledgers_usage(gateway, key, provider):
    client = oa_client(gateway, key)
    response = client.chat.completions.with_raw_response.create(
        model=MODELS[provider], messages=[{"role": "user", "content": "hello"}], stream=True
    )
    chunks = list(response.parse())
    # The client did not ask for usage, so it gets no usage chunk...
    assert all(chunk.usage is None for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    # ...but the gateway asked upstream on its behalf, so the ledger has it.
    row = gateway.request_row(response.headers["x-sluice-request-id"])
    assert row["input_tokens"] and row["output_tokens"]
    assert row["cost_usd"] is not None


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("tools", [False, True], ids=["text", "tools"])
def test_anthropic_client_non_stream(gateway, key, provider, tools):
    client = an_client(gateway, key)
    kwargs = {"tools": ANTHROPIC_TOOL, "tool_choice": {"type": "any"}} if tools else {}
    raw = client.messages.with_raw_response.create(
        model=MODELS[provider],
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        **kwargs,
    )
    message = raw.parse()
    if tools:
        assert message.stop_reason == "tool_use"
        block = next(b for b in message.content if b.type == "tool_use")
        assert block.name == "get_weather"
        assert set(WEATHER_SCHEMA["required"]) <= set(block.input)
    else:
        assert message.content[0].text
    usage = Usage(
        input_tokens=message.usage.input_tokens, output_tokens=message.usage.output_tokens
    )
    assert_ledgered(gateway, raw.headers["x-sluice-request-id"], provider, usage, stream=False)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("tools", [False, True], ids=["text", "tools"])
def test_anthropic_client_stream(gateway, key, provider, tools):
    client = an_client(gateway, key)
    kwargs = (
        {"tools": ANTHROPIC_TOOL, "tool_choice": {"type": "tool", "name": "get_weather"}}
        if tools
        else {}
    )
    with client.messages.stream(
        model=MODELS[provider],
        max_tokens=64,
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        **kwargs,
    ) as stream:
        request_id = stream.response.headers["x-sluice-request-id"]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    if tools:
        block = next(b for b in final.content if b.type == "tool_use")
        assert set(WEATHER_SCHEMA["required"]) <= set(block.input)
    else:
        assert text and final.content[0].text == text
    usage = Usage(input_tokens=final.usage.input_tokens, output_tokens=final.usage.output_tokens)
    assert_ledgered(gateway, request_id, provider, usage, stream=True)


def test_multi_turn_tool_result_crosses_formats(gateway, key):
    """An OpenAI conversation with an assistant tool call and a tool result, served by
    Anthropic: the history must translate and the answer come back in OpenAI format."""
    client = oa_client(gateway, key)
    completion = client.chat.completions.create(
        model="claude-haiku-4-5",
        messages=[
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "12 degrees and rain"},
        ],
        tools=[
            {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}
        ],
    )
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"


def test_anthropic_cache_control_tokens_are_ledgered(gateway, key):
    client = an_client(gateway, key)
    system = [
        {
            "type": "text",
            "text": "You are a careful analyst. " * 300,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    first = client.messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=32,
        system=system,
        messages=[{"role": "user", "content": "Summarise."}],
    )
    second = client.messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=32,
        system=system,
        messages=[{"role": "user", "content": "Summarise."}],
    )
    written = first.parse().usage
    read = second.parse().usage
    assert written.cache_creation_input_tokens and read.cache_read_input_tokens
    row = gateway.request_row(second.headers["x-sluice-request-id"])
    assert row["cache_read_tokens"] == read.cache_read_input_tokens
    # The ledger counts every prompt token; Anthropic's input_tokens excludes cached ones.
    assert row["input_tokens"] == (
        read.input_tokens + read.cache_read_input_tokens + (read.cache_creation_input_tokens or 0)
    )
    full = Usage(
        input_tokens=row["input_tokens"],
        output_tokens=row["output_tokens"],
        cache_read_tokens=row["cache_read_tokens"],
        cache_write_tokens=row["cache_write_tokens"],
    )
    assert row["cost_usd"] == pytest.approx(expected_cost("anthropic", "claude-haiku-4-5", full))


def test_reasoning_tokens_are_ledgered(gateway, key):
    completion = oa_client(gateway, key).chat.completions.with_raw_response.create(
        model="o4-mini", messages=[{"role": "user", "content": "Think hard."}]
    )
    reported = completion.parse().usage.completion_tokens_details.reasoning_tokens
    assert reported
    row = gateway.request_row(completion.headers["x-sluice-request-id"])
    assert row["reasoning_tokens"] == reported


def test_embeddings_and_models(gateway, key):
    client = oa_client(gateway, key)
    raw = client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=["hello", "world"]
    )
    result = raw.parse()
    assert len(result.data) == 2 and len(result.data[0].embedding) > 10
    row = gateway.request_row(raw.headers["x-sluice-request-id"])
    assert row["input_tokens"] == result.usage.prompt_tokens
    assert row["output_tokens"] is None  # not reported is not zero
    assert row["cost_usd"] is not None and row["client_api"] == "openai.embeddings"
    names = {m.id for m in client.models.list()}
    assert {
        "gpt-4o-mini",
        "gpt-4o",
        "claude-haiku-4-5",
        "claude-sonnet-4-6",
        "claude-opus-4-7",
        "text-embedding-3-small",
    } <= names
    anthropic_names = {m.id for m in an_client(gateway, key).models.list()}
    assert "claude-haiku-4-5" in anthropic_names
