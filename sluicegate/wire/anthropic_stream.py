"""Anthropic Messages streams: provider events -> canonical events (StreamDecoder),
canonical events -> client events (StreamEncoder), and the same-wire observer that only
watches a passthrough stream (PassthroughObserver). Re-exported by `anthropic_messages`."""

from __future__ import annotations

from typing import Any

import orjson

from sluicegate.errors import UpstreamHTTPError
from sluicegate.model.chat import (
    BlockStop,
    StopReason,
    StreamEvent,
    StreamStart,
    StreamStop,
    TextDelta,
    ToolArgsDelta,
    ToolCallStart,
    UsageReport,
)
from sluicegate.model.usage import Usage
from sluicegate.wire.anthropic_response import (
    message_id,
    stop_from_canonical,
    stop_to_canonical,
    stream_error,
    usage_from_dict,
    usage_to_dict,
)
from sluicegate.wire.common import (
    dump_arguments,
    load_object,
    new_id,
    string_bytes,
    string_marker,
)
from sluicegate.wire.sse import SSEEvent, encode_sse


class _UsageFields:
    """Anthropic reports usage in pieces (message_start, then cumulative message_delta
    counts); keep its raw fields and recompute, so the total input stays uncached + cache."""

    def __init__(self) -> None:
        self._raw: dict[str, Any] = {}
        self.usage = Usage()
        self.final = False  # message_delta's counts came: the output is the whole output

    def update(self, fields: object, *, final: bool = False) -> Usage:
        if isinstance(fields, dict):
            self._raw.update((k, v) for k, v in fields.items() if v is not None)
            self.usage = usage_from_dict(self._raw)
            self.final = self.final or final
        return self.usage


