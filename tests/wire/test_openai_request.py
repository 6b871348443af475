import copy

import pytest

from sluicegate.errors import InvalidRequest
from sluicegate.model.chat import ImagePart, TextPart, ToolCallPart, ToolChoice, ToolResultPart
from sluicegate.wire import openai_chat as oc


def body(**extra):
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello there"}], **extra}


# -- inspect_request -------------------------------------------------------------------------


def test_facts_for_a_plain_request():
    facts = oc.inspect_request(body())
    assert facts.model == "gpt-4o"
    assert facts.stream is False
    assert facts.max_output_tokens is None
    assert facts.include_usage is False
    assert facts.estimated_input_tokens == len("Hello there") // 4 + 4


def test_facts_for_a_stream_with_usage_and_max_tokens():
    facts = oc.inspect_request(
        body(
            stream=True,
            stream_options={"include_usage": True},
            max_completion_tokens=300,
            max_tokens=100,
        )
    )
    assert (facts.stream, facts.include_usage, facts.max_output_tokens) == (True, True, 300)
    assert oc.inspect_request(body(max_tokens=100)).max_output_tokens == 100


def test_include_usage_only_counts_for_streams():
    assert not oc.inspect_request(body(stream_options={"include_usage": True})).include_usage


def test_estimate_counts_text_tools_and_images_but_not_base64():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 40000}}
    b = body(
        messages=[
            {"role": "system", "content": "s" * 400},
            {"role": "user", "content": [{"type": "text", "text": "t" * 400}, image]},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "c",
                        "type": "function",
                        "function": {"name": "f", "arguments": "a" * 399},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": "r" * 400},
        ],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "f",
                    "description": "d" * 100,
                    "parameters": {"type": "object"},
                },
            }
        ],
    )
    estimate = oc.inspect_request(b).estimated_input_tokens
    assert 400 + 800 + 16 <= estimate < 400 + 800 + 16 + 50


@pytest.mark.parametrize(
    ("bad", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": 5, "messages": []}, "model"),
        ({"model": "", "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"content": "x"}]}, "messages[0].role"),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}, {"role": "user", "content": 5}],
            },
            "messages[1].content",
        ),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"text": "x"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
        ),
        (
            {"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c"}]}]},
            "messages[0].tool_calls[0].function",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
            "max_tokens",
        ),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": "yes"}, "stream"),
        (
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
            "temperature",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"description": "no name"}}],
            },
            "tools[0].function.name",
        ),
    ],
)
def test_bad_bodies_name_the_field(bad, param):
    with pytest.raises(InvalidRequest) as caught:
        oc.inspect_request(bad)
    assert caught.value.param == param
    assert param in caught.value.message
    assert caught.value.status == 400


def test_a_body_that_is_not_an_object():
    with pytest.raises(InvalidRequest):
        oc.inspect_request([1, 2])  # type: ignore[arg-type]


def test_unknown_fields_and_newer_part_types_pass_inspection():
    facts = oc.inspect_request(
        body(
            seed=1,
            response_format={"type": "json_object"},
            messages=[
                {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x"}}]}
            ],
        )
    )
    assert facts.model == "gpt-4o"


# -- passthrough -----------------------------------------------------------------------------


def test_passthrough_is_a_shallow_copy_with_the_model_replaced():
    original = body(temperature=0.3, seed=9)
    snapshot = copy.deepcopy(original)
    out = oc.prepare_passthrough(original, "gpt-4o-2024-08-06", stream=False)
    assert out == {**snapshot, "model": "gpt-4o-2024-08-06"}
    assert original == snapshot
    assert out["messages"] is original["messages"]  # no deep copy on the hot path


def test_passthrough_stream_always_asks_for_usage():
    original = body(stream=True, stream_options={"include_usage": False, "other": 1})
    out = oc.prepare_passthrough(original, "m2", stream=True)
    assert out["stream_options"] == {"include_usage": True, "other": 1}
    assert original["stream_options"] == {"include_usage": False, "other": 1}
    assert oc.prepare_passthrough(body(stream=True), "m", stream=True)["stream_options"] == {
        "include_usage": True
    }


# -- to_canonical ----------------------------------------------------------------------------


def test_system_and_developer_messages_become_system_parts():
    req = oc.to_canonical(
        body(
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                {"role": "user", "content": "Hi"},
            ]
        )
    )
    assert [p.text for p in req.system] == ["Be brief.", "Use French."]
    assert len(req.messages) == 1


