"""The four guardrail hooks in the request's path, driven through the SDKs in process."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from sluicegate.guardrails import (
    Block,
    GuardrailPhases,
    Mutate,
    ReplyView,
    RequestView,
    StreamView,
)
from sluicegate.model.chat import TextDelta, TextPart, ToolCallPart
from sluicegate.model.request import ClientApi
from tests.guardrails.conftest import Harness, Watcher

HELLO = [{"role": "user", "content": "Hello there"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_no_rules_means_no_hook_runs():
    """What the pipeline holds until guardrails are configured: two false booleans, no
    stream watch (the stream is relayed as is)."""
    phases = GuardrailPhases()
    assert not phases.on_request and not phases.on_reply
    assert phases.watch_stream(ClientApi.OPENAI_CHAT, []) is None
    only_output = GuardrailPhases([Watcher("out", frozenset({"request_output"}))])
    assert not only_output.on_request and only_output.on_reply


async def test_a_block_at_request_input_costs_no_upstream_call_and_the_ledger_says_why(
    gw: Harness,
):
    gw.guard(Watcher("no-secrets", frozenset({"request_input"}), Block("a secret was found")))
    with pytest.raises(openai.BadRequestError) as caught:
        await gw.openai.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    error = caught.value
    assert error.status_code == 400 and error.code == "guardrail_blocked"
    assert "no-secrets" in error.message and "a secret was found" in error.message
    assert gw.upstream.calls == []
    row = await gw.ledger_row(error.response.headers["x-sluice-request-id"])
    assert row["status_code"] == 400 and row["error_type"] == "guardrail_blocked"
    assert row["attempt_count"] == 0 and row["provider"] is None
    assert row["guardrail_events"] == [
        {
            "guardrail": "no-secrets",
            "phase": "request_input",
            "action": "block",
            "detail": "a secret was found",
        }
    ]


async def test_a_block_is_answered_in_the_format_of_the_api_the_client_spoke(gw: Harness):
    gw.guard(Watcher("no-secrets", frozenset({"request_input"}), Block("a secret was found")))
    with pytest.raises(anthropic.BadRequestError) as caught:
        await gw.anthropic.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=HELLO)
    body = caught.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "a secret was found" in body["error"]["message"]
    assert gw.upstream.calls == []


async def test_request_input_is_shown_the_canonical_request_and_may_rewrite_it(gw: Harness):
    """A Mutate sends the rewritten request upstream, in the client's wire format."""
    watcher = Watcher("redact", frozenset({"request_input"}))

    async def redact(phase, view):
        watcher.seen.append((phase, view))
        assert isinstance(view, RequestView)
        request = view.canonical
        request.messages[-1].content = [TextPart(text="Hello [redacted]")]
        return Mutate(request, detail="1 name redacted")

    watcher.check = redact  # type: ignore[method-assign]
    gw.guard(watcher)
    raw = await gw.openai.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello Bob"}]
    )
    completion = raw.parse()
    assert "Hello [redacted]" in completion.choices[0].message.content
    assert "Bob" not in completion.choices[0].message.content
    sent = json.loads(gw.upstream.calls[0][3])
    assert sent["messages"][-1]["content"] == "Hello [redacted]"
    row = await gw.ledger_row(raw.headers["x-sluice-request-id"])
    assert row["status_code"] == 200
    assert row["guardrail_events"][0]["action"] == "mutate"
    assert row["guardrail_events"][0]["detail"] == "1 name redacted"


async def test_request_output_observes_a_non_streamed_reply(gw: Harness):
    watcher = Watcher("observe", frozenset({"request_output"}))
    gw.guard(watcher)
    completion = await gw.openai.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    ((phase, view),) = watcher.seen
    assert phase == "request_output" and isinstance(view, ReplyView)
    (part,) = view.canonical.content
    assert isinstance(part, TextPart) and part.text == completion.choices[0].message.content


