"""Wire codecs: one module per API format, each translating to and from the canonical form
in `sluicegate.model.chat` (never one translator per client x provider pair).

    client body --inspect_request--> RequestFacts (every request, passthrough included)
    same wire:      prepare_passthrough -> provider -> usage_from_response / PassthroughObserver
    different wire: to_canonical -> other.from_canonical -> provider
                    -> other.response_to_canonical -> response_from_canonical
                    stream: other.StreamDecoder -> canonical events -> StreamEncoder

`openai_chat` and `anthropic_messages` both satisfy `ChatCodec`; `chat_codec(wire)` picks
one by `ClientApi.wire` / provider kind.
"""

from __future__ import annotations

from typing import Any, Protocol

from sluicegate.errors import SluiceError, UpstreamHTTPError
from sluicegate.model.chat import ChatRequest, ChatResponse, StreamEvent
from sluicegate.model.usage import Usage
from sluicegate.wire import anthropic_messages, openai_chat
from sluicegate.wire.common import RequestFacts
from sluicegate.wire.sse import SSEEvent


class Decoder(Protocol):
    @property
    def usage(self) -> Usage: ...
    @property
    def model(self) -> str | None: ...
    @property
    def finished(self) -> bool: ...

    def feed(self, event: SSEEvent) -> list[StreamEvent]: ...


class Encoder(Protocol):
    def encode(self, event: StreamEvent) -> bytes: ...

    def finish(self) -> bytes: ...


class Observer(Protocol):
    @property
    def usage(self) -> Usage: ...
    @property
    def model(self) -> str | None: ...
    @property
    def finished(self) -> bool: ...
    @property
    def first_content_seen(self) -> bool: ...
    @property
    def error(self) -> UpstreamHTTPError | None: ...

    def observe(self, event: SSEEvent) -> bool: ...


class ChatCodec(Protocol):
    """The functions and classes a chat wire module provides (modules satisfy this)."""

    def inspect_request(self, body: dict[str, Any]) -> RequestFacts: ...
    def to_canonical(self, body: dict[str, Any]) -> ChatRequest: ...
    def from_canonical(self, req: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]: ...
    def prepare_passthrough(
        self, body: dict[str, Any], model: str, *, stream: bool
    ) -> dict[str, Any]: ...
    def response_to_canonical(self, body: dict[str, Any]) -> ChatResponse: ...
    def response_from_canonical(self, resp: ChatResponse) -> dict[str, Any]: ...
    def usage_from_response(self, body: dict[str, Any]) -> Usage: ...
    def response_model(self, body: dict[str, Any]) -> str | None: ...
    def parse_error(
        self, status: int, body: bytes, headers: dict[str, str]
    ) -> UpstreamHTTPError: ...
    def render_error(self, exc: SluiceError, request_id: str) -> bytes: ...
    def render_stream_error(self, exc: SluiceError, request_id: str) -> bytes: ...
    def StreamDecoder(self) -> Decoder: ...
    def StreamEncoder(self, *, include_usage: bool, model: str | None = None) -> Encoder: ...
    def PassthroughObserver(self, *, include_usage: bool) -> Observer: ...


def chat_codec(wire: str) -> ChatCodec:
    """'openai' or 'anthropic' (ClientApi.wire, or a provider's wire kind)."""
    if wire == "openai":
        return openai_chat
    if wire == "anthropic":
        return anthropic_messages
    raise ValueError(f"unknown wire format {wire!r}")
