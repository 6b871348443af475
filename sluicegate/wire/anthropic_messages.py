"""Anthropic Messages (`POST /v1/messages`): the wire codec.

This module is the one to import: the request side lives here, the answer side in
`anthropic_response` and the stream side in `anthropic_stream`, both re-exported below.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from sluicegate.model.chat import (
    ChatRequest,
    ImagePart,
    Message,
    Part,
    ProviderPart,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from sluicegate.wire.anthropic_response import (
    parse_error,
    render_error,
    render_stream_error,
    response_from_canonical,
    response_model,
    response_to_canonical,
    usage_from_response,
)
from sluicegate.wire.anthropic_stream import PassthroughObserver, StreamDecoder, StreamEncoder
from sluicegate.wire.common import (
    RequestFacts,
    check_model,
    convert_body,
    dump_arguments,
    estimate_tokens,
    invalid,
    json_chars,
    parse_arguments,
)

__all__ = [
    "PassthroughObserver",
    "StreamDecoder",
    "StreamEncoder",
    "estimate_input_tokens",
    "from_canonical",
    "inspect_request",
    "parse_error",
    "prepare_passthrough",
    "render_error",
    "render_stream_error",
    "response_from_canonical",
    "response_model",
    "response_to_canonical",
    "to_canonical",
    "usage_from_response",
]

WIRE = "anthropic"
DEFAULT_MAX_TOKENS = 4096  # required on this wire; used when an OpenAI client gave none


# -- the body, as far as the gateway reads it (unknown fields are ignored) -----------------


class _Source(msgspec.Struct):
    type: str
    media_type: str | None = None
    data: str | None = None
    url: str | None = None


class _Block(msgspec.Struct):
    type: str
    text: str | None = None
    source: _Source | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None
    tool_use_id: str | None = None
    content: str | list[_Block] | None = None
    is_error: bool | None = None
    cache_control: dict[str, Any] | None = None


class _Message(msgspec.Struct):
    role: Literal["user", "assistant"]
    content: str | list[_Block]


class _Tool(msgspec.Struct):
    name: str
    type: str | None = None  # None or "custom" for client tools; server tools are versioned
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    cache_control: dict[str, Any] | None = None


class _ToolChoice(msgspec.Struct):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class _Metadata(msgspec.Struct):
    user_id: str | None = None


class _Prompt(msgspec.Struct, kw_only=True):
    """What /v1/messages/count_tokens accepts: the prompt without generation settings."""

    model: str
    messages: Annotated[list[_Message], msgspec.Meta(min_length=1)]
    system: str | list[_Block] | None = None
    tools: list[_Tool] | None = None
    tool_choice: _ToolChoice | None = None


class _Body(_Prompt, kw_only=True):
    max_tokens: Annotated[int, msgspec.Meta(ge=1)]
    stream: bool | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = None
    top_p: float | None = None
    metadata: _Metadata | None = None


_KNOWN = frozenset(_Body.__struct_fields__)
_P = TypeVar("_P", bound=_Prompt)
# Fields each block type must carry; the API would refuse the body without them.
_REQUIRED = {
    "text": ("text",),
    "image": ("source",),
    "tool_use": ("id", "name"),
    "tool_result": ("tool_use_id",),
    "document": ("source",),
}
_CLIENT_TOOL = (None, "custom")
_THINKING = ("thinking", "redacted_thinking")


class _Count:
    """Characters and images seen while validating, for the token estimate."""

    def __init__(self) -> None:
        self.chars = 0
        self.images = 0

    def block(self, block: _Block, where: str) -> None:
        for field in _REQUIRED.get(block.type, ()):
            if getattr(block, field) is None:
                raise invalid(f"a {block.type} block needs '{field}'", f"{where}.{field}")
        self.chars += len(block.text or "") + len(block.name or "")
        if block.type in ("image", "document"):
            self.images += 1  # documents are counted like images: a rough floor
        elif block.type == "tool_use":
            self.chars += json_chars(block.input)
        if isinstance(block.content, str):
            self.chars += len(block.content)
        elif block.content:
            for j, inner in enumerate(block.content):
                self.block(inner, f"{where}.content[{j}]")

    def content(self, content: str | list[_Block] | None, where: str) -> None:
        if isinstance(content, str):
            self.chars += len(content)
        else:
            for j, block in enumerate(content or ()):
                self.block(block, f"{where}[{j}]")


def _validated(body: dict[str, Any], kind: type[_P]) -> tuple[_P, _Count]:
    parsed = convert_body(body, kind)
    check_model(parsed.model)
    count = _Count()
    count.content(parsed.system, "system")
    for i, message in enumerate(parsed.messages):
        count.content(message.content, f"messages[{i}].content")
    for i, tool in enumerate(parsed.tools or ()):
        if tool.type in _CLIENT_TOOL and tool.input_schema is None:
            raise invalid("a tool needs 'input_schema'", f"tools[{i}].input_schema")
        count.chars += len(tool.name) + len(tool.description or "")
        count.chars += json_chars(tool.input_schema)
    if parsed.tool_choice and parsed.tool_choice.type == "tool" and not parsed.tool_choice.name:
        raise invalid("tool_choice of type 'tool' needs 'name'", "tool_choice.name")
    return parsed, count


# -- request -------------------------------------------------------------------------------


def inspect_request(body: dict[str, Any]) -> RequestFacts:
    parsed, count = _validated(body, _Body)
    return RequestFacts(
        model=parsed.model,
        stream=bool(parsed.stream),
        max_output_tokens=parsed.max_tokens,
        include_usage=True,  # usage is always part of an Anthropic stream
        estimated_input_tokens=estimate_tokens(count.chars, len(parsed.messages), count.images),
    )


def prepare_passthrough(body: dict[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
    out = dict(body)
    out["model"] = model
    if stream:
        out["stream"] = True
    return out


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """The estimate for a /v1/messages/count_tokens body (no max_tokens there)."""
    parsed, count = _validated(body, _Prompt)
    return estimate_tokens(count.chars, len(parsed.messages), count.images)


def to_canonical(body: dict[str, Any]) -> ChatRequest:
    parsed, _ = _validated(body, _Body)
    system = parsed.system
    choice = parsed.tool_choice
    metadata = parsed.metadata
    return ChatRequest(
        system=_system_parts(system) if not isinstance(system, str) else _text(system),
        messages=[
            _message(m, body["messages"][i], f"messages[{i}]")
            for i, m in enumerate(parsed.messages)
        ],
        tools=[_tool(t, f"tools[{i}]") for i, t in enumerate(parsed.tools or ())],
        tool_choice=_tool_choice(choice),
        max_tokens=parsed.max_tokens,
        temperature=parsed.temperature,
        top_p=parsed.top_p,
        stop=list(parsed.stop_sequences or ()),
        stream=bool(parsed.stream),
        user=metadata.user_id if metadata else None,
        parallel_tool_calls=False if choice and choice.disable_parallel_tool_use else None,
        extra={WIRE: {k: v for k, v in body.items() if k not in _KNOWN}},
    )


def _text(text: str) -> list[TextPart]:
    return [TextPart(text=text)] if text else []


def _system_parts(blocks: list[_Block] | None) -> list[TextPart]:
    parts: list[TextPart] = []
    for j, block in enumerate(blocks or ()):
        if block.type != "text":
            raise invalid("only text blocks are allowed in system", f"system[{j}].type")
        parts.append(TextPart(text=block.text or "", cache_control=block.cache_control))
    return parts


def _message(message: _Message, raw: dict[str, Any], where: str) -> Message:
    if isinstance(message.content, str):
        return Message(role=message.role, content=[*_text(message.content)])
    parts: list[Part] = []
    for j, block in enumerate(message.content):
        if block.type in _THINKING:
            # Anthropic needs them back verbatim (signatures); other wires drop them.
            parts.append(ProviderPart(wire=WIRE, block=raw["content"][j]))
        else:
            parts.append(_part(block, f"{where}.content[{j}]"))
    return Message(role=message.role, content=parts)


def _part(block: _Block, where: str) -> Part:
    cache = block.cache_control
    if block.type == "text":
        return TextPart(text=block.text or "", cache_control=cache)
    if block.type == "image":
        return _image(block, where)
    if block.type == "tool_use":
        arguments = dump_arguments(block.input if block.input is not None else {})
        return ToolCallPart(
            id=block.id or "", name=block.name or "", arguments=arguments, cache_control=cache
        )
    if block.type == "tool_result":
        return ToolResultPart(
            tool_call_id=block.tool_use_id or "",
            content=_result_content(block.content, where),
            is_error=bool(block.is_error),
            cache_control=cache,
        )
    raise invalid(
        f"content of type '{block.type}' cannot be translated to another provider", f"{where}.type"
    )


def _image(block: _Block, where: str) -> ImagePart:
    source = block.source
    cache = block.cache_control
    if source is not None and source.type == "url" and source.url:
        return ImagePart(url=source.url, cache_control=cache)
    if source is not None and source.type == "base64" and source.data and source.media_type:
        return ImagePart(media_type=source.media_type, data=source.data, cache_control=cache)
    raise invalid("an image source must be base64 (media_type, data) or url", f"{where}.source")


def _result_content(
    content: str | list[_Block] | None, where: str
) -> str | list[TextPart | ImagePart]:
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[TextPart | ImagePart] = []
    for j, block in enumerate(content):
        part = _part(block, f"{where}.content[{j}]")
        if not isinstance(part, (TextPart, ImagePart)):
            raise invalid("a tool result holds only text and images", f"{where}.content[{j}]")
        parts.append(part)
    return parts


def _tool(tool: _Tool, where: str) -> Tool:
    if tool.type not in _CLIENT_TOOL or tool.input_schema is None:
        raise invalid(f"server tools ('{tool.type}') cannot be translated", f"{where}.type")
    return Tool(
        name=tool.name,
        description=tool.description,
        parameters=tool.input_schema,
        cache_control=tool.cache_control,
    )


def _tool_choice(choice: _ToolChoice | None) -> ToolChoice | None:
    if choice is None:
        return None
    if choice.type == "any":
        return ToolChoice(type="required")
    return ToolChoice(type=choice.type, name=choice.name)


# -- canonical -> body ---------------------------------------------------------------------

_UNSAFE_ID = re.compile(r"[^a-zA-Z0-9_-]")


def _safe_id(tool_id: str) -> str:
    """Anthropic accepts [a-zA-Z0-9_-] in tool ids; some OpenAI-compatible servers use
    others. The same mapping applies to calls and results, so the pairs still match."""
    return _UNSAFE_ID.sub("_", tool_id) if _UNSAFE_ID.search(tool_id) else tool_id


def from_canonical(req: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = dict(req.extra.get(WIRE, {}))
    body |= {
        "model": model,
        "max_tokens": req.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": _messages(req.messages),
    }
    if req.system:
        plain = len(req.system) == 1 and req.system[0].cache_control is None
        body["system"] = req.system[0].text if plain else [_block(p) for p in req.system]
    if req.tools:
        body["tools"] = [_tool_dict(t) for t in req.tools]
        choice = _tool_choice_dict(req.tool_choice, req.parallel_tool_calls)
        if choice is not None:
            body["tool_choice"] = choice
    if req.temperature is not None:
        body["temperature"] = min(max(req.temperature, 0.0), 1.0)  # OpenAI allows up to 2
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.stop:
        body["stop_sequences"] = req.stop
    if req.user:
        body["metadata"] = {"user_id": req.user}
    if stream:
        body["stream"] = True
    return body


def _messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Consecutive messages of one role merge (several OpenAI tool messages, or a tool
    message then a user message, form one user turn); tool results lead their turn."""
    out: list[dict[str, Any]] = []
    for message in messages:
        parts = (p for p in message.content if not isinstance(p, ProviderPart) or p.wire == WIRE)
        blocks = [_block(p) for p in parts]
        if not blocks:
            continue
        if out and out[-1]["role"] == message.role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": message.role, "content": blocks})
    for turn in out:
        if turn["role"] == "user":
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")  # stable
    return out


