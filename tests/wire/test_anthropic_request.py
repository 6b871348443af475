import copy

import pytest

from sluicegate.errors import InvalidRequest
from sluicegate.model.chat import (
    ImagePart,
    ProviderPart,
    TextPart,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from sluicegate.wire import anthropic_messages as am

CACHE = {"type": "ephemeral"}


def body(**extra):
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hello there"}],
        **extra,
    }


# -- inspect_request -------------------------------------------------------------------------


def test_facts():
    facts = am.inspect_request(body(stream=True))
    assert facts.model == "claude-sonnet-4-5"
    assert facts.stream is True
    assert facts.max_output_tokens == 1024
    assert facts.include_usage is True
    assert facts.estimated_input_tokens == len("Hello there") // 4 + 4


def test_estimate_counts_system_tools_tool_use_results_and_images():
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "A" * 40000},
    }
    b = body(
        system=[{"type": "text", "text": "s" * 400}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "t" * 400}, image]},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "f", "input": {"q": "q" * 390}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [{"type": "text", "text": "r" * 400}],
                    }
                ],
            },
        ],
        tools=[{"name": "f", "description": "d" * 100, "input_schema": {"type": "object"}}],
    )
    estimate = am.inspect_request(b).estimated_input_tokens
    assert 400 + 800 + 12 <= estimate < 400 + 800 + 12 + 50


@pytest.mark.parametrize(
    ("bad", "param"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ({**body(), "max_tokens": 0}, "max_tokens"),
        ({**body(), "max_tokens": "many"}, "max_tokens"),
        ({**body(), "model": ""}, "model"),
        ({**body(), "messages": []}, "messages"),
        ({**body(), "messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        ({**body(), "messages": [{"role": "user"}]}, "messages[0].content"),
        (
            {**body(), "messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages[0].content[0].text",
        ),
        (
            {**body(), "messages": [{"role": "user", "content": [{"type": "image"}]}]},
            "messages[0].content[0].source",
        ),
        (
            {
                **body(),
                "messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": "t"}]}],
            },
            "messages[0].content[0].name",
        ),
        (
            {
                **body(),
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [{"type": "text", "text": 3}],
                            }
                        ],
                    }
                ],
            },
            "messages[0].content[0].content[0].text",
        ),
        ({**body(), "system": 5}, "system"),
        ({**body(), "tools": [{"name": "f"}]}, "tools[0].input_schema"),
        ({**body(), "tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({**body(), "tool_choice": {"type": "maybe"}}, "tool_choice.type"),
        ({**body(), "stop_sequences": "END"}, "stop_sequences"),
    ],
)
def test_bad_bodies_name_the_field(bad, param):
    with pytest.raises(InvalidRequest) as caught:
        am.inspect_request(bad)
    assert caught.value.param == param
    assert param in caught.value.message


def test_server_tools_thinking_and_documents_pass_inspection():
    facts = am.inspect_request(
        body(
            thinking={"type": "enabled", "budget_tokens": 2000},
            tools=[{"type": "web_search_20250305", "name": "web_search"}],
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "document",
                            "source": {
                                "type": "base64",
                                "media_type": "application/pdf",
                                "data": "JVBER",
                            },
                        }
                    ],
                }
            ],
        )
    )
    assert facts.model == "claude-sonnet-4-5"


def test_count_tokens_bodies_need_no_max_tokens():
    prompt = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "x" * 40}]}
    assert am.estimate_input_tokens(prompt) == 10 + 4
    with pytest.raises(InvalidRequest) as caught:
        am.estimate_input_tokens({"model": "m", "messages": [{"role": "user"}]})
    assert caught.value.param == "messages[0].content"


# -- passthrough -----------------------------------------------------------------------------


def test_passthrough_copy():
    original = body(stream=True, top_k=5)
    snapshot = copy.deepcopy(original)
    out = am.prepare_passthrough(original, "claude-sonnet-4-5-20250929", stream=True)
    assert out == {**snapshot, "model": "claude-sonnet-4-5-20250929"}
    assert original == snapshot


# -- to_canonical ----------------------------------------------------------------------------


def test_system_string_and_blocks_with_cache_control():
    assert [p.text for p in am.to_canonical(body(system="Be brief.")).system] == ["Be brief."]
    req = am.to_canonical(
        body(
            system=[
                {"type": "text", "text": "Long context", "cache_control": CACHE},
                {"type": "text", "text": "Rules"},
            ]
        )
    )
    assert req.system == [
        TextPart(text="Long context", cache_control=CACHE),
        TextPart(text="Rules"),
    ]


