"""Provider traffic as the providers send it (hand-recorded shapes), and helpers to run it
through the codecs and the official SDKs without a network (httpx2 MockTransport)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import openai
import orjson

from sluicegate.model.chat import StreamEvent
from sluicegate.wire import Decoder, Encoder
from sluicegate.wire.sse import SSEEvent, SSEParser


def _oa_chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-Abc123",
        "object": "chat.completion.chunk",
        "created": 1730000000,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_1",
        "choices": choices,
        "usage": usage,
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _oa_delta(delta: dict[str, Any], finish: str | None = None) -> bytes:
    return _oa_chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])


def _call(
    index: int, *, id: str | None = None, name: str | None = None, args: str = ""
) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": {"arguments": args}}
    if id is not None:
        call |= {"id": id, "type": "function"}
        call["function"]["name"] = name
    return call


OPENAI_USAGE = {
    "prompt_tokens": 100,
    "completion_tokens": 20,
    "total_tokens": 120,
    "prompt_tokens_details": {"cached_tokens": 64, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 5, "audio_tokens": 0},
}

# Text, then two tool calls with arguments in pieces, finish, usage chunk, [DONE].
OPENAI_TOOL_STREAM = b"".join(
    [
        _oa_delta({"role": "assistant", "content": "", "refusal": None}),
        _oa_delta({"content": "Let me "}),
        _oa_delta({"content": "check."}),
        _oa_delta({"tool_calls": [_call(0, id="call_a", name="get_weather")]}),
        _oa_delta({"tool_calls": [_call(0, args='{"city":')]}),
        _oa_delta({"tool_calls": [_call(0, args=' "Paris"}')]}),
        _oa_delta({"tool_calls": [_call(1, id="call_b", name="get_time")]}),
        _oa_delta({"tool_calls": [_call(1, args="{}")]}),
        _oa_delta({}, "tool_calls"),
        _oa_chunk([], OPENAI_USAGE),
        b"data: [DONE]\n\n",
    ]
)

# Plain text without the usage chunk (the client did not ask, nor did anyone else).
OPENAI_TEXT_STREAM = b"".join(
    [
        _oa_delta({"role": "assistant", "content": ""}),
        _oa_delta({"content": "Hello"}),
        _oa_delta({"content": " world"}),
        _oa_delta({}, "stop"),
        b"data: [DONE]\n\n",
    ]
)


def _an(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


def _an_delta(index: int, delta: dict[str, Any]) -> bytes:
    return _an("content_block_delta", {"index": index, "delta": delta})


ANTHROPIC_MESSAGE_START = {
    "message": {
        "id": "msg_01XYZ",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 20,
            "cache_read_input_tokens": 70,
            "output_tokens": 1,
        },
    }
}

# A thinking block (skipped in translation), text, two tool_use blocks, ping, final usage.
ANTHROPIC_TOOL_STREAM = b"".join(
    [
        _an("message_start", ANTHROPIC_MESSAGE_START),
        _an(
            "content_block_start",
            {"index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        ),
        _an_delta(0, {"type": "thinking_delta", "thinking": "The user wants weather."}),
        _an_delta(0, {"type": "signature_delta", "signature": "c2ln"}),
        _an("content_block_stop", {"index": 0}),
        _an("content_block_start", {"index": 1, "content_block": {"type": "text", "text": ""}}),
        _an("ping", {}),
        _an_delta(1, {"type": "text_delta", "text": "Checking"}),
        _an_delta(1, {"type": "text_delta", "text": " now."}),
        _an("content_block_stop", {"index": 1}),
        _an(
            "content_block_start",
            {
                "index": 2,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_01A",
                    "name": "get_weather",
                    "input": {},
                },
            },
        ),
        _an_delta(2, {"type": "input_json_delta", "partial_json": ""}),
        _an_delta(2, {"type": "input_json_delta", "partial_json": '{"city": "Par'}),
        _an_delta(2, {"type": "input_json_delta", "partial_json": 'is"}'}),
        _an("content_block_stop", {"index": 2}),
        _an(
            "content_block_start",
            {
                "index": 3,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_01B",
                    "name": "get_time",
                    "input": {},
                },
            },
        ),
        _an_delta(3, {"type": "input_json_delta", "partial_json": "{}"}),
        _an("content_block_stop", {"index": 3}),
        _an(
            "message_delta",
            {
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 55},
            },
        ),
        _an("message_stop", {}),
    ]
)

ANTHROPIC_TEXT_STREAM = b"".join(
    [
        _an("message_start", ANTHROPIC_MESSAGE_START),
        _an("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        _an_delta(0, {"type": "text_delta", "text": "Hello"}),
        _an_delta(0, {"type": "text_delta", "text": " world"}),
        _an("content_block_stop", {"index": 0}),
        _an(
            "message_delta",
            {
                "delta": {"stop_reason": "stop_sequence", "stop_sequence": "END"},
                "usage": {"output_tokens": 7},
            },
        ),
        _an("message_stop", {}),
    ]
)


def parse_all(raw: bytes) -> list[SSEEvent]:
    return SSEParser().feed(raw)


def decode(raw: bytes, decoder: Decoder) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    for sse in parse_all(raw):
        events.extend(decoder.feed(sse))
    return events


def translate(raw: bytes, decoder: Decoder, encoder: Encoder) -> bytes:
    """A provider stream through one wire's decoder and another's encoder."""
    out = b"".join(encoder.encode(event) for event in decode(raw, decoder))
    return out + encoder.finish()


def sse_json(raw: bytes) -> list[tuple[str | None, Any]]:
    return [
        (e.event, None if e.data == b"[DONE]" else orjson.loads(e.data)) for e in parse_all(raw)
    ]


Handler = Callable[[httpx2.Request], httpx2.Response]


def sse_response(body: bytes) -> Handler:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return handler


def json_response(body: bytes, status: int = 200) -> Handler:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(status, headers={"content-type": "application/json"}, content=body)

    return handler


def openai_client(handler: Handler) -> openai.OpenAI:
    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    return openai.OpenAI(
        api_key="sk-test", base_url="http://gw.test/v1", http_client=http, max_retries=0
    )


def anthropic_client(handler: Handler) -> anthropic.Anthropic:
    http = httpx2.Client(transport=httpx2.MockTransport(handler))
    return anthropic.Anthropic(
        api_key="sk-ant-test", base_url="http://gw.test", http_client=http, max_retries=0
    )
