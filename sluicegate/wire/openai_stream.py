"""OpenAI Chat Completions streams: provider chunks -> canonical events (StreamDecoder),
canonical events -> client chunks (StreamEncoder), and the same-wire observer that only
watches a passthrough stream (PassthroughObserver). Re-exported by `openai_chat`."""

from __future__ import annotations

import time
from typing import Any

import orjson

from sluicegate.errors import UpstreamHTTPError
from sluicegate.model.chat import (
    BlockStop,
    StreamEvent,
    StreamStart,
    StreamStop,
    TextDelta,
    ToolArgsDelta,
    ToolCallStart,
    UsageReport,
)
from sluicegate.model.usage import Usage
from sluicegate.wire.common import load_object, new_id, string_bytes, string_marker
from sluicegate.wire.openai_response import (
    chat_id,
    stop_from_canonical,
    stop_to_canonical,
    stream_error,
    usage_from_dict,
    usage_to_dict,
)
from sluicegate.wire.sse import SSEEvent, encode_sse

_DONE = b"[DONE]"
_CONTENT, _ARGUMENTS, _REFUSAL = (string_marker(n) for n in ("content", "arguments", "refusal"))


class StreamDecoder:
    """Reads choice 0 of a provider stream. Text opens a block; each tool call opens its own
    block (closing the text before it); all blocks close on finish_reason."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.usage_final = False  # the usage chunk came (OpenAI sends it once, at the end)
        self.content_chars = 0  # text and tool-call arguments seen, for an estimate
        self.model: str | None = None
        self.finished = False
        self._started = False
        self._stopped = False
        self._next_index = 0
        self._text_index: int | None = None
        self._tool_blocks: dict[int, int] = {}  # OpenAI tool_calls index -> block index

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        if event.data == _DONE:
            self.finished = True
            return []
        chunk = load_object(event.data)
        if chunk is None:
            return []
        if chunk.get("error"):
            raise stream_error(chunk["error"])
        out: list[StreamEvent] = []
        if not self._started:
            self._started = True
            self.model = chunk.get("model") or None
            chunk_id = str(chunk.get("id") or new_id("chatcmpl-"))
            out.append(StreamStart(id=chunk_id, model=self.model or ""))
        for choice in chunk.get("choices") or []:
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._choice(choice, out)
        if isinstance(chunk.get("usage"), dict):
            report = usage_from_dict(chunk["usage"])
            self.usage = self.usage.merged(report)
            self.usage_final = True
            out.append(UsageReport(usage=report))
        return out

    def _choice(self, choice: dict[str, Any], out: list[StreamEvent]) -> None:
        delta = choice.get("delta") or {}
        for key in ("content", "refusal"):  # a refusal reads as text in the canonical form
            text = delta.get(key)
            if isinstance(text, str) and text:
                self.content_chars += len(text)
                out.append(TextDelta(index=self._text_block(), text=text))
        for call in delta.get("tool_calls") or []:
            self._tool_call(call, out)
        reason = choice.get("finish_reason")
        if reason and not self._stopped:
            self._stopped = True
            self._close_text(out)
            out.extend(BlockStop(index=i) for i in self._tool_blocks.values())
            out.append(StreamStop(stop_reason=stop_to_canonical(reason)))

    def _text_block(self) -> int:
        if self._text_index is None:
            self._text_index = self._next_index
            self._next_index += 1
        return self._text_index

    def _close_text(self, out: list[StreamEvent]) -> None:
        if self._text_index is not None:
            out.append(BlockStop(index=self._text_index))
            self._text_index = None

    def _tool_call(self, call: dict[str, Any], out: list[StreamEvent]) -> None:
        function = call.get("function") or {}
        position = call.get("index", len(self._tool_blocks))
        block = self._tool_blocks.get(position)
        if block is None:
            self._close_text(out)
            block = self._tool_blocks[position] = self._next_index
            self._next_index += 1
            call_id = str(call.get("id") or new_id("call_"))
            out.append(ToolCallStart(index=block, id=call_id, name=function.get("name") or ""))
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            self.content_chars += len(arguments)
            out.append(ToolArgsDelta(index=block, partial_json=arguments))


class StreamEncoder:
    """Canonical events as `chat.completion.chunk`s: a role chunk first, tool calls with
    id/type/name on their first piece, a finish chunk, the usage chunk only when the client
    asked for it (`stream_options.include_usage`), then `[DONE]`."""

    def __init__(self, *, include_usage: bool, model: str | None = None) -> None:
        self.usage = Usage()
        self._include_usage = include_usage
        self._model = model
        self._id = new_id("chatcmpl-")
        self._created = int(time.time())
        self._started = False
        self._finish_sent = False
        self._tools: dict[int, int] = {}  # canonical block index -> OpenAI tool_calls index

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, StreamStart):
            self._id = chat_id(event.id)
            self._model = self._model or event.model
            self.usage = self.usage.merged(event.usage)
            return self._start()
        if isinstance(event, TextDelta):
            return self._start() + self._chunk({"content": event.text}) if event.text else b""
        if isinstance(event, ToolCallStart):
            position = self._tools[event.index] = len(self._tools)
            function = {"name": event.name, "arguments": ""}
            call = {"index": position, "id": event.id, "type": "function", "function": function}
            return self._start() + self._chunk({"tool_calls": [call]})
        if isinstance(event, ToolArgsDelta):
            known = self._tools.get(event.index)
            if known is None or not event.partial_json:
                return b""
            call = {"index": known, "function": {"arguments": event.partial_json}}
            return self._chunk({"tool_calls": [call]})
        if isinstance(event, StreamStop):
            return self._finish_chunk(stop_from_canonical(event.stop_reason))
        if isinstance(event, UsageReport):
            self.usage = self.usage.merged(event.usage)
        return b""  # BlockStop: OpenAI has no block boundaries

    def finish(self) -> bytes:
        """Everything still owed to the client, ending with `data: [DONE]`."""
        out = self._start()
        out += self._finish_chunk("tool_calls" if self._tools else "stop")
        if self._include_usage:
            usage_chunk = self._envelope([]) | {"usage": usage_to_dict(self.usage)}
            out += encode_sse(orjson.dumps(usage_chunk))
        return out + b"data: [DONE]\n\n"

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._chunk({"role": "assistant", "content": ""})

    def _finish_chunk(self, reason: str) -> bytes:
        if self._finish_sent:
            return b""
        self._finish_sent = True
        return self._start() + self._chunk({}, reason)

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return encode_sse(orjson.dumps(self._envelope([choice])))

    def _envelope(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model or "",
            "choices": choices,
        }


class PassthroughObserver:
    """Watches a same-wire stream on its way to the client. Most chunks are forwarded after
    two substring checks; JSON is parsed only for the first chunks (model, first content),
    usage and errors. The gateway always asks the provider for usage, so the usage-only
    chunk is dropped here unless the client asked for it too. Content is measured on the raw
    bytes (`string_bytes`), for the estimate a stream left early is billed with."""

    def __init__(self, *, include_usage: bool) -> None:
        self.usage = Usage()
        self.usage_final = False
        self.content_chars = 0  # bytes of content and tool-call arguments, as written
        self.model: str | None = None
        self.finished = False
        self.first_content_seen = False
        self.error: UpstreamHTTPError | None = None
        self._include_usage = include_usage

    def observe(self, event: SSEEvent) -> bool:
        data = event.data
        if data == _DONE:
            self.finished = True
            return True
        self.content_chars += _content_bytes(data)
        has_usage = b'"usage"' in data and not (b'"usage":null' in data or b'"usage": null' in data)
        if self.first_content_seen and not has_usage and b'"error"' not in data:
            return True  # the hot path: a content chunk with nothing new to learn
        chunk = load_object(data)
        if chunk is None:
            return True
        if chunk.get("error"):
            self.error = stream_error(chunk["error"])
        if self.model is None and isinstance(chunk.get("model"), str):
            self.model = chunk["model"] or None
        choices = chunk.get("choices") or []
        if not self.first_content_seen:
            self.first_content_seen = any(_has_content(c) for c in choices)
        if has_usage and isinstance(chunk.get("usage"), dict):
            self.usage = self.usage.merged(usage_from_dict(chunk["usage"]))
            self.usage_final = True
            return bool(choices) or self._include_usage
        return True


def _content_bytes(data: bytes) -> int:
    """A chunk carries text, a tool call's arguments, or (rarely) a refusal."""
    return (
        string_bytes(data, _CONTENT)
        or string_bytes(data, _ARGUMENTS)
        or string_bytes(data, _REFUSAL)
    )


def _has_content(choice: object) -> bool:
    if not isinstance(choice, dict):
        return False
    delta = choice.get("delta") or {}
    return bool(delta.get("content") or delta.get("refusal") or delta.get("tool_calls"))