def test_blocks_become_parts():
    req = am.to_canonical(
        body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Look", "cache_control": CACHE},
                        {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                        {
                            "type": "image",
                            "source": {
                                "type": "base64",
                                "media_type": "image/png",
                                "data": "iVBOR",
                            },
                        },
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                        {"type": "text", "text": "Let me look."},
                        {
                            "type": "tool_use",
                            "id": "toolu_1",
                            "name": "look",
                            "input": {"q": "cat"},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_1",
                            "content": "a cat",
                            "is_error": True,
                        },
                        {
                            "type": "tool_result",
                            "tool_use_id": "toolu_2",
                            "content": [
                                {"type": "text", "text": "pic"},
                                {
                                    "type": "image",
                                    "source": {"type": "url", "url": "https://x.test/b.png"},
                                },
                            ],
                        },
                    ],
                },
            ]
        )
    )
    user, assistant, results = req.messages
    assert user.content == [
        TextPart(text="Look", cache_control=CACHE),
        ImagePart(url="https://x.test/a.png"),
        ImagePart(media_type="image/png", data="iVBOR"),
    ]
    assert assistant.content == [  # the thinking block is carried for Anthropic only
        ProviderPart(
            wire="anthropic", block={"type": "thinking", "thinking": "hmm", "signature": "sig"}
        ),
        TextPart(text="Let me look."),
        ToolCallPart(id="toolu_1", name="look", arguments='{"q":"cat"}'),
    ]
    assert results.content == [
        ToolResultPart(tool_call_id="toolu_1", content="a cat", is_error=True),
        ToolResultPart(
            tool_call_id="toolu_2",
            content=[TextPart(text="pic"), ImagePart(url="https://x.test/b.png")],
        ),
    ]


def test_parameters_tools_and_choice():
    req = am.to_canonical(
        body(
            temperature=0.3,
            top_p=0.9,
            top_k=40,
            stop_sequences=["END"],
            stream=True,
            metadata={"user_id": "u-1"},
            tools=[
                {
                    "name": "f",
                    "description": "F",
                    "input_schema": {"type": "object"},
                    "cache_control": CACHE,
                }
            ],
            tool_choice={"type": "any", "disable_parallel_tool_use": True},
        )
    )
    assert (req.max_tokens, req.temperature, req.top_p, req.stop) == (1024, 0.3, 0.9, ["END"])
    assert req.user == "u-1"
    assert req.stream is True
    assert req.tool_choice == ToolChoice(type="required")
    assert req.parallel_tool_calls is False
    assert req.tools[0].cache_control == CACHE
    assert req.tools[0].parameters == {"type": "object"}
    assert req.extra == {"anthropic": {"top_k": 40}}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ({"type": "auto"}, ToolChoice(type="auto")),
        ({"type": "none"}, ToolChoice(type="none")),
        ({"type": "tool", "name": "f"}, ToolChoice(type="tool", name="f")),
    ],
)
def test_tool_choices(kind, expected):
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    req = am.to_canonical(body(tools=tools, tool_choice=kind))
    assert req.tool_choice == expected
    assert req.parallel_tool_calls is None


@pytest.mark.parametrize(
    ("bad", "param"),
    [
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {"type": "text", "media_type": "text/plain", "data": "x"},
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].type",
        ),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0].type"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                    }
                ]
            },
            "messages[0].content[0].source",
        ),
    ],
)
def test_untranslatable_content_is_a_clear_400(bad, param):
    with pytest.raises(InvalidRequest) as caught:
        am.to_canonical(body(**bad))
    assert caught.value.param == param


# -- Anthropic -> canonical -> Anthropic keeps the request, cache_control included ---------------


def test_round_trip_through_canonical():
    original = body(
        system=[{"type": "text", "text": "Long context", "cache_control": CACHE}],
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look", "cache_control": CACHE},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Need a tool.", "signature": "EqQBCgIYAh"},
                    {"type": "redacted_thinking", "data": "EmwKAhgB"},
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_1", "name": "look", "input": {"q": "cat"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": "a cat",
                        "is_error": True,
                        "cache_control": CACHE,
                    },
                    {"type": "text", "text": "And now?"},
                ],
            },
        ],
        tools=[
            {
                "name": "look",
                "description": "Look",
                "input_schema": {"type": "object"},
                "cache_control": CACHE,
            }
        ],
        tool_choice={"type": "tool", "name": "look", "disable_parallel_tool_use": True},
        temperature=0.5,
        top_p=0.9,
        top_k=3,
        stop_sequences=["END"],
        metadata={"user_id": "u"},
        stream=True,
        thinking={"type": "enabled", "budget_tokens": 2048},
    )
    again = am.from_canonical(am.to_canonical(original), "claude-sonnet-4-5", stream=True)
    assert again == original


def test_plain_string_content_round_trips_as_blocks():
    again = am.from_canonical(am.to_canonical(body(system="S")), "m", stream=False)
    assert again["system"] == "S"
    assert again["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Hello there"}]}
    ]
    assert "stream" not in again
