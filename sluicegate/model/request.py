"""A request as the gateway holds it between stages."""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from sluicegate.model.identity import Envelope, Principal


class ClientApi(str, enum.Enum):
    """The wire API the client spoke; the response is always in the same one. Everything
    that depends on it is a member of its `ClientWire` (`sluicegate.wire.registry`)."""

    OPENAI_CHAT = "openai.chat"
    OPENAI_EMBEDDINGS = "openai.embeddings"
    ANTHROPIC_MESSAGES = "anthropic.messages"


class GatewayRequest(msgspec.Struct, kw_only=True):
    """One client request after parsing and identity resolution.

    `body` is the client's JSON exactly as sent (validated); adapters translate or pass it
    through. `requested_model` is what the client asked for; the router decides what is
    sent upstream and the provider says what answered: three names kept apart.
    """

    request_id: str
    started: float  # time.perf_counter() at arrival, for latency
    client_api: ClientApi
    body: dict[str, Any]
    requested_model: str
    stream: bool
    principal: Principal
    envelope: Envelope
    max_output_tokens: int | None = None
    estimated_input_tokens: int = 0
    client_wants_stream_usage: bool = False  # OpenAI stream_options.include_usage
