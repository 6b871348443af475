"""OpenAI Chat Completions (`POST /v1/chat/completions`): the wire codec.

This module is the one to import: the request side lives here, the answer side in
`openai_response` and the stream side in `openai_stream`, both re-exported below.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from sluicegate.model.chat import (
    ChatRequest,
    ImagePart,
    Message,
    Part,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoice,
    ToolResultPart,
)
from sluicegate.wire.common import (
    RequestFacts,
    check_model,
    convert_body,
    estimate_tokens,
    invalid,
    json_chars,
)
from sluicegate.wire.openai_response import (
    parse_error,
    render_error,
    render_stream_error,
    response_from_canonical,
    response_model,
    response_to_canonical,
    usage_from_response,
)
from sluicegate.wire.openai_stream import PassthroughObserver, StreamDecoder, StreamEncoder

__all__ = [
    "PassthroughObserver",
    "StreamDecoder",
    "StreamEncoder",
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

WIRE = "openai"
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]


# -- the body, as far as the gateway reads it (unknown fields are ignored) -----------------


class _ImageURL(msgspec.Struct):
    url: str
    detail: str | None = None


class _Part(msgspec.Struct):
    type: str
    text: str | None = None
    refusal: str | None = None
    image_url: _ImageURL | None = None


class _Function(msgspec.Struct):
    name: str
    arguments: str = ""


class _ToolCall(msgspec.Struct):
    id: str
    function: _Function
    type: str = "function"


class _Message(msgspec.Struct):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[_Part] | None = None
    tool_calls: list[_ToolCall] | None = None
    tool_call_id: str | None = None


class _FunctionDef(msgspec.Struct):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None


class _Tool(msgspec.Struct):
    type: str = "function"
    function: _FunctionDef | None = None


class _NamedChoice(msgspec.Struct):
    type: str
    function: _Function | None = None  # only `name` is read; `arguments` defaults


class _StreamOptions(msgspec.Struct):
    include_usage: bool | None = None


class _Body(msgspec.Struct):
    model: str
    messages: Annotated[list[_Message], msgspec.Meta(min_length=1)]
    stream: bool | None = None
    stream_options: _StreamOptions | None = None
    max_tokens: PositiveInt | None = None
    max_completion_tokens: PositiveInt | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: str | list[str] | None = None
    tools: list[_Tool] | None = None
    tool_choice: str | _NamedChoice | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None


_KNOWN = frozenset(_Body.__struct_fields__)
_ROLE_NEEDS_CONTENT = frozenset({"system", "developer", "user", "tool"})


def _validated(body: dict[str, Any]) -> _Body:
    parsed = convert_body(body, _Body)
    check_model(parsed.model)
    for i, message in enumerate(parsed.messages):
        if message.content is None and message.role in _ROLE_NEEDS_CONTENT:
            raise invalid(f"a {message.role} message needs content", f"messages[{i}].content")
        if message.role == "tool" and not message.tool_call_id:
            raise invalid("a tool message needs tool_call_id", f"messages[{i}].tool_call_id")
    return parsed


# -- request -------------------------------------------------------------------------------


def inspect_request(body: dict[str, Any]) -> RequestFacts:
    parsed = _validated(body)
    chars = images = 0
    for message in parsed.messages:
        if isinstance(message.content, str):
            chars += len(message.content)
        elif message.content:
            for part in message.content:
                chars += len(part.text or part.refusal or "")
                if part.image_url is not None:
                    images += 1
        for call in message.tool_calls or ():
            chars += len(call.function.name) + len(call.function.arguments)
    for tool in parsed.tools or ():
        if tool.function is not None:
            chars += len(tool.function.name) + len(tool.function.description or "")
            chars += json_chars(tool.function.parameters)
    options = parsed.stream_options
    return RequestFacts(
        model=parsed.model,
        stream=bool(parsed.stream),
        max_output_tokens=parsed.max_completion_tokens or parsed.max_tokens,
        include_usage=bool(parsed.stream and options and options.include_usage),
        estimated_input_tokens=estimate_tokens(chars, len(parsed.messages), images),
    )


def prepare_passthrough(body: dict[str, Any], model: str, *, stream: bool) -> dict[str, Any]:
    """Same wire: a shallow copy with the upstream model. Streams always ask for usage; the
    observer hides the usage chunk from a client that did not ask for it."""
    out = dict(body)
    out["model"] = model
    if stream:
        out["stream"] = True
        options = out.get("stream_options")
        out["stream_options"] = {
            **(options if isinstance(options, dict) else {}),
            "include_usage": True,
        }
    return out


def to_canonical(body: dict[str, Any]) -> ChatRequest:
    parsed = _validated(body)
    system: list[TextPart] = []
    messages: list[Message] = []
    for i, message in enumerate(parsed.messages):
        where = f"messages[{i}]"
        if message.role in ("system", "developer"):
            # Hoisted wherever it stood: the canonical form keeps system text apart.
            system.extend(_text_parts(message.content, where))
        elif message.role == "user":
            messages.append(Message(role="user", content=_user_parts(message.content, where)))
        elif message.role == "assistant":
            messages.append(Message(role="assistant", content=_assistant_parts(message)))
        elif message.role == "tool":
            _add_tool_result(messages, message, where)
        else:
            raise invalid("legacy function messages cannot be translated", f"{where}.role")
    stop = parsed.stop
    return ChatRequest(
        system=system,
        messages=messages,
        tools=[_tool(t, f"tools[{i}]") for i, t in enumerate(parsed.tools or ())],
        tool_choice=_tool_choice(parsed.tool_choice),
        max_tokens=parsed.max_completion_tokens or parsed.max_tokens,
        temperature=parsed.temperature,
        top_p=parsed.top_p,
        stop=[stop] if isinstance(stop, str) else list(stop or ()),
        stream=bool(parsed.stream),
        user=parsed.user,
        parallel_tool_calls=parsed.parallel_tool_calls,
        extra={WIRE: {k: v for k, v in body.items() if k not in _KNOWN}},
    )


def _text_parts(content: str | list[_Part] | None, where: str) -> list[TextPart]:
    parts: list[TextPart] = []
    for part in _user_parts(content, where):
        if not isinstance(part, TextPart):
            raise invalid("only text is allowed here", f"{where}.content")
        parts.append(part)
    return parts


def _user_parts(content: str | list[_Part] | None, where: str) -> list[Part]:
    if isinstance(content, str):
        return [TextPart(text=content)] if content else []
    parts: list[Part] = []
    for j, part in enumerate(content or ()):
        if part.type == "text" and part.text:
            parts.append(TextPart(text=part.text))
        elif part.type == "image_url":
            if part.image_url is None:
                raise invalid(
                    "an image_url part needs 'image_url'", f"{where}.content[{j}].image_url"
                )
            parts.append(_image(part.image_url, f"{where}.content[{j}].image_url.url"))
        elif part.type not in ("text", "refusal"):
            raise invalid(
                f"content of type '{part.type}' cannot be translated to another provider",
                f"{where}.content[{j}].type",
            )
    return parts


def _image(image: _ImageURL, where: str) -> ImagePart:
    url = image.url
    if not url.startswith("data:"):
        return ImagePart(url=url, detail=image.detail)
    header, sep, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not sep or encoding != "base64" or not media_type:
        raise invalid("a data URL must look like data:<media type>;base64,<data>", where)
    return ImagePart(media_type=media_type, data=data, detail=image.detail)


def _assistant_parts(message: _Message) -> list[Part]:
    parts: list[Part] = []
    if isinstance(message.content, str):
        if message.content:
            parts.append(TextPart(text=message.content))
    else:
        for part in message.content or ():
            text = part.text or part.refusal
            if text:
                parts.append(TextPart(text=text))
    for call in message.tool_calls or ():
        parts.append(
            ToolCallPart(id=call.id, name=call.function.name, arguments=call.function.arguments)
        )
    return parts


def _add_tool_result(messages: list[Message], message: _Message, where: str) -> None:
    content: str | list[TextPart | ImagePart] = (
        message.content
        if isinstance(message.content, str)
        else [*_text_parts(message.content, where)]
    )
    result = ToolResultPart(tool_call_id=message.tool_call_id or "", content=content)
    last = messages[-1] if messages else None
    # Consecutive tool messages answer one assistant turn: one user message holds them all.
    if last and last.role == "user" and all(isinstance(p, ToolResultPart) for p in last.content):
        last.content.append(result)
    else:
        messages.append(Message(role="user", content=[result]))


def _tool(tool: _Tool, where: str) -> Tool:
    if tool.type != "function" or tool.function is None:
        raise invalid(f"tools of type '{tool.type}' cannot be translated", f"{where}.type")
    function = tool.function
    schema = function.parameters or {"type": "object", "properties": {}}
    return Tool(name=function.name, description=function.description, parameters=schema)


def _tool_choice(choice: str | _NamedChoice | None) -> ToolChoice | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise invalid(f"unknown tool_choice '{choice}'", "tool_choice")
        return ToolChoice(type=choice)  # type: ignore[arg-type]
    if choice.type != "function" or choice.function is None:
        raise invalid(f"tool_choice of type '{choice.type}' cannot be translated", "tool_choice")
    return ToolChoice(type="tool", name=choice.function.name)


def from_canonical(req: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = dict(req.extra.get(WIRE, {}))
    messages: list[dict[str, Any]] = []
    if req.system:
        messages.append({"role": "system", "content": "\n".join(p.text for p in req.system)})
    for message in req.messages:
        if message.role == "assistant":
            messages.append(_assistant_message(message.content))
        else:
            messages.extend(_user_messages(message.content))
    body |= {"model": model, "messages": messages}
    if req.tools:
        body["tools"] = [_tool_dict(t) for t in req.tools]
        if req.tool_choice is not None:
            body["tool_choice"] = _tool_choice_value(req.tool_choice)
        if req.parallel_tool_calls is not None:  # OpenAI refuses it without tools
            body["parallel_tool_calls"] = req.parallel_tool_calls
    optional = {
        "max_completion_tokens": req.max_tokens,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "stop": req.stop or None,
        "user": req.user,
    }
    body |= {k: v for k, v in optional.items() if v is not None}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _user_messages(parts: list[Part]) -> list[dict[str, Any]]:
    """One canonical user message may become tool messages (first, since they must follow
    the assistant's tool calls) and then one user message with the rest."""
    out: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, ToolResultPart):
            text, images = _tool_result_content(part)
            out.append({"role": "tool", "tool_call_id": part.tool_call_id, "content": text})
            rest.extend(images)  # tool messages carry text only: images follow as user content
        elif isinstance(part, TextPart):
            rest.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            rest.append(_image_dict(part))
    if len(rest) == 1 and rest[0]["type"] == "text":
        out.append({"role": "user", "content": rest[0]["text"]})
    elif rest:
        out.append({"role": "user", "content": rest})
    return out


def _tool_result_content(part: ToolResultPart) -> tuple[str, list[dict[str, Any]]]:
    if isinstance(part.content, str):
        text = part.content
        images: list[dict[str, Any]] = []
    else:
        text = "\n".join(p.text for p in part.content if isinstance(p, TextPart))
        images = [_image_dict(p) for p in part.content if isinstance(p, ImagePart)]
    if part.is_error:
        text = f"Error: {text}"  # OpenAI has no error flag on a tool result
    return text, images


def _image_dict(part: ImagePart) -> dict[str, Any]:
    url = part.url if part.url else f"data:{part.media_type};base64,{part.data}"
    image: dict[str, Any] = {"url": url}
    if part.detail:
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}


def _assistant_message(parts: list[Part]) -> dict[str, Any]:
    text = "".join(p.text for p in parts if isinstance(p, TextPart))
    calls = [
        {"id": p.id, "type": "function", "function": {"name": p.name, "arguments": p.arguments}}
        for p in parts
        if isinstance(p, ToolCallPart)
    ]
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    elif not text:
        message["content"] = ""
    return message


def _tool_dict(tool: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def _tool_choice_value(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.type == "tool":
        return {"type": "function", "function": {"name": choice.name or ""}}
    return choice.type
