"""The client APIs the gateway speaks: one `ClientWire` per `ClientApi`, registered here.

A client API is everything that depends on which API a client spoke: the route it arrives
on, how its body is inspected, how it is passed through or translated (its codec), how its
streams are observed, decoded and encoded, and how errors are parsed from a provider and
rendered to a client (whole body and in-stream). Nothing outside the wire modules branches
on which API it is; callers look the `ClientWire` up once and use its members.

Adding a client API (say the Responses API):
  1. a `ClientApi` member (the value names it in the ledger);
  2. a module in `sluicegate/wire/` satisfying `WireCodec` (and `ChatCodec` if it is a chat
     API that can be translated and streamed);
  3. one entry in `WIRES` below.
A provider kind that speaks the new wire names its `ClientWire` as an endpoint
(`sluicegate.providers.kinds`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from sluicegate.errors import InternalError, SluiceError
from sluicegate.model.request import ClientApi
from sluicegate.wire import ChatCodec, WireCodec, anthropic_messages, openai_chat, openai_embeddings


class Operation(enum.Enum):
    """What a call asks a provider to do; a provider kind has one endpoint per operation
    it offers (the value is how errors name it: "... has no embeddings API")."""

    CHAT = "chat"
    EMBEDDINGS = "embeddings"


@dataclass(frozen=True, slots=True)
class ClientWire:
    """One client API. `chat` is the same module as `codec` for chat APIs and None for APIs
    that are never translated or streamed (embeddings): a capability, not a stub."""

    api: ClientApi
    path: str  # the route clients POST to
    operation: Operation
    codec: WireCodec
    chat: ChatCodec | None = None

    def render_stream_error(self, exc: SluiceError, request_id: str) -> bytes:
        """An error after a stream began, said in-band the way this API does."""
        if self.chat is None:
            raise InternalError(f"{self.api.value} has no streams to put an error in")
        return self.chat.render_stream_error(exc, request_id)


def chat_wire(api: ClientApi, path: str, codec: ChatCodec) -> ClientWire:
    return ClientWire(api, path, Operation.CHAT, codec, codec)


WIRES: Mapping[ClientApi, ClientWire] = {
    wire.api: wire
    for wire in (
        chat_wire(ClientApi.OPENAI_CHAT, "/v1/chat/completions", openai_chat),
        chat_wire(ClientApi.ANTHROPIC_MESSAGES, "/v1/messages", anthropic_messages),
        ClientWire(
            ClientApi.OPENAI_EMBEDDINGS, "/v1/embeddings", Operation.EMBEDDINGS, openai_embeddings
        ),
    )
}


def client_wire(api: ClientApi) -> ClientWire:
    return WIRES[api]


def render_stream_error(api: ClientApi, exc: SluiceError, request_id: str) -> bytes:
    """`ClientWire.render_stream_error` by client API (the pipeline's relay holds the API)."""
    return WIRES[api].render_stream_error(exc, request_id)
