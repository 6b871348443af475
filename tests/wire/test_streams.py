"""Stream translation: provider stream -> canonical events -> client stream of the other
wire, checked event by event against the SDK types and end to end with the SDK helpers."""

import anthropic
import anthropic.types
import openai
import openai.types.chat
import orjson
import pydantic
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from openai.lib.streaming.chat import ChatCompletionStreamState

from sluicegate.errors import UpstreamHTTPError
from sluicegate.model.chat import (
    BlockStop,
    StreamStart,
    StreamStop,
    TextDelta,
    ToolArgsDelta,
    ToolCallStart,
    UsageReport,
)
from sluicegate.model.usage import Usage
from sluicegate.wire import anthropic_messages as am
from sluicegate.wire import openai_chat as oc
from sluicegate.wire.sse import SSEEvent
from tests.wire.fixtures import (
    ANTHROPIC_TEXT_STREAM,
    ANTHROPIC_TOOL_STREAM,
    OPENAI_TEXT_STREAM,
    OPENAI_TOOL_STREAM,
    anthropic_client,
    decode,
    openai_client,
    parse_all,
    sse_json,
    sse_response,
    translate,
)

RAW_EVENT = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)
USER = [{"role": "user", "content": "Weather in Paris?"}]


def openai_final(raw: bytes):
    """Validate every chunk with the SDK type and accumulate like the SDK helper does."""
    state = ChatCompletionStreamState()
    events = sse_json(raw)
    assert events[-1] == (None, None)  # data: [DONE]
    for _, data in events[:-1]:
        state.handle_chunk(openai.types.chat.ChatCompletionChunk.model_validate(data))
    return state.get_final_completion()


def anthropic_final(raw: bytes):
    snapshot, json_bufs = None, {}
    events = sse_json(raw)
    assert events[0][0] == "message_start" and events[-1][0] == "message_stop"
    for name, data in events:
        assert name == data["type"]  # the SDK dispatches on the event name
        snapshot = accumulate_event(
            event=RAW_EVENT.validate_python(data), current_snapshot=snapshot, json_bufs=json_bufs
        )
    return snapshot


# -- decoders --------------------------------------------------------------------------------


def test_openai_decoder_events():
    decoder = oc.StreamDecoder()
    events = decode(OPENAI_TOOL_STREAM, decoder)
    usage = Usage(input_tokens=100, output_tokens=20, cache_read_tokens=64, reasoning_tokens=5)
    assert events == [
        StreamStart(id="chatcmpl-Abc123", model="gpt-4o-2024-08-06"),
        TextDelta(index=0, text="Let me "),
        TextDelta(index=0, text="check."),
        BlockStop(index=0),
        ToolCallStart(index=1, id="call_a", name="get_weather"),
        ToolArgsDelta(index=1, partial_json='{"city":'),
        ToolArgsDelta(index=1, partial_json=' "Paris"}'),
        ToolCallStart(index=2, id="call_b", name="get_time"),
        ToolArgsDelta(index=2, partial_json="{}"),
        BlockStop(index=1),
        BlockStop(index=2),
        StreamStop(stop_reason="tool_use"),
        UsageReport(usage=usage),
    ]
    assert decoder.usage == usage
    assert decoder.model == "gpt-4o-2024-08-06"
    assert decoder.finished


def test_anthropic_decoder_events_skip_thinking():
    decoder = am.StreamDecoder()
    events = decode(ANTHROPIC_TOOL_STREAM, decoder)
    start_usage = Usage(
        input_tokens=100, output_tokens=1, cache_read_tokens=70, cache_write_tokens=20
    )
    final = Usage(input_tokens=100, output_tokens=55, cache_read_tokens=70, cache_write_tokens=20)
    assert events == [
        StreamStart(id="msg_01XYZ", model="claude-sonnet-4-5-20250929", usage=start_usage),
        TextDelta(index=1, text="Checking"),
        TextDelta(index=1, text=" now."),
        BlockStop(index=1),
        ToolCallStart(index=2, id="toolu_01A", name="get_weather"),
        ToolArgsDelta(index=2, partial_json='{"city": "Par'),
        ToolArgsDelta(index=2, partial_json='is"}'),
        BlockStop(index=2),
        ToolCallStart(index=3, id="toolu_01B", name="get_time"),
        ToolArgsDelta(index=3, partial_json="{}"),
        BlockStop(index=3),
        StreamStop(stop_reason="tool_use"),
        UsageReport(usage=final),
    ]
    assert decoder.usage == final
    assert decoder.finished