async def test_request_output_observes_a_streamed_reply_chunk_by_chunk(gw: Harness):
    watcher = Watcher("observe", frozenset({"request_output"}))
    gw.guard(watcher)
    async with gw.anthropic.messages.stream(
        model="claude-haiku-4-5", max_tokens=200, messages=HELLO
    ) as stream:
        final = await stream.get_final_message()
    assert len(watcher.seen) > 1 and {phase for phase, _ in watcher.seen} == {"request_output"}
    views = [view for _, view in watcher.seen]
    assert all(isinstance(view, StreamView) for view in views)
    text = "".join(e.text for v in views for e in v.events if isinstance(e, TextDelta))
    assert text == final.content[0].text


async def test_a_block_on_the_reply_still_settles_its_tokens(gw: Harness):
    """The model answered, the guardrail refused the answer: the client gets the error,
    the ledger keeps the usage and cost the provider charged for."""
    gw.guard(Watcher("no-answers", frozenset({"request_output"}), Block("not today")))
    with pytest.raises(openai.BadRequestError) as caught:
        await gw.openai.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    row = await gw.ledger_row(caught.value.response.headers["x-sluice-request-id"])
    assert row["error_type"] == "guardrail_blocked" and row["attempt_count"] == 1
    assert row["output_tokens"] and row["cost_usd"] is not None
    assert row["guardrail_events"][0]["phase"] == "request_output"


async def test_a_block_on_a_stream_ends_it_in_band_before_the_chunk(gw: Harness):
    gw.guard(Watcher("no-answers", frozenset({"request_output"}), Block("not today")))
    response = await gw.http.post(
        "/v1/chat/completions",
        headers={"authorization": f"Bearer {gw.key}"},
        json={"model": "gpt-4o-mini", "messages": HELLO, "stream": True},
    )
    assert response.status_code == 200  # the status line went out with the headers
    data = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert len(data) == 1 and json.loads(data[0])["error"]["code"] == "guardrail_blocked"
    row = await gw.ledger_row(response.headers["x-sluice-request-id"])
    assert row["status_code"] == 400 and row["error_type"] == "guardrail_blocked"


async def test_tool_input_and_tool_output_on_a_tool_call_round_trip(gw: Harness):
    """The model calls a tool (tool input: the call it emits), the client sends the
    result back (tool output: the result it returns to the model)."""
    tool_input = Watcher("tool-calls", frozenset({"tool_input"}))
    tool_output = Watcher("tool-results", frozenset({"tool_output"}))
    gw.guard(tool_input, tool_output)
    asked = await gw.openai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice="required",
    )
    (call,) = asked.choices[0].message.tool_calls
    ((phase, view),) = tool_input.seen
    assert phase == "tool_input" and isinstance(view, ReplyView)
    assert [(c.id, c.name, c.arguments) for c in view.tool_calls] == [
        (call.id, "get_weather", call.function.arguments)
    ]
    assert tool_output.seen == []  # the first request carried no tool result

    await gw.openai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "user", "content": "What is the weather in Paris?"},
            asked.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
        ],
        tools=[WEATHER_TOOL],
    )
    ((phase, view),) = tool_output.seen
    assert phase == "tool_output" and isinstance(view, RequestView)
    (result,) = view.tool_results
    assert result.tool_call_id == call.id and result.content == "18C and sunny"
    assert len(tool_input.seen) == 1  # the answer to the result called no tool


async def test_tool_input_sees_a_streamed_tool_call_once_whole(gw: Harness):
    tool_input = Watcher("tool-calls", frozenset({"tool_input"}))
    gw.guard(tool_input)
    async with gw.anthropic.messages.stream(
        model="claude-haiku-4-5",
        max_tokens=200,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[
            {
                "name": "get_weather",
                "description": "Weather in a city",
                "input_schema": WEATHER_TOOL["function"]["parameters"],
            }
        ],
        tool_choice={"type": "any"},
    ) as stream:
        final = await stream.get_final_message()
    (use,) = [block for block in final.content if block.type == "tool_use"]
    calls = [c for _, view in tool_input.seen for c in view.tool_calls]  # type: ignore[union-attr]
    assert calls == [ToolCallPart(id=use.id, name="get_weather", arguments=calls[0].arguments)]
    assert json.loads(calls[0].arguments) == use.input