def test_images_by_url_and_data_uri():
    req = oc.to_canonical(
        body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "https://x.test/a.png", "detail": "high"},
                        },
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/jpeg;base64,/9j/AAA="},
                        },
                    ],
                }
            ]
        )
    )
    assert req.messages[0].content == [
        TextPart(text="Compare"),
        ImagePart(url="https://x.test/a.png", detail="high"),
        ImagePart(media_type="image/jpeg", data="/9j/AAA="),
    ]


def test_bad_data_uri_names_the_field():
    with pytest.raises(InvalidRequest) as caught:
        oc.to_canonical(
            body(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png,raw"}}
                        ],
                    }
                ]
            )
        )
    assert caught.value.param == "messages[0].content[0].image_url.url"


def test_tool_calls_and_consecutive_tool_results():
    req = oc.to_canonical(
        body(
            messages=[
                {"role": "user", "content": "Weather and time?"},
                {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "time", "arguments": "{}"},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
                {
                    "role": "tool",
                    "tool_call_id": "call_2",
                    "content": [{"type": "text", "text": "noon"}],
                },
                {"role": "user", "content": "Thanks"},
            ]
        )
    )
    roles = [m.role for m in req.messages]
    assert roles == ["user", "assistant", "user", "user"]
    assert req.messages[1].content == [
        TextPart(text="Checking."),
        ToolCallPart(id="call_1", name="weather", arguments='{"city":"Paris"}'),
        ToolCallPart(id="call_2", name="time", arguments="{}"),
    ]
    assert req.messages[2].content == [
        ToolResultPart(tool_call_id="call_1", content="Sunny"),
        ToolResultPart(tool_call_id="call_2", content=[TextPart(text="noon")]),
    ]


def test_parameters_and_unknown_params_kept_for_openai():
    req = oc.to_canonical(
        body(
            max_tokens=50,
            temperature=0.2,
            top_p=0.9,
            stop="END",
            user="u-1",
            seed=7,
            n=1,
            parallel_tool_calls=False,
            stream=True,
            stream_options={"include_usage": True},
            tools=[{"type": "function", "function": {"name": "f"}}],
            tool_choice={"type": "function", "function": {"name": "f"}},
        )
    )
    assert (req.max_tokens, req.temperature, req.top_p) == (50, 0.2, 0.9)
    assert req.stop == ["END"]
    assert req.user == "u-1"
    assert req.stream is True
    assert req.parallel_tool_calls is False
    assert req.tool_choice == ToolChoice(type="tool", name="f")
    assert req.tools[0].parameters == {"type": "object", "properties": {}}
    assert req.extra == {"openai": {"seed": 7, "n": 1}}


@pytest.mark.parametrize("choice", ["auto", "none", "required"])
def test_string_tool_choices(choice):
    req = oc.to_canonical(
        body(tools=[{"type": "function", "function": {"name": "f"}}], tool_choice=choice)
    )
    assert req.tool_choice == ToolChoice(type=choice)


@pytest.mark.parametrize(
    ("bad", "param"),
    [
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "messages[0].content[0].type",
        ),
        ({"messages": [{"role": "function", "content": "x", "name": "f"}]}, "messages[0].role"),
        ({"tools": [{"type": "custom", "custom": {"name": "g"}}]}, "tools[0].type"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
    ],
)
def test_untranslatable_content_is_a_clear_400(bad, param):
    with pytest.raises(InvalidRequest) as caught:
        oc.to_canonical(body(**bad))
    assert caught.value.param == param


# -- from_canonical: OpenAI -> canonical -> OpenAI keeps the request ---------------------------


def test_round_trip_through_canonical():
    original = body(
        messages=[
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "look", "arguments": '{"q":1}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
            {"role": "user", "content": "Thanks"},
        ],
        tools=[
            {
                "type": "function",
                "function": {
                    "name": "look",
                    "description": "Look it up",
                    "parameters": {"type": "object"},
                },
            }
        ],
        tool_choice="auto",
        parallel_tool_calls=True,
        max_completion_tokens=64,
        temperature=0.5,
        top_p=0.8,
        stop=["X"],
        user="u",
        seed=3,
    )
    again = oc.from_canonical(oc.to_canonical(original), "gpt-4o", stream=False)
    assert again == original


def test_from_canonical_stream_always_asks_for_usage():
    out = oc.from_canonical(oc.to_canonical(body()), "gpt-4o", stream=True)
    assert out["stream"] is True
    assert out["stream_options"] == {"include_usage": True}
