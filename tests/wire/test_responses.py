"""Non-stream answers: usage extraction (the passthrough fast path), both directions of
translation, and the results validated by the official SDK types."""

import anthropic.types
import openai.types.chat
import pytest

from sluicegate.errors import UpstreamError
from sluicegate.model.chat import ChatResponse, TextPart, ToolCallPart
from sluicegate.model.usage import Usage
from sluicegate.wire import anthropic_messages as am
from sluicegate.wire import openai_chat as oc

OPENAI_RESPONSE = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Let me check.",
                "refusal": None,
                "annotations": [],
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 1200,
        "completion_tokens": 80,
        "total_tokens": 1280,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 30,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_fc9f1d7035",
}

ANTHROPIC_RESPONSE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "Weather needs a tool.", "signature": "c2ln"},
        {"type": "text", "text": "Let me check."},
        {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 100,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 800,
        "output_tokens": 80,
    },
}


# -- usage: the fast path on passthrough answers ---------------------------------------------


def test_openai_usage():
    assert oc.usage_from_response(OPENAI_RESPONSE) == Usage(
        input_tokens=1200,
        output_tokens=80,
        cache_read_tokens=1024,
        cache_write_tokens=None,
        reasoning_tokens=30,
    )
    assert oc.response_model(OPENAI_RESPONSE) == "gpt-4o-2024-08-06"


def test_anthropic_usage_adds_cache_back_into_input():
    assert am.usage_from_response(ANTHROPIC_RESPONSE) == Usage(
        input_tokens=1200,
        output_tokens=80,
        cache_read_tokens=800,
        cache_write_tokens=300,
        reasoning_tokens=None,
    )
    assert am.response_model(ANTHROPIC_RESPONSE) == "claude-sonnet-4-5-20250929"


def test_unreported_usage_is_none_never_zero():
    assert oc.usage_from_response({"choices": []}) == Usage()
    assert am.usage_from_response({"content": []}) == Usage()
    minimal = oc.usage_from_response(
        {"usage": {"prompt_tokens": 5, "completion_tokens": 0, "total_tokens": 5}}
    )
    assert minimal == Usage(input_tokens=5, output_tokens=0)
    assert minimal.cache_read_tokens is None and minimal.reasoning_tokens is None
    no_cache = am.usage_from_response({"usage": {"input_tokens": 7, "output_tokens": 2}})
    assert no_cache == Usage(input_tokens=7, output_tokens=2)
    zero_cache = am.usage_from_response(
        {
            "usage": {
                "input_tokens": 7,
                "output_tokens": 2,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0,
            }
        }
    )
    assert (zero_cache.cache_read_tokens, zero_cache.cache_write_tokens) == (0, 0)
    assert oc.response_model({}) is None and am.response_model({"model": ""}) is None


def test_anthropic_thinking_tokens_are_reasoning():
    usage = am.usage_from_response(
        {
            "usage": {
                "input_tokens": 1,
                "output_tokens": 50,
                "output_tokens_details": {"thinking_tokens": 40},
            }
        }
    )
    assert usage.reasoning_tokens == 40


# -- response_to_canonical -------------------------------------------------------------------


def test_openai_response_to_canonical():
    resp = oc.response_to_canonical(OPENAI_RESPONSE)
    assert resp.id == OPENAI_RESPONSE["id"]
    assert resp.model == "gpt-4o-2024-08-06"
    assert resp.content == [
        TextPart(text="Let me check."),
        ToolCallPart(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),
    ]
    assert resp.stop_reason == "tool_use"


def test_anthropic_response_to_canonical_skips_thinking():
    resp = am.response_to_canonical(ANTHROPIC_RESPONSE)
    assert resp.content == [
        TextPart(text="Let me check."),
        ToolCallPart(id="toolu_01A", name="get_weather", arguments='{"city":"Paris"}'),
    ]
    assert resp.stop_reason == "tool_use"
    assert resp.usage.input_tokens == 1200


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "content_filter"),
        ("function_call", "tool_use"),
    ],
)
def test_openai_finish_reasons(finish, stop):
    body = {
        **OPENAI_RESPONSE,
        "choices": [{**OPENAI_RESPONSE["choices"][0], "finish_reason": finish}],
    }
    assert oc.response_to_canonical(body).stop_reason == stop


@pytest.mark.parametrize(
    ("reason", "stop"),
    [
        ("end_turn", "end_turn"),
        ("max_tokens", "max_tokens"),
        ("stop_sequence", "stop_sequence"),
        ("tool_use", "tool_use"),
        ("refusal", "content_filter"),
        ("pause_turn", "end_turn"),
        ("model_context_window_exceeded", "max_tokens"),
    ],
)
def test_anthropic_stop_reasons(reason, stop):
    assert (
        am.response_to_canonical({**ANTHROPIC_RESPONSE, "stop_reason": reason}).stop_reason == stop
    )


