"""Anthropic Messages, the answer side: response bodies, usage, stop reasons, errors.
Re-exported by `sluicegate.wire.anthropic_messages`, which is the module callers import."""

from __future__ import annotations

from typing import Any

import orjson

from sluicegate.errors import SluiceError, UpstreamError, UpstreamHTTPError
from sluicegate.model.chat import ChatResponse, Part, StopReason, TextPart, ToolCallPart
from sluicegate.model.usage import Usage
from sluicegate.wire.common import (
    client_message,
    dump_arguments,
    load_object,
    new_id,
    parse_arguments,
    provider_message,
    response_model,
)
from sluicegate.wire.common import retry_after as parse_retry_after
from sluicegate.wire.sse import encode_sse

_STOP_TO_CANONICAL: dict[str, StopReason] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_use",
    "refusal": "content_filter",
    "pause_turn": "end_turn",  # a server tool paused the turn; the text so far is complete
    "model_context_window_exceeded": "max_tokens",
}
# Anthropic's error type for each status it documents; others fall back by class (4xx/5xx).
_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_STATUS_BY_TYPE = {
    kind: status for status, kind in _TYPE_BY_STATUS.items() if status not in (502, 503)
}  # api_error is 500


def stop_to_canonical(reason: object) -> StopReason | None:
    return _STOP_TO_CANONICAL.get(reason) if isinstance(reason, str) else None


def stop_from_canonical(reason: StopReason | None) -> str | None:
    if reason == "content_filter":
        return "refusal"
    return reason


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_from_dict(usage: object) -> Usage:
    """Anthropic's usage in our convention: input_tokens is the total prompt, so the cache
    reads and writes Anthropic counts apart are added back."""
    if not isinstance(usage, dict):
        return Usage()
    uncached = _int(usage.get("input_tokens"))
    written = _int(usage.get("cache_creation_input_tokens"))
    read = _int(usage.get("cache_read_input_tokens"))
    details = usage.get("output_tokens_details")
    thinking = _int(details.get("thinking_tokens")) if isinstance(details, dict) else None
    return Usage(
        input_tokens=None if uncached is None else uncached + (written or 0) + (read or 0),
        output_tokens=_int(usage.get("output_tokens")),
        cache_read_tokens=read,
        cache_write_tokens=written,
        reasoning_tokens=thinking,
    )


def usage_to_dict(usage: Usage) -> dict[str, Any]:
    """Our usage in Anthropic's shape: input_tokens excludes cache reads and writes. The two
    counts are required there, so an unreported one is written as 0 for the client."""
    cached = (usage.cache_read_tokens or 0) + (usage.cache_write_tokens or 0)
    out: dict[str, Any] = {
        "input_tokens": max((usage.input_tokens or 0) - cached, 0),
        "output_tokens": usage.output_tokens or 0,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cache_read_tokens,
    }
    if usage.reasoning_tokens is not None:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


def usage_from_response(body: dict[str, Any]) -> Usage:
    return usage_from_dict(body.get("usage"))


def message_id(source_id: str) -> str:
    if source_id.startswith("msg_"):
        return source_id
    return "msg_" + (source_id.removeprefix("chatcmpl-") or new_id(""))


# -- response bodies -----------------------------------------------------------------------


def response_to_canonical(body: dict[str, Any]) -> ChatResponse:
    blocks = body.get("content")
    if not isinstance(blocks, list):
        raise UpstreamError("The provider's answer is not a message (no 'content').")
    parts: list[Part] = []
    for block in blocks:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and block.get("text"):
            parts.append(TextPart(text=block["text"]))
        elif kind == "tool_use":
            parts.append(
                ToolCallPart(
                    id=str(block.get("id") or new_id("toolu_")),
                    name=str(block.get("name") or ""),
                    arguments=dump_arguments(block.get("input") or {}),
                )
            )
        # thinking and server-tool blocks have no counterpart in the canonical answer
    return ChatResponse(
        id=str(body.get("id") or new_id("msg_")),
        model=response_model(body) or "",
        content=parts,
        stop_reason=stop_to_canonical(body.get("stop_reason")),
        stop_sequence=body.get("stop_sequence"),
        usage=usage_from_response(body),
    )


def response_from_canonical(resp: ChatResponse) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for part in resp.content:
        if isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
        elif isinstance(part, ToolCallPart):
            content.append(_tool_use(part))
    return {
        "id": message_id(resp.id),
        "type": "message",
        "role": "assistant",
        "model": resp.model,
        "content": content,
        "stop_reason": stop_from_canonical(resp.stop_reason) or "end_turn",
        "stop_sequence": resp.stop_sequence,
        "usage": usage_to_dict(resp.usage),
    }


def _tool_use(part: ToolCallPart) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": part.id,
        "name": part.name,
        "input": parse_arguments(part.arguments),
    }


# -- errors --------------------------------------------------------------------------------


def parse_error(status: int, body: bytes, headers: dict[str, str]) -> UpstreamHTTPError:
    """A provider error answer as our error; the message is the provider's own."""
    obj = load_object(body) or {}
    error = obj.get("error")
    error = error if isinstance(error, dict) else {}
    kind = error.get("type")
    return UpstreamHTTPError(
        provider_message(status, body, error.get("message")),
        upstream_status=status,
        retry_after=parse_retry_after(headers),
        provider_error_type=kind if isinstance(kind, str) and kind else None,
    )


def stream_error(data: dict[str, Any]) -> UpstreamHTTPError:
    """An `error` event inside a 200 stream (e.g. overloaded_error mid-answer)."""
    error = data.get("error")
    kind = error.get("type") if isinstance(error, dict) else None
    status = _STATUS_BY_TYPE.get(kind, 500) if isinstance(kind, str) else 500
    return parse_error(status, orjson.dumps(data), {})


def error_type(status: int) -> str:
    if status in _TYPE_BY_STATUS:
        return _TYPE_BY_STATUS[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def _error_body(exc: SluiceError, request_id: str) -> dict[str, Any]:
    error = {"type": error_type(exc.status), "message": client_message(exc)}
    return {"type": "error", "error": error, "request_id": request_id}


def render_error(exc: SluiceError, request_id: str) -> bytes:
    return orjson.dumps(_error_body(exc, request_id))


def render_stream_error(exc: SluiceError, request_id: str) -> bytes:
    """The same body as an `error` event, for an error after the stream began."""
    return encode_sse(orjson.dumps(_error_body(exc, request_id)), "error")