def _block(part: Part) -> dict[str, Any]:
    block: dict[str, Any]
    if isinstance(part, ProviderPart):
        return part.block
    if isinstance(part, TextPart):
        block = {"type": "text", "text": part.text}
    elif isinstance(part, ImagePart):
        block = {"type": "image", "source": _source(part)}
    elif isinstance(part, ToolCallPart):
        block = {
            "type": "tool_use",
            "id": _safe_id(part.id),
            "name": part.name,
            "input": parse_arguments(part.arguments),
        }
    else:
        content = part.content
        block = {
            "type": "tool_result",
            "tool_use_id": _safe_id(part.tool_call_id),
            "content": content if isinstance(content, str) else [_block(p) for p in content],
        }
        if part.is_error:
            block["is_error"] = True
    if part.cache_control is not None:
        block["cache_control"] = part.cache_control
    return block


def _source(part: ImagePart) -> dict[str, Any]:
    if part.url:
        return {"type": "url", "url": part.url}
    return {"type": "base64", "media_type": part.media_type, "data": part.data}


def _tool_dict(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name, "input_schema": tool.parameters}
    if tool.description:
        out["description"] = tool.description
    if tool.cache_control is not None:
        out["cache_control"] = tool.cache_control
    return out


def _tool_choice_dict(choice: ToolChoice | None, parallel: bool | None) -> dict[str, Any] | None:
    if choice is None and parallel is not False:
        return None
    kind = choice.type if choice else "auto"
    out: dict[str, Any] = {"type": "any" if kind == "required" else kind}
    if kind == "tool":
        out["name"] = choice.name if choice else None
    if parallel is False and kind != "none":
        out["disable_parallel_tool_use"] = True
    return out
