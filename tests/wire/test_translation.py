"""Requests that cross wires: a client body of one format as a provider body of the other."""

import pytest

from sluicegate.wire import anthropic_messages as am
from sluicegate.wire import openai_chat as oc

CACHE = {"type": "ephemeral"}
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def openai_to_anthropic(body, stream=False):
    return am.from_canonical(oc.to_canonical(body), "claude-sonnet-4-5", stream=stream)


def anthropic_to_openai(body, stream=False):
    return oc.from_canonical(am.to_canonical(body), "gpt-4o", stream=stream)


OPENAI_AGENT_TURN = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "You are a weather bot."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather here and there?"},
                {"type": "image_url", "image_url": {"url": "https://x.test/map.png"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "functions.get_weather:1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
        {"role": "tool", "tool_call_id": "functions.get_weather:1", "content": "Snow"},
        {"role": "user", "content": "Which is warmer?"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": WEATHER,
            },
        }
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "temperature": 1.6,
    "top_p": 0.9,
    "stop": ["DONE"],
    "user": "user-42",
    "seed": 7,
    "response_format": {"type": "text"},
}


def test_openai_agent_turn_as_anthropic():
    out = openai_to_anthropic(OPENAI_AGENT_TURN, stream=True)
    assert out == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 4096,  # required on Anthropic, absent from the OpenAI body
        "system": "You are a weather bot.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather here and there?"},
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/map.png"}},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "call_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                    {
                        "type": "tool_use",
                        "id": "functions_get_weather_1",
                        "name": "get_weather",
                        "input": {"city": "Oslo"},
                    },
                ],
            },
            # both tool messages and the next user message form one user turn, results first
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "Sunny"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "functions_get_weather_1",
                        "content": "Snow",
                    },
                    {"type": "text", "text": "Which is warmer?"},
                ],
            },
        ],
        "tools": [
            {"name": "get_weather", "description": "Weather for a city", "input_schema": WEATHER}
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "temperature": 1.0,  # clamped: Anthropic's range is 0..1
        "top_p": 0.9,
        "stop_sequences": ["DONE"],
        "metadata": {"user_id": "user-42"},
        "stream": True,
    }
    am.inspect_request(out)  # and it is a body our own Anthropic validation accepts


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
    ],
)
def test_openai_tool_choice_as_anthropic(choice, expected):
    body = {**OPENAI_AGENT_TURN, "tool_choice": choice}
    del body["parallel_tool_calls"]
    assert openai_to_anthropic(body)["tool_choice"] == expected


def test_openai_max_tokens_and_no_tools():
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "max_completion_tokens": 77,
        "parallel_tool_calls": True,
    }
    out = openai_to_anthropic(body)
    assert out == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 77,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 12}
    assert openai_to_anthropic(body)["max_tokens"] == 12


def test_several_system_messages_join():
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "A"},
            {"role": "developer", "content": "B"},
            {"role": "user", "content": "hi"},
        ],
    }
    assert openai_to_anthropic(body)["system"] == [
        {"type": "text", "text": "A"},
        {"type": "text", "text": "B"},
    ]


ANTHROPIC_AGENT_TURN = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 500,
    "system": [
        {"type": "text", "text": "You are a weather bot.", "cache_control": CACHE},
        {"type": "text", "text": "Be brief."},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather?", "cache_control": CACHE},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "...", "signature": "s"},
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "radar", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "Sunny"}, {"type": "text", "text": "21C"}],
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "is_error": True,
                    "content": [
                        {"type": "text", "text": "radar offline"},
                        {"type": "image", "source": {"type": "url", "url": "https://x.test/r.png"}},
                    ],
                },
                {"type": "text", "text": "So?"},
            ],
        },
    ],
    "tools": [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": WEATHER,
            "cache_control": CACHE,
        },
        {"name": "radar", "input_schema": {"type": "object"}},
    ],
    "tool_choice": {"type": "any"},
    "temperature": 0.2,
    "top_k": 10,
    "stop_sequences": ["DONE", "STOP"],
    "metadata": {"user_id": "user-42"},
    "stream": True,
}


def test_anthropic_agent_turn_as_openai():
    out = anthropic_to_openai(ANTHROPIC_AGENT_TURN, stream=True)
    assert out == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a weather bot.\nBe brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather?"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "toolu_2",
                        "type": "function",
                        "function": {"name": "radar", "arguments": "{}"},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "Sunny\n21C"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: radar offline"},
            # tool messages carry text only; the image and the user's text follow them
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "https://x.test/r.png"}},
                    {"type": "text", "text": "So?"},
                ],
            },
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": WEATHER,
                    "description": "Weather for a city",
                },
            },
            {"type": "function", "function": {"name": "radar", "parameters": {"type": "object"}}},
        ],
        "tool_choice": "required",
        "max_completion_tokens": 500,
        "temperature": 0.2,
        "stop": ["DONE", "STOP"],
        "user": "user-42",
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    oc.inspect_request(out)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "radar"}, {"type": "function", "function": {"name": "radar"}}),
    ],
)
def test_anthropic_tool_choice_as_openai(choice, expected):
    out = anthropic_to_openai({**ANTHROPIC_AGENT_TURN, "tool_choice": choice})
    assert out["tool_choice"] == expected
    assert "parallel_tool_calls" not in out


def test_disable_parallel_tool_use_as_openai():
    body = {
        **ANTHROPIC_AGENT_TURN,
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    }
    out = anthropic_to_openai(body)
    assert (out["tool_choice"], out["parallel_tool_calls"]) == ("auto", False)


def test_round_trip_across_both_wires_keeps_the_conversation():
    """Anthropic -> OpenAI -> Anthropic: what both formats can express survives."""
    there = anthropic_to_openai(ANTHROPIC_AGENT_TURN)
    back = am.from_canonical(oc.to_canonical(there), "claude-sonnet-4-5", stream=False)
    assert back["messages"][1]["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "radar", "input": {}},
    ]
    assert [b["type"] for b in back["messages"][2]["content"]] == [
        "tool_result",
        "tool_result",
        "image",
        "text",
    ]
    assert back["tool_choice"] == {"type": "any"}
    assert back["stop_sequences"] == ["DONE", "STOP"]
    assert back["metadata"] == {"user_id": "user-42"}
