"""POST /v1/messages (a `message`, or its event stream) and /v1/messages/count_tokens.

Usage follows Anthropic's convention: `input_tokens` counts only the uncached part of the
prompt; cache reads and writes are reported beside it, not inside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from sluicegate.emulator import ids
from sluicegate.emulator.anthropic_prompt import parse_messages_request
from sluicegate.emulator.gate import ApiCall
from sluicegate.emulator.prompt_cache import AnthropicCacheUse
from sluicegate.emulator.replies import (
    Ending,
    Reply,
    compose_reply,
    split_fixed,
    split_words,
)
from sluicegate.emulator.sse import anthropic_event
from sluicegate.emulator.tokens import canonical_json

_STOP_REASONS: dict[Ending, str] = {
    Ending.COMPLETE: "end_turn",
    Ending.STOP_SEQUENCE: "stop_sequence",
    Ending.LENGTH: "max_tokens",
    Ending.TOOL_CALL: "tool_use",
}


@dataclass(frozen=True)
class _Answer:
    id: str
    model: str
    reply: Reply
    tool_use_id: str
    input_usage: dict[str, Any]  # input_tokens and the cache counts

    def usage(self, output_tokens: int) -> dict[str, Any]:
        return {**self.input_usage, "output_tokens": output_tokens, "service_tier": "standard"}

    def blocks(self) -> list[dict[str, Any]]:
        """The finished content blocks; streams send the same blocks in pieces."""
        reply = self.reply
        blocks: list[dict[str, Any]] = []
        if reply.text or reply.tool_call is None:
            blocks.append({"type": "text", "text": reply.text})
        if reply.tool_call is not None:
            blocks.append(
                {
                    "type": "tool_use",
                    "id": self.tool_use_id,
                    "name": reply.tool_call.name,
                    "input": reply.tool_call.arguments,
                }
            )
        return blocks

    def message(self, content: list[dict[str, Any]], *, finished: bool) -> dict[str, Any]:
        reply = self.reply
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": _STOP_REASONS[reply.ending] if finished else None,
            "stop_sequence": reply.stop_sequence if finished else None,
            "usage": self.usage(reply.output_tokens if finished else 1),
        }


def messages(call: ApiCall) -> Response:
    request = parse_messages_request(call.body)
    cache = call.state.prompt_cache.anthropic_use(request.breakpoints)
    reply = compose_reply(request.conversation)
    tool_use_id = ids.tool_use_id() if reply.tool_call is not None else ""
    answer = _Answer(
        ids.message_id(),
        request.model,
        reply,
        tool_use_id,
        _input_usage(request.input_tokens, cache),
    )
    if request.stream:
        return call.stream(_events(answer))
    return call.json(answer.message(answer.blocks(), finished=True))


def count_tokens(call: ApiCall) -> Response:
    request = parse_messages_request(call.body, needs_max_tokens=False)
    return call.json({"input_tokens": request.input_tokens})


def _input_usage(prompt_tokens: int, cache: AnthropicCacheUse) -> dict[str, Any]:
    written_1h = cache.write_tokens if cache.write_ttl == "1h" else 0
    return {
        "input_tokens": prompt_tokens - cache.read_tokens - cache.write_tokens,
        "cache_creation_input_tokens": cache.write_tokens,
        "cache_read_input_tokens": cache.read_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": cache.write_tokens - written_1h,
            "ephemeral_1h_input_tokens": written_1h,
        },
    }


def _events(answer: _Answer) -> Iterator[bytes]:
    yield anthropic_event({"type": "message_start", "message": answer.message([], finished=False)})
    for index, block in enumerate(answer.blocks()):
        yield from _block_events(index, block)
    reply = answer.reply
    usage = {
        k: v
        for k, v in answer.usage(reply.output_tokens).items()
        if k not in ("cache_creation", "service_tier")
    }  # cumulative counts only
    yield anthropic_event(
        {
            "type": "message_delta",
            "delta": {
                "stop_reason": _STOP_REASONS[reply.ending],
                "stop_sequence": reply.stop_sequence,
            },
            "usage": usage,
        }
    )
    yield anthropic_event({"type": "message_stop"})


def _block_events(index: int, block: dict[str, Any]) -> Iterator[bytes]:
    if block["type"] == "text":
        yield anthropic_event(
            {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            }
        )
        deltas = [{"type": "text_delta", "text": piece} for piece in split_words(block["text"])]
    else:
        yield anthropic_event(
            {"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}}
        )
        arguments = canonical_json(block["input"])
        deltas = [
            {"type": "input_json_delta", "partial_json": piece}
            for piece in ["", *split_fixed(arguments)]
        ]
    if index == 0:  # the real API pings once, right after the first block opens
        yield anthropic_event({"type": "ping"})
    for delta in deltas:
        yield anthropic_event({"type": "content_block_delta", "index": index, "delta": delta})
    yield anthropic_event({"type": "content_block_stop", "index": index})