def test_decoders_are_not_finished_before_the_terminal_event():
    for raw, decoder in (
        (OPENAI_TEXT_STREAM, oc.StreamDecoder()),
        (ANTHROPIC_TEXT_STREAM, am.StreamDecoder()),
    ):
        events = parse_all(raw)
        for event in events[:-1]:
            decoder.feed(event)
        assert not decoder.finished
        decoder.feed(events[-1])
        assert decoder.finished


def test_openai_stream_without_usage_leaves_usage_unreported():
    decoder = oc.StreamDecoder()
    decode(OPENAI_TEXT_STREAM, decoder)
    assert decoder.usage == Usage()


def test_anthropic_message_delta_with_cumulative_input_counts():
    decoder = am.StreamDecoder()
    decoder.feed(parse_all(ANTHROPIC_TEXT_STREAM)[0])
    events = decoder.feed(
        SSEEvent(
            "message_delta",
            b'{"type":"message_delta","delta":'
            b'{"stop_reason":"end_turn","stop_sequence":null},"usage":'
            b'{"input_tokens":12,"output_tokens":9}}',
        )
    )
    # input_tokens grew to 12; the cache counts from message_start still add to it
    assert decoder.usage == Usage(
        input_tokens=102, output_tokens=9, cache_read_tokens=70, cache_write_tokens=20
    )
    assert events[-1] == UsageReport(usage=decoder.usage)


def test_mid_stream_errors_raise():
    with pytest.raises(UpstreamHTTPError) as caught:
        am.StreamDecoder().feed(
            SSEEvent(
                "error",
                b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
            )
        )
    assert caught.value.message == "Overloaded"
    assert caught.value.upstream_status == 529
    assert caught.value.code == "overloaded_error"
    with pytest.raises(UpstreamHTTPError) as caught:
        oc.StreamDecoder().feed(
            SSEEvent(None, b'{"error":{"message":"boom","type":"server_error","code":null}}')
        )
    assert caught.value.message == "boom" and caught.value.status == 502


# -- translated streams, chunk by chunk against the SDK types ---------------------------------


def test_anthropic_tool_stream_for_an_openai_client():
    raw = translate(ANTHROPIC_TOOL_STREAM, am.StreamDecoder(), oc.StreamEncoder(include_usage=True))
    completion = openai_final(raw)
    assert completion.id == "chatcmpl-01XYZ"
    assert completion.model == "claude-sonnet-4-5-20250929"
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Checking now."
    calls = [(c.id, c.function.name, c.function.arguments) for c in choice.message.tool_calls]
    assert calls == [
        ("toolu_01A", "get_weather", '{"city": "Paris"}'),
        ("toolu_01B", "get_time", "{}"),
    ]
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (100, 55, 155)
    assert usage.prompt_tokens_details.cached_tokens == 70


def test_openai_stream_usage_chunk_only_when_the_client_asked():
    raw = translate(
        ANTHROPIC_TEXT_STREAM, am.StreamDecoder(), oc.StreamEncoder(include_usage=False)
    )
    chunks = [data for _, data in sse_json(raw)[:-1]]
    assert all(chunk["choices"] for chunk in chunks)
    completion = openai_final(raw)
    assert completion.usage is None
    assert completion.choices[0].message.content == "Hello world"
    assert completion.choices[0].finish_reason == "stop"  # stop_sequence reads as stop


