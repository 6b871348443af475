"""The content a guardrail is shown, decoded into the canonical form only when asked.

    RequestView   request input, tool output   the client's body -> ChatRequest
    ReplyView     request output, tool input   a non-streamed reply -> ChatResponse
    StreamReader  request output, tool input   a stream's chunks -> StreamView each

A rule that reads only `.body` (or nothing) costs no decode. Streams are the exception:
the decoder must see every chunk in order, so once any output rule is configured each
chunk is decoded, whether or not the rule reads `.events` this time. Without output
rules no StreamReader exists. Chat APIs only: the canonical views of an embeddings
request raise InvalidRequest from the codec, so an embeddings rule reads `.body`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from sluicegate.errors import InvalidRequest
from sluicegate.model.chat import (
    BlockStop,
    ChatRequest,
    ChatResponse,
    StreamEvent,
    StreamStop,
    ToolArgsDelta,
    ToolCallPart,
    ToolCallStart,
    ToolResultPart,
)
from sluicegate.model.request import ClientApi, GatewayRequest
from sluicegate.wire import ChatCodec
from sluicegate.wire.registry import WIRES
from sluicegate.wire.sse import SSEParser


def codec_for(client_api: ClientApi) -> ChatCodec:
    """The one place guardrails pick a wire codec (the client's: content is shown and
    rewritten in the format the client speaks)."""
    chat = WIRES[client_api].chat
    if chat is None:
        raise InvalidRequest(f"{client_api.value} requests have no chat content to inspect")
    return chat


class RequestView:
    """The request as the client sent it; `canonical` decodes it on first use."""

    __slots__ = ("request", "_canonical")

    def __init__(self, request: GatewayRequest) -> None:
        self.request = request
        self._canonical: ChatRequest | None = None

    @property
    def body(self) -> dict[str, Any]:
        return self.request.body

    @property
    def canonical(self) -> ChatRequest:
        if self._canonical is None:
            self._canonical = codec_for(self.request.client_api).to_canonical(self.request.body)
        return self._canonical

    @property
    def tool_results(self) -> list[ToolResultPart]:
        """The tool results the client sends back in this request: those of its last
        message. Earlier ones went through this hook when they were new, so an agent
        loop is not checked again on every turn for its whole history."""
        messages = self.canonical.messages
        if not messages or messages[-1].role != "user":
            return []
        return [p for p in messages[-1].content if isinstance(p, ToolResultPart)]

    def replace(self, content: ChatRequest) -> None:
        """A Mutate verdict: the request goes upstream as `content`, in the client's wire."""
        request = self.request
        codec = codec_for(request.client_api)
        request.body = codec.from_canonical(content, request.requested_model, stream=request.stream)
        self._canonical = content


class ReplyView:
    """A non-streamed reply, as the client will receive it (its wire format)."""

    __slots__ = ("client_api", "body", "_canonical")

    def __init__(self, client_api: ClientApi, body: bytes) -> None:
        self.client_api = client_api
        self.body = body
        self._canonical: ChatResponse | None = None

    @property
    def canonical(self) -> ChatResponse:
        if self._canonical is None:
            decoded = msgspec.json.decode(self.body)
            self._canonical = codec_for(self.client_api).response_to_canonical(decoded)
        return self._canonical

    @property
    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.canonical.content if isinstance(p, ToolCallPart)]

    def replace(self, content: ChatResponse) -> None:
        """A Mutate verdict: the client receives `content`, in its wire format."""
        encoded = codec_for(self.client_api).response_from_canonical(content)
        self.body = msgspec.json.encode(encoded)
        self._canonical = content


class StreamView(msgspec.Struct, frozen=True):
    """One chunk about to be relayed: its bytes, its canonical events, and the tool calls
    whose arguments it completed (a tool call is shown once, whole)."""

    chunk: bytes
    events: list[StreamEvent]
    tool_calls: list[ToolCallPart]


class StreamReader:
    """Decodes the chunks of one stream (in the client's wire format) in order."""

    def __init__(self, client_api: ClientApi) -> None:
        self._parser = SSEParser()
        self._decoder = codec_for(client_api).StreamDecoder()
        self._open: dict[int, tuple[str, str, list[str]]] = {}  # block -> id, name, args

    def read(self, chunk: bytes) -> StreamView:
        events: list[StreamEvent] = []
        for sse in self._parser.feed(chunk):
            events += self._decoder.feed(sse)
        return StreamView(chunk=chunk, events=events, tool_calls=self._tool_calls(events))

    def _tool_calls(self, events: list[StreamEvent]) -> list[ToolCallPart]:
        done: list[ToolCallPart] = []
        for event in events:
            if isinstance(event, ToolCallStart):
                self._open[event.index] = (event.id, event.name, [])
            elif isinstance(event, ToolArgsDelta) and event.index in self._open:
                self._open[event.index][2].append(event.partial_json)
            elif isinstance(event, BlockStop) and event.index in self._open:
                done.append(_tool_call(*self._open.pop(event.index)))
            elif isinstance(event, StreamStop):
                done += [_tool_call(*parts) for parts in self._open.values()]
                self._open.clear()
        return done


def _tool_call(call_id: str, name: str, arguments: list[str]) -> ToolCallPart:
    return ToolCallPart(id=call_id, name=name, arguments="".join(arguments))