def test_a_body_that_is_not_an_answer():
    with pytest.raises(UpstreamError):
        oc.response_to_canonical({"object": "list"})
    with pytest.raises(UpstreamError):
        am.response_to_canonical({"type": "message"})


# -- cross-wire answers, validated by the SDK types -------------------------------------------


def test_anthropic_answer_for_an_openai_client():
    out = oc.response_from_canonical(am.response_to_canonical(ANTHROPIC_RESPONSE))
    completion = openai.types.chat.ChatCompletion.model_validate(out)
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "claude-sonnet-4-5-20250929"
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    call = choice.message.tool_calls[0]
    assert (call.id, call.function.name, call.function.arguments) == (
        "toolu_01A",
        "get_weather",
        '{"city":"Paris"}',
    )
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (1200, 80, 1280)
    assert usage.prompt_tokens_details.cached_tokens == 800
    assert usage.prompt_tokens_details.cache_write_tokens == 300
    assert usage.completion_tokens_details is None  # Anthropic did not report reasoning


def test_openai_answer_for_an_anthropic_client():
    out = am.response_from_canonical(oc.response_to_canonical(OPENAI_RESPONSE))
    message = anthropic.types.Message.model_validate(out)
    assert message.id.startswith("msg_")
    assert message.type == "message" and message.role == "assistant"
    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "text" and message.content[0].text == "Let me check."
    tool = message.content[1]
    assert (tool.type, tool.id, tool.name, tool.input) == (
        "tool_use",
        "call_1",
        "get_weather",
        {"city": "Paris"},
    )
    # Anthropic convention: input_tokens excludes the cache read
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (176, 1024)
    assert message.usage.cache_creation_input_tokens is None
    assert message.usage.output_tokens == 80
    assert message.usage.output_tokens_details.thinking_tokens == 30


def test_same_wire_round_trips_of_answers():
    again = am.response_from_canonical(am.response_to_canonical(ANTHROPIC_RESPONSE))
    assert again["usage"] == {
        "input_tokens": 100,
        "output_tokens": 80,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 800,
    }
    assert again["id"] == ANTHROPIC_RESPONSE["id"]
    again = oc.response_from_canonical(oc.response_to_canonical(OPENAI_RESPONSE))
    assert again["usage"] == {
        "prompt_tokens": 1200,
        "completion_tokens": 80,
        "total_tokens": 1280,
        "prompt_tokens_details": {"cached_tokens": 1024},
        "completion_tokens_details": {"reasoning_tokens": 30},
    }
    assert again["id"] == OPENAI_RESPONSE["id"]


@pytest.mark.parametrize(
    ("stop", "openai_reason", "anthropic_reason"),
    [
        ("end_turn", "stop", "end_turn"),
        ("stop_sequence", "stop", "stop_sequence"),
        ("max_tokens", "length", "max_tokens"),
        ("tool_use", "tool_calls", "tool_use"),
        ("content_filter", "content_filter", "refusal"),
        (None, "stop", "end_turn"),
    ],
)
def test_stop_reasons_out(stop, openai_reason, anthropic_reason):
    resp = ChatResponse(
        id="x",
        model="m",
        content=[TextPart(text="hi")],
        stop_reason=stop,
        stop_sequence="END" if stop == "stop_sequence" else None,
    )
    assert oc.response_from_canonical(resp)["choices"][0]["finish_reason"] == openai_reason
    out = am.response_from_canonical(resp)
    anthropic.types.Message.model_validate(out)
    assert out["stop_reason"] == anthropic_reason
    assert out["stop_sequence"] == resp.stop_sequence


def test_answers_without_usage_or_text():
    resp = ChatResponse(id="x", model="m", content=[])
    out = oc.response_from_canonical(resp)
    openai.types.chat.ChatCompletion.model_validate(out)
    assert "usage" not in out and out["choices"][0]["message"]["content"] == ""
    message = anthropic.types.Message.model_validate(am.response_from_canonical(resp))
    assert message.usage.input_tokens == 0 and message.content == []


def test_broken_tool_arguments_become_an_empty_input():
    resp = ChatResponse(
        id="x",
        model="m",
        content=[
            ToolCallPart(id="c", name="f", arguments='{"city": "Par'),
            ToolCallPart(id="d", name="g", arguments=""),
        ],
    )
    out = am.response_from_canonical(resp)
    assert [b["input"] for b in out["content"]] == [{}, {}]