def test_openai_encoder_chunk_shapes():
    raw = translate(ANTHROPIC_TOOL_STREAM, am.StreamDecoder(), oc.StreamEncoder(include_usage=True))
    chunks = [data for _, data in sse_json(raw)[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    first_piece = chunks[3]["choices"][0]["delta"]["tool_calls"][0]
    assert first_piece == {
        "index": 0,
        "id": "toolu_01A",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    later_piece = chunks[4]["choices"][0]["delta"]["tool_calls"][0]
    assert later_piece == {"index": 0, "function": {"arguments": '{"city": "Par'}}
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]].count("tool_calls") == 1
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 55
    assert len({c["id"] for c in chunks}) == 1


def test_openai_tool_stream_for_an_anthropic_client():
    raw = translate(OPENAI_TOOL_STREAM, oc.StreamDecoder(), am.StreamEncoder())
    message = anthropic_final(raw)
    assert message.id == "msg_Abc123"
    assert message.model == "gpt-4o-2024-08-06"
    assert message.stop_reason == "tool_use"
    assert [b.type for b in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[0].text == "Let me check."
    assert (message.content[1].id, message.content[1].input) == ("call_a", {"city": "Paris"})
    assert (message.content[2].name, message.content[2].input) == ("get_time", {})
    # usage reached the client in message_delta: input excludes the 64 cached tokens
    assert message.usage.input_tokens == 36
    assert message.usage.cache_read_input_tokens == 64
    assert message.usage.output_tokens == 20


def test_anthropic_encoder_numbers_blocks_from_zero_and_brackets_them():
    raw = translate(ANTHROPIC_TOOL_STREAM, am.StreamDecoder(), am.StreamEncoder())
    events = sse_json(raw)
    starts = [d["index"] for n, d in events if n == "content_block_start"]
    stops = [d["index"] for n, d in events if n == "content_block_stop"]
    assert starts == stops == [0, 1, 2]
    message = anthropic_final(raw)
    assert message.usage.input_tokens == 10  # Anthropic -> Anthropic keeps its own convention
    assert message.usage.cache_read_input_tokens == 70
    assert message.usage.cache_creation_input_tokens == 20
    assert message.usage.output_tokens == 55


def test_text_only_openai_stream_for_an_anthropic_client():
    message = anthropic_final(translate(OPENAI_TEXT_STREAM, oc.StreamDecoder(), am.StreamEncoder()))
    assert message.content[0].text == "Hello world"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 0  # not reported: the client's required int is 0


def test_stop_sequence_survives_anthropic_to_anthropic():
    message = anthropic_final(
        translate(ANTHROPIC_TEXT_STREAM, am.StreamDecoder(), am.StreamEncoder(model="alias"))
    )
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "END")
    assert message.model == "alias"


def test_encoders_finish_a_stream_that_carried_nothing():
    completion = openai_final(oc.StreamEncoder(include_usage=True).finish())
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 0
    message = anthropic_final(am.StreamEncoder().finish())
    assert message.content == [] and message.stop_reason == "end_turn"


def test_encoders_close_what_the_source_left_open():
    """A source that never stops blocks or says why it stopped (a cut-off stream)."""
    events = [
        ToolCallStart(index=4, id="c1", name="f"),
        ToolArgsDelta(index=4, partial_json="{}"),
        TextDelta(index=7, text="after"),
        ToolCallStart(index=9, id="c2", name="g"),
    ]
    encoder = am.StreamEncoder()
    message = anthropic_final(b"".join(encoder.encode(e) for e in events) + encoder.finish())
    assert [b.type for b in message.content] == ["tool_use", "text", "tool_use"]
    assert message.stop_reason == "tool_use"
    encoder = oc.StreamEncoder(include_usage=False)
    completion = openai_final(b"".join(encoder.encode(e) for e in events) + encoder.finish())
    assert completion.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in completion.choices[0].message.tool_calls] == ["f", "g"]


