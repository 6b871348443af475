"""The official openai SDK against a real emulator server."""

from __future__ import annotations

import json
import math

import httpx
import openai
import pytest

from tests.emulator.schema_check import assert_valid

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
        "detail": {
            "type": "object",
            "properties": {"hourly": {"type": "boolean"}},
            "required": ["hourly"],
        },
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["city", "unit", "days"],
}
TOOLS = [
    {
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather", "parameters": WEATHER_SCHEMA},
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {
                "type": "object",
                "properties": {"zone": {"type": "string"}},
                "required": ["zone"],
            },
        },
    },
]
HELLO = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]


def test_chat_completion_shape_and_headers(oai: openai.OpenAI) -> None:
    raw = oai.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)
    assert raw.headers["x-request-id"].startswith("req_")
    assert int(raw.headers["openai-processing-ms"]) >= 0
    completion = raw.parse()
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion" and completion.model == "gpt-4o"
    assert completion.system_fingerprint and completion.service_tier == "default"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert "Hello there" in choice.message.content and choice.message.refusal is None
    usage = completion.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details.reasoning_tokens == 0


def test_replies_are_deterministic_and_prompt_tokens_grow(oai: openai.OpenAI) -> None:
    first = oai.chat.completions.create(model="gpt-4o", messages=HELLO)
    again = oai.chat.completions.create(model="gpt-4o", messages=HELLO)
    longer = oai.chat.completions.create(
        model="gpt-4o",
        messages=[
            *HELLO,
            {"role": "assistant", "content": "Hi."},
            {"role": "user", "content": "Tell me more about the weather in Oslo today."},
        ],
    )
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.usage == again.usage
    assert longer.usage.prompt_tokens > first.usage.prompt_tokens


def test_max_tokens_and_stop(oai: openai.OpenAI) -> None:
    cut = oai.chat.completions.create(model="gpt-4o", messages=HELLO, max_completion_tokens=3)
    assert cut.choices[0].finish_reason == "length"
    assert cut.usage.completion_tokens <= 3 and cut.choices[0].message.content
    stopped = oai.chat.completions.create(model="gpt-4o", messages=HELLO, stop=["there"])
    assert stopped.choices[0].finish_reason == "stop"
    assert "there" not in stopped.choices[0].message.content


