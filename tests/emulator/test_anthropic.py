"""The official anthropic SDK against a real emulator server."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from tests.emulator.schema_check import assert_valid

MODEL = "claude-sonnet-4-6"
HELLO = [{"role": "user", "content": "Hello there"}]
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1},
        },
        "required": ["city", "unit", "days"],
    },
}
CLOCK = {
    "name": "get_time",
    "input_schema": {
        "type": "object",
        "properties": {"zone": {"type": "string"}},
        "required": ["zone"],
    },
}
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    "AAAABJRU5ErkJggg=="
)


def test_message_shape_and_headers(ant: anthropic.Anthropic) -> None:
    raw = ant.messages.with_raw_response.create(
        model=MODEL, max_tokens=200, messages=HELLO, system="Be brief."
    )
    assert raw.headers["request-id"].startswith("req_")
    message = raw.parse()
    assert message.id.startswith("msg_") and message.type == "message"
    assert message.role == "assistant" and message.model == MODEL
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.content[0].type == "text" and "Hello there" in message.content[0].text
    usage = message.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0


def test_stream_helper_matches_plain_reply(ant: anthropic.Anthropic) -> None:
    plain = ant.messages.create(model=MODEL, max_tokens=200, messages=HELLO)
    with ant.messages.stream(model=MODEL, max_tokens=200, messages=HELLO) as stream:
        streamed_text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed_text == plain.content[0].text == final.content[0].text
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert final.usage.input_tokens == plain.usage.input_tokens
    assert final.stop_reason == "end_turn"


def test_raw_stream_event_order(ant: anthropic.Anthropic, emulator_url: str) -> None:
    body = {"model": MODEL, "max_tokens": 200, "messages": HELLO, "stream": True}
    headers = {"x-api-key": "x", "anthropic-version": "2023-06-01"}
    with httpx.stream(
        "POST", f"{emulator_url}/v1/messages", json=body, headers=headers
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        names = [
            line[len("event: ") :] for line in response.iter_lines() if line.startswith("event: ")
        ]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    events = list(
        ant.messages.create(model=MODEL, max_tokens=200, messages=HELLO, stream=True)
    )  # the SDK drops pings
    start = events[0].message
    assert start.content == [] and start.usage.output_tokens == 1 and start.usage.input_tokens
    assert events[-2].delta.stop_reason == "end_turn" and events[-2].usage.output_tokens > 1


def test_max_tokens_and_stop_sequences(ant: anthropic.Anthropic) -> None:
    cut = ant.messages.create(model=MODEL, max_tokens=2, messages=HELLO)
    assert cut.stop_reason == "max_tokens" and cut.usage.output_tokens <= 2
    stopped = ant.messages.create(
        model=MODEL, max_tokens=200, messages=HELLO, stop_sequences=["there"]
    )
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "there"
    assert "there" not in stopped.content[0].text


@pytest.mark.parametrize("choice", [{"type": "any"}, {"type": "tool", "name": "get_weather"}])
def test_required_tool_use_satisfies_schema(ant: anthropic.Anthropic, choice: dict) -> None:
    message = ant.messages.create(
        model=MODEL, max_tokens=200, messages=HELLO, tools=[WEATHER, CLOCK], tool_choice=choice
    )
    assert message.stop_reason == "tool_use"
    block = message.content[-1]
    assert block.type == "tool_use" and block.id.startswith("toolu_")
    assert block.name == "get_weather"
    assert_valid(block.input, WEATHER["input_schema"])


def test_streamed_tool_use_and_tool_result(ant: anthropic.Anthropic) -> None:
    asked = [{"role": "user", "content": "What does get_time say for Oslo?"}]
    with ant.messages.stream(
        model=MODEL, max_tokens=200, messages=asked, tools=[WEATHER, CLOCK]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == ["text", "tool_use"]  # announced, then called
    call = final.content[1]
    assert call.name == "get_time" and call.input["zone"]
    answered = ant.messages.create(
        model=MODEL,
        max_tokens=200,
        tools=[WEATHER, CLOCK],
        messages=[
            *asked,
            {"role": "assistant", "content": final.content},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "14:05 in Oslo"}
                ],
            },
        ],
    )
    assert answered.stop_reason == "end_turn" and "14:05" in answered.content[0].text


def test_tool_choice_none_answers_in_text(ant: anthropic.Anthropic) -> None:
    message = ant.messages.create(
        model=MODEL,
        max_tokens=200,
        tools=[CLOCK],
        tool_choice={"type": "none"},
        messages=[{"role": "user", "content": "get_time please"}],
    )
    assert message.stop_reason == "end_turn" and message.content[0].type == "text"


def test_prompt_cache_write_then_read(ant: anthropic.Anthropic) -> None:
    system = [
        {
            "type": "text",
            "text": "You are a careful assistant. " * 60,
            "cache_control": {"type": "ephemeral"},
        }
    ]
    first = ant.messages.create(model=MODEL, max_tokens=50, system=system, messages=HELLO)
    second = ant.messages.create(model=MODEL, max_tokens=50, system=system, messages=HELLO)
    total = ant.messages.count_tokens(model=MODEL, system=system, messages=HELLO).input_tokens
    written = first.usage.cache_creation_input_tokens
    assert written > 0 and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.cache_read_input_tokens == written
    # input_tokens is only the uncached remainder, as Anthropic reports it
    assert first.usage.input_tokens == second.usage.input_tokens == total - written


def test_streamed_usage_carries_cache_counts(ant: anthropic.Anthropic) -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "A long shared document. " * 50,
                    "cache_control": {"type": "ephemeral", "ttl": "1h"},
                },
                {"type": "text", "text": "Question one?"},
            ],
        }
    ]
    ant.messages.create(model=MODEL, max_tokens=50, messages=messages)
    with ant.messages.stream(model=MODEL, max_tokens=50, messages=messages) as stream:
        final = stream.get_final_message()
    assert final.usage.cache_read_input_tokens > 0
    assert final.usage.cache_creation_input_tokens == 0


def test_count_tokens_grows_and_counts_images(ant: anthropic.Anthropic) -> None:
    short = ant.messages.count_tokens(model=MODEL, messages=HELLO).input_tokens
    longer = ant.messages.count_tokens(
        model=MODEL, system="Be brief and kind.", messages=HELLO, tools=[WEATHER]
    ).input_tokens
    image = ant.messages.count_tokens(
        model=MODEL,
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {"type": "text", "text": "Hello there"},
                ],
            }
        ],
    ).input_tokens
    assert 0 < short < longer and image > short


def test_models_list(ant: anthropic.Anthropic) -> None:
    page = ant.models.list(limit=2)
    assert len(page.data) == 2 and page.has_more
    assert page.first_id == page.data[0].id and page.last_id == page.data[1].id
    everything = list(ant.models.list())
    assert len(everything) > 2 and all(m.type == "model" and m.display_name for m in everything)


def test_access_and_body_errors(emulator_url: str) -> None:
    url = f"{emulator_url}/v1/messages"
    body = {"model": MODEL, "max_tokens": 10, "messages": HELLO}
    no_key = httpx.post(url, json=body, headers={"anthropic-version": "2023-06-01"})
    assert no_key.status_code == 401
    assert no_key.json()["error"]["type"] == "authentication_error"
    assert no_key.json()["request_id"] == no_key.headers["request-id"]
    no_version = httpx.post(url, json=body, headers={"x-api-key": "x"})
    assert no_version.status_code == 400
    assert no_version.json()["error"]["type"] == "invalid_request_error"
    headers = {"x-api-key": "x", "anthropic-version": "2023-06-01"}
    no_max = httpx.post(url, json={"model": MODEL, "messages": HELLO}, headers=headers)
    assert no_max.status_code == 400 and "max_tokens" in no_max.json()["error"]["message"]
    bad_role = httpx.post(
        url, json={**body, "messages": [{"role": "bot", "content": "x"}]}, headers=headers
    )
    assert bad_role.status_code == 400
    assert "messages[0].role" in bad_role.json()["error"]["message"]


def test_sdk_raises_typed_errors(ant: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError):
        ant.messages.create(model=MODEL, max_tokens=10, messages=[])
