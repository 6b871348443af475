"""Anthropic messages request: validation, input token count, cache breakpoints, and the
neutral Conversation.

The prompt is read in the order Anthropic caches it (tools, then system, then messages)
as a list of blocks; a block carrying `cache_control` ends a cacheable prefix.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sluicegate.emulator import fields
from sluicegate.emulator.limits import MAX_OUTPUT_TOKENS
from sluicegate.emulator.prompt_cache import Breakpoint
from sluicegate.emulator.replies import Conversation, ToolMode, ToolOffer
from sluicegate.emulator.tokens import (
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD_TOKENS,
    canonical_json,
    json_tokens,
    text_tokens,
)
from sluicegate.emulator.wire_errors import RequestInvalid, invalid_value, wrong_type

_MAX_BREAKPOINTS = 4
_FIXED_COST_BLOCKS = ("image", "document", "search_result")


@dataclass(frozen=True)
class MessagesRequest:
    model: str
    stream: bool
    input_tokens: int  # the whole prompt, cached or not
    breakpoints: list[Breakpoint]
    conversation: Conversation


@dataclass
class _PromptWalk:
    """Accumulates tokens block by block and notes each cache breakpoint's prefix."""

    model: str
    tokens: int = 0
    breakpoints: list[Breakpoint] = field(default_factory=list)
    digest: hashlib._Hash = field(init=False, repr=False)  # running hash of the prefix

    def __post_init__(self) -> None:
        self.digest = hashlib.sha256(f"anthropic\0{self.model}\0".encode())

    def add(self, block: Any, tokens: int, where: str) -> None:
        cache_control = block.get("cache_control") if isinstance(block, dict) else None
        plain = (
            {k: v for k, v in block.items() if k != "cache_control"}
            if isinstance(block, dict)
            else block
        )
        self.digest.update(canonical_json(plain).encode() + b"\0")
        self.tokens += tokens
        if cache_control is not None:
            self.breakpoints.append(
                Breakpoint(self.digest.copy().hexdigest(), self.tokens, _ttl(cache_control, where))
            )


def parse_messages_request(
    body: dict[str, Any], *, needs_max_tokens: bool = True
) -> MessagesRequest:
    model = fields.required_text(body, "model")
    max_tokens = fields.optional_int(body, "max_tokens", minimum=1, maximum=MAX_OUTPUT_TOKENS)
    if needs_max_tokens and max_tokens is None:
        raise RequestInvalid(
            "Missing required parameter: 'max_tokens'.",
            param="max_tokens",
            anthropic_message="max_tokens: Field required",
        )
    messages = fields.each_object(fields.required_list(body, "messages"), "messages")
    if not messages:
        raise invalid_value("messages", "at least one message is required")
    walk = _PromptWalk(model)
    tools = _walk_tools(body, walk)
    _walk_system(body.get("system"), walk)
    for where, message in messages:
        _walk_message(where, message, walk)
    if len(walk.breakpoints) > _MAX_BREAKPOINTS:
        raise RequestInvalid(
            f"A maximum of {_MAX_BREAKPOINTS} blocks with cache_control may "
            f"be provided. Found {len(walk.breakpoints)}."
        )
    mode, forced = _tool_choice(body, tools)
    conversation = Conversation(
        model=model,
        last_user_text=_last_user_text([m for _, m in messages]),
        last_tool_result=_tool_result(messages[-1][1]) if messages else None,
        tools=tools,
        tool_mode=mode,
        forced_tool=forced,
        max_tokens=max_tokens,
        stop_sequences=_stop_sequences(body),
        announces_tool_calls=True,
    )
    return MessagesRequest(
        model, fields.optional_bool(body, "stream"), walk.tokens, walk.breakpoints, conversation
    )


def _walk_tools(body: dict[str, Any], walk: _PromptWalk) -> tuple[ToolOffer, ...]:
    offers: list[ToolOffer] = []
    for where, tool in fields.each_object(fields.optional_list(body, "tools") or [], "tools"):
        name = fields.required_text(tool, "name", where)
        kind = fields.optional_text(tool, "type", where) or "custom"
        schema = fields.optional_object(tool, "input_schema", where)
        if kind == "custom" and schema is None:
            raise RequestInvalid(
                f"{where}.input_schema: Field required", param=fields.path(where, "input_schema")
            )
        walk.add(tool, json_tokens({k: v for k, v in tool.items() if k != "cache_control"}), where)
        offers.append(ToolOffer(name, schema or {"type": "object", "properties": {}}))
    return tuple(offers)


