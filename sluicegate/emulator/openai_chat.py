"""POST /v1/chat/completions: a `chat.completion`, or a stream of `chat.completion.chunk`
events ending in `data: [DONE]`."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from starlette.responses import Response

from sluicegate.emulator import ids
from sluicegate.emulator.gate import ApiCall
from sluicegate.emulator.openai_prompt import ChatRequest, parse_chat_request
from sluicegate.emulator.replies import (
    Ending,
    Reply,
    compose_reply,
    split_fixed,
    split_words,
)
from sluicegate.emulator.sse import OPENAI_DONE, openai_event

REASONING_MODEL_PREFIXES = ("o1", "o3", "o4", "gpt-5")

_FINISH_REASONS: dict[Ending, str] = {
    Ending.COMPLETE: "stop",
    Ending.STOP_SEQUENCE: "stop",
    Ending.LENGTH: "length",
    Ending.TOOL_CALL: "tool_calls",
}


@dataclass(frozen=True)
class _Answer:
    """Everything both the plain and the streamed response are built from."""

    id: str
    created: int
    model: str
    reply: Reply
    tool_call_id: str
    usage: dict[str, Any]

    def envelope(self, kind: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "service_tier": "default",
            "system_fingerprint": _fingerprint(self.model),
        }

    def tool_call_json(self) -> dict[str, Any] | None:
        call = self.reply.tool_call
        if call is None:
            return None
        return {
            "id": self.tool_call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments_json},
        }


def chat_completions(call: ApiCall) -> Response:
    chat = parse_chat_request(call.body)
    answer = _answer(call, chat)
    if chat.stream:
        return call.stream(_chunks(answer, chat.include_usage))
    return call.json(_completion(answer))


def is_reasoning_model(model: str) -> bool:
    return model.rsplit("/", 1)[-1].startswith(REASONING_MODEL_PREFIXES)


def _answer(call: ApiCall, chat: ChatRequest) -> _Answer:
    conversation = chat.conversation
    reasoning = _reasoning_tokens(chat) if is_reasoning_model(chat.model) else 0
    if conversation.max_tokens is not None:  # hidden reasoning spends the same budget
        conversation = replace(conversation, max_tokens=conversation.max_tokens - reasoning)
    reply = compose_reply(conversation)
    cached = call.state.prompt_cache.openai_cached_tokens(
        chat.model, chat.prompt_text, chat.prompt_tokens
    )
    completion_tokens = reply.output_tokens + reasoning
    usage = {
        "prompt_tokens": chat.prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": chat.prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    call_id = ids.tool_call_id() if reply.tool_call is not None else ""
    return _Answer(ids.chat_completion_id(), int(time.time()), chat.model, reply, call_id, usage)


def _reasoning_tokens(chat: ChatRequest) -> int:
    """64 to 256 hidden tokens, fixed per prompt; never more than half the budget."""
    digest = hashlib.sha256(chat.prompt_text.encode()).digest()
    tokens = 64 * (1 + digest[0] % 4)
    budget = chat.conversation.max_tokens
    return tokens if budget is None else min(tokens, max(1, budget // 2))


def _completion(answer: _Answer) -> dict[str, Any]:
    reply = answer.reply
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.text or None,
        "refusal": None,
        "annotations": [],
    }
    tool_call = answer.tool_call_json()
    if tool_call is not None:
        message["tool_calls"] = [tool_call]
    elif message["content"] is None:
        message["content"] = ""  # a text answer is a string even when cut to nothing
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": _FINISH_REASONS[reply.ending],
    }
    return {**answer.envelope("chat.completion"), "choices": [choice], "usage": answer.usage}


def _chunks(answer: _Answer, include_usage: bool) -> Iterator[bytes]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        data = {
            **answer.envelope("chat.completion.chunk"),
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if include_usage:
            data["usage"] = None
        return openai_event(data)

    reply = answer.reply
    tool_call = answer.tool_call_json()
    first: dict[str, Any] = {
        "role": "assistant",
        "content": "" if reply.text or not tool_call else None,
        "refusal": None,
    }
    if tool_call is not None and not reply.text:  # real streams open a call in the role chunk
        first["tool_calls"] = [_tool_call_header(tool_call)]
    yield chunk(first)
    for piece in split_words(reply.text):
        yield chunk({"content": piece})
    if tool_call is not None:
        if reply.text:
            yield chunk({"tool_calls": [_tool_call_header(tool_call)]})
        for piece in split_fixed(tool_call["function"]["arguments"]):
            yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
    yield chunk({}, _FINISH_REASONS[reply.ending])
    if include_usage:
        yield openai_event(
            {**answer.envelope("chat.completion.chunk"), "choices": [], "usage": answer.usage}
        )
    yield OPENAI_DONE


def _tool_call_header(tool_call: dict[str, Any]) -> dict[str, Any]:
    return {
        "index": 0,
        "id": tool_call["id"],
        "type": "function",
        "function": {"name": tool_call["function"]["name"], "arguments": ""},
    }


def _fingerprint(model: str) -> str:
    return "fp_" + hashlib.sha256(model.encode()).hexdigest()[:10]
