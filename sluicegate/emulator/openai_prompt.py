"""OpenAI chat request: validation, prompt token count, and the neutral Conversation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sluicegate.emulator import fields
from sluicegate.emulator.limits import MAX_OUTPUT_TOKENS
from sluicegate.emulator.replies import Conversation, ToolMode, ToolOffer
from sluicegate.emulator.tokens import (
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD_TOKENS,
    REPLY_PRIMING_TOKENS,
    canonical_json,
    json_tokens,
    text_tokens,
)
from sluicegate.emulator.wire_errors import (
    RequestInvalid,
    invalid_value,
    missing_field,
    wrong_type,
)

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_MAX_STOP_SEQUENCES = 4


@dataclass(frozen=True)
class ChatRequest:
    model: str
    stream: bool
    include_usage: bool
    prompt_tokens: int
    prompt_text: str  # the prompt serialized in order, for prefix caching
    conversation: Conversation


def parse_chat_request(body: dict[str, Any]) -> ChatRequest:
    model = fields.required_text(body, "model")
    messages = fields.each_object(
        fields.required_list(body, "messages", non_empty=True), "messages"
    )
    prompt_tokens = REPLY_PRIMING_TOKENS + sum(_message_tokens(p, m) for p, m in messages)
    tools = _function_tools(body)
    if tools:
        prompt_tokens += json_tokens([{"name": t.name, "parameters": t.schema} for t in tools])
    response_format = fields.optional_object(body, "response_format")
    if response_format is not None:
        prompt_tokens += json_tokens(response_format)
    stream = fields.optional_bool(body, "stream")
    stream_options = fields.optional_object(body, "stream_options")
    if stream_options is not None and not stream:
        raise invalid_value(
            "stream_options", "'stream_options' is only allowed when 'stream' is enabled."
        )
    mode, forced, tools = _tool_choice(body, tools)
    conversation = Conversation(
        model=model,
        last_user_text=_last_user_text([m for _, m in messages]),
        last_tool_result=_tool_result(messages[-1][1]),
        tools=tools,
        tool_mode=mode,
        forced_tool=forced,
        max_tokens=_max_tokens(body),
        stop_sequences=_stop_sequences(body),
    )
    fields.optional_int(body, "n", minimum=1)  # accepted and ignored: always one choice
    fields.optional_number(body, "temperature")
    return ChatRequest(
        model=model,
        stream=stream,
        include_usage=bool(
            stream_options
            and fields.optional_bool(stream_options, "include_usage", "stream_options")
        ),
        prompt_tokens=prompt_tokens,
        prompt_text=canonical_json(body.get("tools"))
        + "".join(canonical_json(m) for _, m in messages),
        conversation=conversation,
    )


def _message_tokens(where: str, message: dict[str, Any]) -> int:
    role = fields.one_of(
        fields.required_text(message, "role", where), ROLES, fields.path(where, "role")
    )
    tokens = MESSAGE_OVERHEAD_TOKENS + text_tokens(
        fields.optional_text(message, "name", where) or ""
    )
    content = message.get("content")
    tool_calls = fields.optional_list(message, "tool_calls", where)
    if content is None and role != "assistant":
        raise missing_field(fields.path(where, "content"))
    if role == "tool":
        fields.required_text(message, "tool_call_id", where)
    tokens += _content_tokens(content, fields.path(where, "content"))
    if tool_calls:
        tokens += json_tokens(tool_calls)
    return tokens


def _content_tokens(content: Any, where: str) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return text_tokens(content)
    if not isinstance(content, list):
        raise wrong_type(where, "a string or an array of content parts")
    tokens = 0
    for part_path, part in fields.each_object(content, where):
        kind = fields.required_text(part, "type", part_path)
        if kind in ("text", "refusal"):
            tokens += text_tokens(fields.required_text(part, kind, part_path))
        else:  # images, audio and files cost a fixed amount
            tokens += IMAGE_TOKENS
    return tokens


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            p.get("text", "")
            for p in content
            if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    return _text_of(users[-1].get("content")) if users else ""


def _tool_result(message: dict[str, Any]) -> str | None:
    if message.get("role") in ("tool", "function"):
        return _text_of(message.get("content"))
    return None


def _function_tools(body: dict[str, Any]) -> tuple[ToolOffer, ...]:
    offers: list[ToolOffer] = []
    for where, tool in fields.each_object(fields.optional_list(body, "tools") or [], "tools"):
        kind = fields.one_of(
            fields.required_text(tool, "type", where),
            ("function", "custom"),
            fields.path(where, "type"),
        )
        if kind != "function":
            continue  # custom (free-form) tools are accepted but never called
        function = fields.optional_object(tool, "function", where)
        if function is None:
            raise missing_field(fields.path(where, "function"))
        name = fields.required_text(function, "name", fields.path(where, "function"))
        schema = fields.optional_object(function, "parameters", fields.path(where, "function"))
        offers.append(ToolOffer(name, schema or {"type": "object", "properties": {}}))
    return tuple(offers)


def _tool_choice(
    body: dict[str, Any], tools: tuple[ToolOffer, ...]
) -> tuple[ToolMode, str | None, tuple[ToolOffer, ...]]:
    choice = body.get("tool_choice")
    if choice is None:
        return (ToolMode.AUTO if tools else ToolMode.NONE), None, tools
    if not body.get("tools"):
        raise invalid_value(
            "tool_choice", "'tool_choice' is only allowed when 'tools' are specified."
        )
    if isinstance(choice, str):
        mode = fields.one_of(choice, ("none", "auto", "required"), "tool_choice")
        return ToolMode(mode), None, tools
    if not isinstance(choice, dict):
        raise wrong_type("tool_choice", "a string or an object")
    kind = fields.required_text(choice, "type", "tool_choice")
    if kind == "allowed_tools":
        return _allowed_tools(choice, tools)
    function = fields.optional_object(choice, "function", "tool_choice")
    name = fields.required_text(function or {}, "name", "tool_choice.function")
    if name not in {tool.name for tool in tools}:
        raise invalid_value("tool_choice", f"tool '{name}' is not among the function 'tools'.")
    return ToolMode.REQUIRED, name, tools


def _allowed_tools(
    choice: dict[str, Any], tools: tuple[ToolOffer, ...]
) -> tuple[ToolMode, str | None, tuple[ToolOffer, ...]]:
    allowed = fields.optional_object(choice, "allowed_tools", "tool_choice") or {}
    mode = fields.one_of(
        fields.required_text(allowed, "mode", "tool_choice.allowed_tools"),
        ("auto", "required"),
        "tool_choice.allowed_tools.mode",
    )
    names = {
        t.get("function", {}).get("name")
        for t in allowed.get("tools", [])
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
    }
    return ToolMode(mode), None, tuple(tool for tool in tools if tool.name in names)


def _max_tokens(body: dict[str, Any]) -> int | None:
    newer = fields.optional_int(body, "max_completion_tokens", minimum=1, maximum=MAX_OUTPUT_TOKENS)
    older = fields.optional_int(body, "max_tokens", minimum=1, maximum=MAX_OUTPUT_TOKENS)
    return newer if newer is not None else older


def _stop_sequences(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,)
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise wrong_type("stop", "a string or an array of strings")
    if len(stop) > _MAX_STOP_SEQUENCES:
        raise RequestInvalid(
            f"Invalid 'stop': array too long. Expected an array with maximum "
            f"length {_MAX_STOP_SEQUENCES}.",
            param="stop",
        )
    return tuple(stop)