def _walk_system(system: Any, walk: _PromptWalk) -> None:
    if system is None:
        return
    if isinstance(system, str):
        walk.add(system, text_tokens(system), "system")
        return
    if not isinstance(system, list):
        raise wrong_type("system", "a valid string or a list of text blocks")
    for where, block in fields.each_object(system, "system"):
        walk.add(block, text_tokens(fields.required_text(block, "text", where)), where)


def _walk_message(where: str, message: dict[str, Any], walk: _PromptWalk) -> None:
    role = fields.required_text(message, "role", where)
    fields.one_of(role, ("user", "assistant"), fields.path(where, "role"))
    content = message.get("content")
    content_path = fields.path(where, "content")
    if content is None:
        raise RequestInvalid(f"{content_path}: Field required", param=content_path)
    if isinstance(content, str):
        walk.add(
            {"role": role, "content": content},
            MESSAGE_OVERHEAD_TOKENS + text_tokens(content),
            content_path,
        )
        return
    if not isinstance(content, list):
        raise wrong_type(content_path, "a valid string or a list of content blocks")
    walk.add({"role": role}, MESSAGE_OVERHEAD_TOKENS, where)
    for block_path, block in fields.each_object(content, content_path):
        walk.add(block, block_tokens(block, block_path), block_path)


def block_tokens(block: dict[str, Any], where: str) -> int:
    kind = fields.required_text(block, "type", where)
    if kind == "text":
        return text_tokens(fields.required_text(block, "text", where))
    if kind in _FIXED_COST_BLOCKS:
        return IMAGE_TOKENS
    if kind == "tool_use":
        return text_tokens(fields.required_text(block, "name", where)) + json_tokens(
            block.get("input", {})
        )
    if kind == "tool_result":
        fields.required_text(block, "tool_use_id", where)
        return _tool_result_tokens(block.get("content"), fields.path(where, "content"))
    if kind == "thinking":
        return text_tokens(str(block.get("thinking", "")))
    return json_tokens({k: v for k, v in block.items() if k != "cache_control"})


def _tool_result_tokens(content: Any, where: str) -> int:
    if content is None:
        return 0
    if isinstance(content, str):
        return text_tokens(content)
    if not isinstance(content, list):
        raise wrong_type(where, "a valid string or a list of content blocks")
    return sum(block_tokens(b, p) for p, b in fields.each_object(content, where))


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return " ".join(
        b["text"]
        for b in content
        if isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
    )


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    return _text_of(users[-1].get("content")) if users else ""


def _tool_result(message: dict[str, Any]) -> str | None:
    content = message.get("content")
    if message.get("role") != "user" or not isinstance(content, list):
        return None
    results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
    if not results:
        return None
    return " ".join(_text_of(b.get("content")) for b in results)


def _tool_choice(body: dict[str, Any], tools: tuple[ToolOffer, ...]) -> tuple[ToolMode, str | None]:
    choice = fields.optional_object(body, "tool_choice")
    if choice is None:
        return (ToolMode.AUTO if tools else ToolMode.NONE), None
    kind = fields.one_of(
        fields.required_text(choice, "type", "tool_choice"),
        ("auto", "any", "tool", "none"),
        "tool_choice.type",
    )
    if kind in ("any", "tool") and not tools:
        raise invalid_value("tool_choice", f"tool_choice.type '{kind}' requires tools")
    if kind == "tool":
        name = fields.required_text(choice, "name", "tool_choice")
        if name not in {tool.name for tool in tools}:
            raise invalid_value("tool_choice.name", f"Tool '{name}' not found in tools")
        return ToolMode.REQUIRED, name
    return {"auto": ToolMode.AUTO, "any": ToolMode.REQUIRED, "none": ToolMode.NONE}[kind], None


def _stop_sequences(body: dict[str, Any]) -> tuple[str, ...]:
    sequences = fields.optional_list(body, "stop_sequences") or []
    if not all(isinstance(s, str) for s in sequences):
        raise wrong_type("stop_sequences", "a list of strings")
    return tuple(sequences)


def _ttl(cache_control: Any, where: str) -> str:
    if not isinstance(cache_control, dict) or cache_control.get("type") != "ephemeral":
        raise invalid_value(f"{where}.cache_control", "expected {'type': 'ephemeral'}")
    ttl = cache_control.get("ttl", "5m")
    return fields.one_of(str(ttl), ("5m", "1h"), f"{where}.cache_control.ttl")
