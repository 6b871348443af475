"""OpenAI Chat Completions, the answer side: response bodies, usage, stop reasons, errors.
Re-exported by `sluicegate.wire.openai_chat`, which is the module callers import."""

from __future__ import annotations

import time
from typing import Any

import orjson

from sluicegate.errors import SluiceError, UpstreamError, UpstreamHTTPError
from sluicegate.model.chat import ChatResponse, Part, StopReason, TextPart, ToolCallPart
from sluicegate.model.usage import Usage
from sluicegate.wire.common import (
    client_message,
    load_object,
    new_id,
    provider_message,
    response_model,
)
from sluicegate.wire.common import retry_after as parse_retry_after
from sluicegate.wire.sse import encode_sse

_STOP_TO_CANONICAL: dict[str, StopReason] = {
    "stop": "end_turn",  # OpenAI does not say whether a stop sequence fired
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
}
_STOP_FROM_CANONICAL: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "content_filter": "content_filter",
}
# Mid-stream error chunks carry no HTTP status; this is the status the error type implies.
_STATUS_BY_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "insufficient_quota": 429,
}


def stop_to_canonical(reason: object) -> StopReason | None:
    return _STOP_TO_CANONICAL.get(reason) if isinstance(reason, str) else None


def stop_from_canonical(reason: StopReason | None) -> str:
    return _STOP_FROM_CANONICAL.get(reason or "end_turn", "stop")


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_from_dict(usage: object) -> Usage:
    """OpenAI's usage object. prompt_tokens already includes cached tokens (our convention)."""
    if not isinstance(usage, dict):
        return Usage()
    prompt = usage.get("prompt_tokens_details")
    completion = usage.get("completion_tokens_details")
    prompt = prompt if isinstance(prompt, dict) else {}
    completion = completion if isinstance(completion, dict) else {}
    return Usage(
        input_tokens=_int(usage.get("prompt_tokens")),
        output_tokens=_int(usage.get("completion_tokens")),
        cache_read_tokens=_int(prompt.get("cached_tokens")),
        cache_write_tokens=_int(prompt.get("cache_write_tokens")),  # some compatible servers
        reasoning_tokens=_int(completion.get("reasoning_tokens")),
    )


def usage_to_dict(usage: Usage) -> dict[str, Any]:
    """Our usage in OpenAI's shape. The three counts are required there, so an unreported
    count is written as 0 for the client; the ledger keeps the None."""
    prompt, completion = usage.input_tokens or 0, usage.output_tokens or 0
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    details: dict[str, int] = {}
    if usage.cache_read_tokens is not None:
        details["cached_tokens"] = usage.cache_read_tokens
    if usage.cache_write_tokens is not None:
        details["cache_write_tokens"] = usage.cache_write_tokens
    if details:
        out["prompt_tokens_details"] = details
    if usage.reasoning_tokens is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return out


def usage_from_response(body: dict[str, Any]) -> Usage:
    return usage_from_dict(body.get("usage"))


def chat_id(source_id: str) -> str:
    if source_id.startswith("chatcmpl-"):
        return source_id
    return "chatcmpl-" + (source_id.removeprefix("msg_") or new_id(""))


# -- response bodies -----------------------------------------------------------------------


def response_to_canonical(body: dict[str, Any]) -> ChatResponse:
    choices = body.get("choices")
    if not isinstance(choices, list):
        raise UpstreamError("The provider's answer is not a chat completion (no 'choices').")
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    return ChatResponse(
        id=str(body.get("id") or new_id("chatcmpl-")),
        model=response_model(body) or "",
        content=_message_parts(message),
        stop_reason=stop_to_canonical(choice.get("finish_reason")),
        usage=usage_from_response(body),
    )


def _message_parts(message: dict[str, Any]) -> list[Part]:
    parts: list[Part] = []
    content = message.get("content")
    if isinstance(content, list):  # a few compatible servers answer with text parts
        content = "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    if isinstance(content, str) and content:
        parts.append(TextPart(text=content))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append(TextPart(text=refusal))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        parts.append(
            ToolCallPart(
                id=str(call.get("id") or new_id("call_")),
                name=str(function.get("name") or ""),
                arguments=str(function.get("arguments") or ""),
            )
        )
    return parts


def response_from_canonical(resp: ChatResponse) -> dict[str, Any]:
    text = "".join(p.text for p in resp.content if isinstance(p, TextPart))
    calls = [
        {"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments}}
        for p in resp.content
        if isinstance(p, ToolCallPart)
    ]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text if text or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    body: dict[str, Any] = {
        "id": chat_id(resp.id),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": resp.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": stop_from_canonical(resp.stop_reason),
            }
        ],
    }
    if resp.usage.input_tokens is not None or resp.usage.output_tokens is not None:
        body["usage"] = usage_to_dict(resp.usage)
    return body


# -- errors --------------------------------------------------------------------------------


def parse_error(status: int, body: bytes, headers: dict[str, str]) -> UpstreamHTTPError:
    """A provider error answer as our error; the message is the provider's own."""
    obj = load_object(body) or {}
    error = obj.get("error", obj)
    if isinstance(error, str):  # some compatible servers send {"error": "text"}
        error = {"message": error}
    error = error if isinstance(error, dict) else {}
    kind = error.get("code") or error.get("type")
    return UpstreamHTTPError(
        provider_message(status, body, error.get("message")),
        upstream_status=status,
        retry_after=parse_retry_after(headers),
        provider_error_type=str(kind) if kind else None,
    )


def stream_error(error: object) -> UpstreamHTTPError:
    """An `{"error": {...}}` chunk inside a 200 stream."""
    error = error if isinstance(error, dict) else {"message": str(error)}
    kind = error.get("type")
    status = _STATUS_BY_TYPE.get(kind, 500) if isinstance(kind, str) else 500
    body = orjson.dumps({"error": error})
    return parse_error(status, body, {})


def render_error(exc: SluiceError, request_id: str) -> bytes:
    """Our error as an OpenAI error body (request_id travels in X-Sluice-Request-ID)."""
    error = {
        "message": client_message(exc),
        "type": exc.error_type,
        "param": exc.param,
        "code": exc.code,
    }
    return orjson.dumps({"error": error})


def render_stream_error(exc: SluiceError, request_id: str) -> bytes:
    """The same body as an SSE event, for an error after the stream began."""
    return encode_sse(render_error(exc, request_id))