class StreamDecoder:
    """Passes on text and tool_use blocks under their own index; thinking and server-tool
    blocks have no canonical counterpart and are skipped (leaving gaps in the indexes)."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.finished = False
        self.content_chars = 0  # text, tool input and thinking seen, for an estimate
        self._usage = _UsageFields()
        self._blocks: set[int] = set()

    @property
    def usage(self) -> Usage:
        return self._usage.usage

    @property
    def usage_final(self) -> bool:
        return self._usage.final

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        data = load_object(event.data)
        if data is None:
            return []
        kind = data.get("type") or event.event
        if kind == "content_block_delta":
            return self._delta(data)
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "content_block_stop":
            index = data.get("index")
            return [BlockStop(index=index)] if index in self._blocks else []
        if kind == "message_start":
            message = data.get("message") or {}
            self.model = message.get("model") or None
            usage = self._usage.update(message.get("usage"))
            message_id = str(message.get("id") or new_id("msg_"))
            return [StreamStart(id=message_id, model=self.model or "", usage=usage)]
        if kind == "message_delta":
            return self._message_delta(data)
        if kind == "message_stop":
            self.finished = True
        elif kind == "error":
            raise stream_error(data)
        return []  # ping, and event types added after this was written

    def _block_start(self, data: dict[str, Any]) -> list[StreamEvent]:
        index, block = data.get("index"), data.get("content_block") or {}
        if not isinstance(index, int):
            return []
        kind = block.get("type")
        if kind == "text":
            self._blocks.add(index)
            text = block.get("text")
            return [TextDelta(index=index, text=text)] if text else []
        if kind == "tool_use":
            self._blocks.add(index)
            call_id = str(block.get("id") or new_id("toolu_"))
            name = str(block.get("name") or "")
            out: list[StreamEvent] = [ToolCallStart(index=index, id=call_id, name=name)]
            if block.get("input"):  # normally {} with the input following as deltas
                out.append(ToolArgsDelta(index=index, partial_json=dump_arguments(block["input"])))
            return out
        return []

    def _delta(self, data: dict[str, Any]) -> list[StreamEvent]:
        index, delta = data.get("index"), data.get("delta") or {}
        kind = delta.get("type")
        piece = delta.get(_DELTA_CONTENT.get(str(kind), "text"))
        if isinstance(piece, str):  # thinking is billed as output though not passed on
            self.content_chars += len(piece)
        if index not in self._blocks:
            return []
        if kind == "text_delta" and delta.get("text"):
            return [TextDelta(index=index, text=delta["text"])]
        if kind == "input_json_delta" and delta.get("partial_json"):
            return [ToolArgsDelta(index=index, partial_json=delta["partial_json"])]
        return []

    def _message_delta(self, data: dict[str, Any]) -> list[StreamEvent]:
        delta = data.get("delta") or {}
        out: list[StreamEvent] = []
        if delta.get("stop_reason"):
            reason = stop_to_canonical(delta["stop_reason"])
            out.append(StreamStop(stop_reason=reason, stop_sequence=delta.get("stop_sequence")))
        if isinstance(data.get("usage"), dict):
            out.append(UsageReport(usage=self._usage.update(data["usage"], final=True)))
        return out


# The field of each content_block_delta type that holds generated content.
_DELTA_CONTENT = {
    "text_delta": "text",
    "input_json_delta": "partial_json",
    "thinking_delta": "thinking",
}


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return encode_sse(orjson.dumps(data), kind)


class StreamEncoder:
    """Canonical events as Anthropic events: message_start first, each block bracketed by
    content_block_start/stop with indexes renumbered from 0, and message_delta (stop reason,
    final usage) + message_stop from `finish()`, once all usage is known."""

    def __init__(self, *, include_usage: bool = True, model: str | None = None) -> None:
        # include_usage: accepted for a constructor shared with OpenAI; usage always flows
        self.usage = Usage()
        self._model = model
        self._id = new_id("msg_")
        self._started = False
        self._open: int | None = None  # canonical index of the open block
        self._next_index = 0
        self._saw_tool = False
        self._stop_reason: StopReason | None = None
        self._stop_sequence: str | None = None

    def encode(self, event: StreamEvent) -> bytes:
        if isinstance(event, StreamStart):
            self._id = message_id(event.id)
            self._model = self._model or event.model
            self.usage = self.usage.merged(event.usage)
            return self._start()
        if isinstance(event, TextDelta):
            if not event.text:
                return b""
            out = self._start()
            if self._open != event.index:
                out += self._open_block(event.index, {"type": "text", "text": ""})
            delta = {"type": "text_delta", "text": event.text}
            return out + self._block_delta(delta)
        if isinstance(event, ToolCallStart):
            self._saw_tool = True
            block = {"type": "tool_use", "id": event.id, "name": event.name, "input": {}}
            return self._start() + self._open_block(event.index, block)
        if isinstance(event, ToolArgsDelta):
            if self._open != event.index or not event.partial_json:
                return b""  # a block already closed cannot be reopened on this wire
            delta = {"type": "input_json_delta", "partial_json": event.partial_json}
            return self._block_delta(delta)
        if isinstance(event, BlockStop):
            return self._close_block() if self._open == event.index else b""
        if isinstance(event, StreamStop):
            self._stop_reason, self._stop_sequence = event.stop_reason, event.stop_sequence
            return self._close_block()
        if isinstance(event, UsageReport):
            self.usage = self.usage.merged(event.usage)
        return b""

    def finish(self) -> bytes:
        out = self._start() + self._close_block()
        fallback = "tool_use" if self._saw_tool else "end_turn"
        delta = {
            "stop_reason": stop_from_canonical(self._stop_reason) or fallback,
            "stop_sequence": self._stop_sequence,
        }
        message_delta = {"type": "message_delta", "delta": delta, "usage": self._final_usage()}
        return (
            out
            + _event("message_delta", message_delta)
            + _event("message_stop", {"type": "message_stop"})
        )

    def _final_usage(self) -> dict[str, Any]:
        """Cumulative counts; an unknown one is left out so the client keeps what
        message_start said rather than seeing it overwritten."""
        full = usage_to_dict(self.usage)
        usage: dict[str, Any] = {"output_tokens": full["output_tokens"]}
        if self.usage.input_tokens is not None:
            usage["input_tokens"] = full["input_tokens"]
        for key in (
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "output_tokens_details",
        ):
            if full.get(key) is not None:
                usage[key] = full[key]
        return usage

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model or "",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_to_dict(self.usage),
        }
        return _event("message_start", {"type": "message_start", "message": message})

    def _open_block(self, index: int, block: dict[str, Any]) -> bytes:
        out = self._close_block()
        self._open = index
        start = {"type": "content_block_start", "index": self._next_index, "content_block": block}
        return out + _event("content_block_start", start)

    def _block_delta(self, delta: dict[str, Any]) -> bytes:
        data = {"type": "content_block_delta", "index": self._next_index, "delta": delta}
        return _event("content_block_delta", data)

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        self._next_index += 1
        stop = {"type": "content_block_stop", "index": self._next_index - 1}
        return _event("content_block_stop", stop)


class PassthroughObserver:
    """Watches a same-wire stream on its way to the client; every event is forwarded. Deltas
    (the bulk) are recognised by their event name and never parsed: their content is
    measured on the raw bytes, for the estimate a stream left early is billed with."""

    def __init__(self, *, include_usage: bool = True) -> None:
        # include_usage: as for StreamEncoder; every event is forwarded on this wire
        self.model: str | None = None
        self.finished = False
        self.first_content_seen = False
        self.error: UpstreamHTTPError | None = None
        self.content_chars = 0  # bytes of text, tool input and thinking, as written
        self._usage = _UsageFields()

    @property
    def usage(self) -> Usage:
        return self._usage.usage

    @property
    def usage_final(self) -> bool:
        return self._usage.final

    def observe(self, event: SSEEvent) -> bool:
        kind = event.event
        if kind == "content_block_delta":
            self.first_content_seen = True
            self.content_chars += _delta_bytes(event.data)
            return True
        if kind in ("ping", "content_block_start", "content_block_stop"):
            return True
        data = load_object(event.data)
        if data is None:
            return True
        kind = data.get("type") or kind
        if kind == "message_start":
            message = data.get("message") or {}
            self.model = message.get("model") or None
            self._usage.update(message.get("usage"))
        elif kind == "message_delta":
            self._usage.update(data.get("usage"), final=True)
        elif kind == "content_block_delta":  # an event sent without its `event:` name
            self.first_content_seen = True
            self.content_chars += _delta_bytes(event.data)
        elif kind == "message_stop":
            self.finished = True
        elif kind == "error":
            self.error = stream_error(data)
        return True


_TEXT, _PARTIAL_JSON, _THINKING = (string_marker(n) for n in ("text", "partial_json", "thinking"))


def _delta_bytes(data: bytes) -> int:
    return (
        string_bytes(data, _TEXT)
        or string_bytes(data, _PARTIAL_JSON)
        or string_bytes(data, _THINKING)
    )