def test_stream_with_include_usage(oai: openai.OpenAI) -> None:
    plain = oai.chat.completions.create(model="gpt-4o", messages=HELLO)
    chunks = list(
        oai.chat.completions.create(
            model="gpt-4o", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert len(chunks) > 5  # one chunk per word


def test_stream_without_usage_option_has_no_usage(emulator_url: str) -> None:
    body = {"model": "gpt-4o", "messages": HELLO, "stream": True}
    with httpx.stream(
        "POST",
        f"{emulator_url}/v1/chat/completions",
        json=body,
        headers={"authorization": "Bearer x"},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    assert all('"usage"' not in line for line in lines)


def test_stream_helper_final_completion(oai: openai.OpenAI) -> None:
    with oai.chat.completions.stream(
        model="gpt-4o-mini", messages=HELLO, stream_options={"include_usage": True}
    ) as stream:
        final = stream.get_final_completion()
    assert "Hello there" in final.choices[0].message.content
    assert final.usage.completion_tokens > 0


@pytest.mark.parametrize(
    "choice", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_required_tool_call_satisfies_schema(oai: openai.OpenAI, choice: object) -> None:
    completion = oai.chat.completions.create(
        model="gpt-4o", messages=HELLO, tools=TOOLS, tool_choice=choice
    )
    assert completion.choices[0].finish_reason == "tool_calls"
    call = completion.choices[0].message.tool_calls[0]
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    assert_valid(json.loads(call.function.arguments), WEATHER_SCHEMA)
    assert completion.usage.completion_tokens > 0


def test_streamed_tool_call_accumulates(oai: openai.OpenAI) -> None:
    with oai.chat.completions.stream(
        model="gpt-4o",
        messages=HELLO,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    ) as stream:
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]
    assert final.choices[0].finish_reason == "tool_calls" and call.function.name == "get_time"
    assert json.loads(call.function.arguments)["zone"]


def test_auto_tool_choice_and_tool_result(oai: openai.OpenAI) -> None:
    text = oai.chat.completions.create(model="gpt-4o", messages=HELLO, tools=TOOLS)
    assert text.choices[0].finish_reason == "stop" and text.choices[0].message.tool_calls is None
    asked = [{"role": "user", "content": "Please call get_time for Oslo"}]
    called = oai.chat.completions.create(model="gpt-4o", messages=asked, tools=TOOLS)
    call = called.choices[0].message.tool_calls[0]
    assert call.function.name == "get_time"
    answered = oai.chat.completions.create(
        model="gpt-4o",
        tools=TOOLS,
        messages=[
            *asked,
            called.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "It is 14:05 in Oslo"},
        ],
    )
    assert answered.choices[0].finish_reason == "stop"
    assert "14:05" in answered.choices[0].message.content


def test_embeddings_base64_by_default_and_float(oai: openai.OpenAI, emulator_url: str) -> None:
    raw = oai.embeddings.with_raw_response.create(model="text-embedding-3-small", input="hi")
    assert isinstance(json.loads(raw.text)["data"][0]["embedding"], str)  # base64 on the wire
    vector = raw.parse().data[0].embedding
    assert len(vector) == 1536
    assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, rel_tol=1e-4)
    floats = oai.embeddings.create(
        model="text-embedding-3-small",
        input=["hi", "there"],
        encoding_format="float",
        dimensions=256,
    )
    assert [d.index for d in floats.data] == [0, 1] and len(floats.data[0].embedding) == 256
    assert floats.usage.prompt_tokens == floats.usage.total_tokens > 0
    again = oai.embeddings.create(
        model="text-embedding-3-small", input="hi", encoding_format="float"
    )
    assert again.data[0].embedding == pytest.approx(vector, abs=1e-6)


def test_models_list(oai: openai.OpenAI) -> None:
    models = list(oai.models.list())
    assert "gpt-4o" in {m.id for m in models}
    assert all(m.object == "model" and m.owned_by for m in models)
    assert oai.models.retrieve("my-own-model").id == "my-own-model"


def test_cached_tokens_on_repeated_long_prompt(oai: openai.OpenAI) -> None:
    system = {"role": "system", "content": "Policy clause. " * 400}  # about 1500 tokens
    first = oai.chat.completions.create(
        model="gpt-4o", messages=[system, {"role": "user", "content": "first question"}]
    )
    second = oai.chat.completions.create(
        model="gpt-4o", messages=[system, {"role": "user", "content": "second question"}]
    )
    assert first.usage.prompt_tokens >= 1024
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert 1024 <= cached <= second.usage.prompt_tokens and cached % 128 == 0


def test_reasoning_tokens_for_reasoning_models(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(model="o4-mini", messages=HELLO)
    reasoning = completion.usage.completion_tokens_details.reasoning_tokens
    assert reasoning > 0 and completion.usage.completion_tokens > reasoning
    capped = oai.chat.completions.create(model="gpt-5", messages=HELLO, max_completion_tokens=10)
    assert capped.usage.completion_tokens <= 10
    assert capped.choices[0].finish_reason == "length"


def test_missing_auth_is_401(emulator_url: str) -> None:
    response = httpx.post(
        f"{emulator_url}/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO}
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "x-request-id" in response.headers


def test_invalid_bodies_are_400_naming_the_field(emulator_url: str, oai: openai.OpenAI) -> None:
    headers = {"authorization": "Bearer x"}
    url = f"{emulator_url}/v1/chat/completions"
    missing = httpx.post(url, json={"model": "gpt-4o"}, headers=headers)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages"
    wrong = httpx.post(url, json={"model": 7, "messages": HELLO}, headers=headers)
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "model"
    broken = httpx.post(url, content=b"{not json", headers=headers)
    assert broken.status_code == 400
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="gpt-4o", messages=[{"role": "wizard", "content": "hi"}])
    assert caught.value.body["param"] == "messages[0].role"