# -- end to end with the SDK streaming helpers --------------------------------------------------


def test_openai_sdk_stream_helper_over_a_translated_anthropic_stream():
    raw = translate(ANTHROPIC_TOOL_STREAM, am.StreamDecoder(), oc.StreamEncoder(include_usage=True))
    client = openai_client(sse_response(raw))
    with client.chat.completions.stream(model="claude-alias", messages=USER) as stream:
        kinds = [event.type for event in stream]
        completion = stream.get_final_completion()
    assert "tool_calls.function.arguments.done" in kinds and "content.done" in kinds
    message = completion.choices[0].message
    assert message.content == "Checking now."
    assert [c.function.arguments for c in message.tool_calls] == ['{"city": "Paris"}', "{}"]
    assert completion.usage.completion_tokens == 55


def test_openai_sdk_plain_iteration():
    encoder = oc.StreamEncoder(include_usage=False)
    raw = translate(ANTHROPIC_TEXT_STREAM, am.StreamDecoder(), encoder)
    client = openai_client(sse_response(raw))
    chunks = list(client.chat.completions.create(model="m", messages=USER, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello world"


def test_anthropic_sdk_stream_helper_over_a_translated_openai_stream():
    raw = translate(OPENAI_TOOL_STREAM, oc.StreamDecoder(), am.StreamEncoder())
    client = anthropic_client(sse_response(raw))
    with client.messages.stream(model="gpt-alias", max_tokens=100, messages=USER) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert text == "Let me check."
    assert [b.type for b in message.content] == ["text", "tool_use", "tool_use"]
    assert message.content[1].input == {"city": "Paris"}
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (36, 20)


# -- provider quirks ------------------------------------------------------------------------


def _oa(chunk: dict) -> SSEEvent:
    base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return SSEEvent(None, orjson.dumps(base | chunk))


def test_openai_decoder_quirks_of_compatible_servers():
    decoder = oc.StreamDecoder()
    events = []
    for chunk in [
        # a whole tool call in one piece, without an id; a second choice (n=2) is ignored
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "role": "assistant",
                        "tool_calls": [
                            {"index": 0, "function": {"name": "f", "arguments": '{"a":1}'}}
                        ],
                    },
                },
                {"index": 1, "delta": {"content": "other choice"}},
            ]
        },
        # usage in the same chunk as finish_reason
        {
            "choices": [{"index": 0, "delta": {"refusal": "I can't."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        },
    ]:
        events.extend(decoder.feed(_oa(chunk)))
    start, tool, args, text, *rest = events
    assert isinstance(start, StreamStart)
    assert isinstance(tool, ToolCallStart) and tool.id.startswith("call_") and tool.name == "f"
    assert args == ToolArgsDelta(index=0, partial_json='{"a":1}')
    assert text == TextDelta(index=1, text="I can't.")
    assert rest == [
        BlockStop(index=1),
        BlockStop(index=0),
        StreamStop(stop_reason="end_turn"),
        UsageReport(usage=Usage(input_tokens=3, output_tokens=4)),
    ]
    assert decoder.feed(SSEEvent(None, b": not json")) == []


def test_anthropic_decoder_tool_input_given_whole_at_block_start():
    decoder = am.StreamDecoder()
    events = decoder.feed(
        SSEEvent(
            "content_block_start",
            orjson.dumps(
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {
                        "type": "tool_use",
                        "id": "toolu_9",
                        "name": "f",
                        "input": {"a": 1},
                    },
                }
            ),
        )
    )
    assert events == [
        ToolCallStart(index=0, id="toolu_9", name="f"),
        ToolArgsDelta(index=0, partial_json='{"a":1}'),
    ]
    assert decoder.feed(SSEEvent("ping", b'{"type":"ping"}')) == []
    assert decoder.feed(SSEEvent("brand_new_event", b'{"type":"brand_new_event"}')) == []
