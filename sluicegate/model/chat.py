"""The canonical chat form: what a request, response and stream look like between two wire
formats. Each wire module translates to and from this form only, so adding a wire format
is one module, never one translator per pair (see sluicegate/wire/).

The shape follows Anthropic's Messages (roles are only user/assistant, tool results are
parts of a user message, system text sits apart) because it is the stricter of the two:
OpenAI's looser shape maps into it without loss, the other way round needs only merging.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from sluicegate.model.usage import Usage

CacheControl = dict[str, Any]  # Anthropic's {"type": "ephemeral", "ttl"?: ...}, kept verbatim

StopReason = Literal["end_turn", "max_tokens", "tool_use", "stop_sequence", "content_filter"]


# -- content parts -------------------------------------------------------------------------


class TextPart(msgspec.Struct, kw_only=True, tag_field="type", tag="text"):
    text: str
    cache_control: CacheControl | None = None


class ImagePart(msgspec.Struct, kw_only=True, tag_field="type", tag="image"):
    """Either `url` (http(s)) or `media_type` + base64 `data`, never both."""

    url: str | None = None
    media_type: str | None = None
    data: str | None = None
    detail: str | None = None  # OpenAI's low/high/auto; Anthropic has no counterpart
    cache_control: CacheControl | None = None


class ToolCallPart(msgspec.Struct, kw_only=True, tag_field="type", tag="tool_call"):
    id: str
    name: str
    arguments: str  # JSON text as the model produced it (OpenAI keeps it a string)
    cache_control: CacheControl | None = None


class ToolResultPart(msgspec.Struct, kw_only=True, tag_field="type", tag="tool_result"):
    tool_call_id: str
    content: str | list[TextPart | ImagePart]
    is_error: bool = False
    cache_control: CacheControl | None = None


class ProviderPart(msgspec.Struct, kw_only=True, tag_field="type", tag="provider"):
    """A block only its own wire understands (Anthropic thinking), kept verbatim so a
    same-wire round trip loses nothing; other wires drop it."""

    wire: str
    block: dict[str, Any]
    cache_control: CacheControl | None = None  # always None: kept inside `block`


Part = TextPart | ImagePart | ToolCallPart | ToolResultPart | ProviderPart


class Message(msgspec.Struct, kw_only=True):
    role: Literal["user", "assistant"]
    content: list[Part]


# -- request -------------------------------------------------------------------------------


class Tool(msgspec.Struct, kw_only=True):
    name: str
    description: str | None = None
    parameters: dict[str, Any]  # JSON schema of the arguments
    cache_control: CacheControl | None = None


class ToolChoice(msgspec.Struct, kw_only=True):
    """auto | none | required (Anthropic "any") | tool (then `name` is set)."""

    type: Literal["auto", "none", "required", "tool"]
    name: str | None = None


class ChatRequest(msgspec.Struct, kw_only=True):
    system: list[TextPart] = []
    messages: list[Message]
    tools: list[Tool] = []
    tool_choice: ToolChoice | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = []
    stream: bool = False
    user: str | None = None  # OpenAI `user` / Anthropic `metadata.user_id`
    parallel_tool_calls: bool | None = None
    # Params with no counterpart, keyed by the wire they came from ("openai", "anthropic"):
    # only that wire re-emits them, since the other would reject unknown fields.
    extra: dict[str, dict[str, Any]] = {}


# -- response ------------------------------------------------------------------------------


class ChatResponse(msgspec.Struct, kw_only=True):
    id: str
    model: str
    content: list[Part]  # TextPart and ToolCallPart only
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None
    usage: Usage = msgspec.field(default_factory=Usage)


# -- stream events -------------------------------------------------------------------------
# `index` is the canonical content-block index. A TextDelta for an index not seen before opens
# a text block; encoders must not assume indexes are contiguous (skipped blocks leave gaps).


class StreamStart(msgspec.Struct, kw_only=True, tag=True):
    id: str
    model: str
    usage: Usage = msgspec.field(default_factory=Usage)


class TextDelta(msgspec.Struct, kw_only=True, tag=True):
    index: int
    text: str


class ToolCallStart(msgspec.Struct, kw_only=True, tag=True):
    index: int
    id: str
    name: str


class ToolArgsDelta(msgspec.Struct, kw_only=True, tag=True):
    index: int
    partial_json: str


class BlockStop(msgspec.Struct, kw_only=True, tag=True):
    index: int


class StreamStop(msgspec.Struct, kw_only=True, tag=True):
    stop_reason: StopReason | None = None
    stop_sequence: str | None = None


class UsageReport(msgspec.Struct, kw_only=True, tag=True):
    """May arrive at any point; consumers merge it (`Usage.merged`), later fields win."""

    usage: Usage


StreamEvent = (
    StreamStart | TextDelta | ToolCallStart | ToolArgsDelta | BlockStop | StreamStop | UsageReport
)
