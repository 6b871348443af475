"""What the emulated model answers: API-neutral and deterministic.

Each wire module reduces its request to a `Conversation`; `compose_reply` turns that into
a `Reply` (text, or a tool call whose arguments satisfy the tool's schema). The same
conversation always gives the same reply.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

from sluicegate.emulator.schema_instance import instance_for_schema
from sluicegate.emulator.tokens import CHARS_PER_TOKEN, canonical_json, text_tokens

_QUOTE_CHARS = 160

_CLOSING_SENTENCES = (
    "That is all the emulator has to say about it.",
    "The answer is deterministic, so asking again gives the same words.",
    "No real model was consulted in the making of this reply.",
    "Streaming splits these words into one chunk per word.",
    "Token counts here are approximate: about four characters per token.",
)


class ToolMode(Enum):
    NONE = "none"  # never call a tool
    AUTO = "auto"  # call a tool named in the user's words, else answer in text
    REQUIRED = "required"  # must call some tool (OpenAI "required", Anthropic "any")


class Ending(Enum):
    COMPLETE = "complete"
    LENGTH = "length"  # ran into max_tokens
    STOP_SEQUENCE = "stop_sequence"
    TOOL_CALL = "tool_call"


@dataclass(frozen=True)
class ToolOffer:
    name: str
    schema: dict[str, Any]


@dataclass(frozen=True)
class Conversation:
    model: str
    last_user_text: str
    last_tool_result: str | None = None  # set when the last message is a tool result
    tools: tuple[ToolOffer, ...] = ()
    tool_mode: ToolMode = ToolMode.AUTO
    forced_tool: str | None = None  # a tool the request names explicitly
    max_tokens: int | None = None
    stop_sequences: tuple[str, ...] = ()
    announces_tool_calls: bool = False  # Claude says what it will do before an "auto" call


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]

    @property
    def arguments_json(self) -> str:
        return canonical_json(self.arguments)


@dataclass(frozen=True)
class Reply:
    text: str  # may be empty when the reply is only a tool call
    tool_call: ToolCall | None = None
    ending: Ending = Ending.COMPLETE
    stop_sequence: str | None = None
    output_tokens: int = 0


def compose_reply(conversation: Conversation) -> Reply:
    tool = _chosen_tool(conversation)
    if tool is not None:
        arguments = instance_for_schema(tool.schema)
        # Tool arguments are always a JSON object, whatever odd schema a tool declares.
        call = ToolCall(tool.name, arguments if isinstance(arguments, dict) else {})
        announce = (
            conversation.announces_tool_calls
            and conversation.forced_tool is None
            and conversation.tool_mode is ToolMode.AUTO
        )
        text = f"I'll use the {tool.name} tool." if announce else ""
        tokens = text_tokens(text) + text_tokens(call.arguments_json)
        return Reply(text=text, tool_call=call, ending=Ending.TOOL_CALL, output_tokens=tokens)
    return _limited(reply_text(conversation), conversation)


def reply_text(conversation: Conversation) -> str:
    if conversation.last_tool_result is not None:
        opening = f"The tool returned: {_quoted(conversation.last_tool_result)}."
    else:
        opening = (
            f"Hello from the {conversation.model} emulator. "
            f"You said: {_quoted(conversation.last_user_text)}."
        )
    digest = hashlib.sha256(f"{conversation.model}\0{opening}".encode()).digest()
    first = _CLOSING_SENTENCES[digest[0] % len(_CLOSING_SENTENCES)]
    second = _CLOSING_SENTENCES[(digest[0] + 1 + digest[1] % 3) % len(_CLOSING_SENTENCES)]
    return f"{opening} {first} {second}"


def split_words(text: str) -> list[str]:
    """Stream pieces: each word with the whitespace before it, so pieces join back."""
    return re.findall(r"\s*\S+", text) or ([text] if text else [])


def split_fixed(text: str, size: int = 12) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _chosen_tool(conversation: Conversation) -> ToolOffer | None:
    tools = {tool.name: tool for tool in conversation.tools}
    if not tools or conversation.tool_mode is ToolMode.NONE:
        return None
    if conversation.forced_tool is not None:
        return tools.get(conversation.forced_tool)
    named = _first_named(conversation.tools, conversation.last_user_text)
    if conversation.tool_mode is ToolMode.REQUIRED:
        return named or conversation.tools[0]
    if conversation.last_tool_result is not None:
        return None  # after a tool result the model answers with it
    return named


def _first_named(tools: tuple[ToolOffer, ...], text: str) -> ToolOffer | None:
    return next((tool for tool in tools if tool.name and tool.name in text), None)


def _limited(text: str, conversation: Conversation) -> Reply:
    ending, stop_sequence = Ending.COMPLETE, None
    cut = len(text)
    for sequence in conversation.stop_sequences:
        found = text.find(sequence) if sequence else -1
        if 0 <= found < cut:
            cut, ending, stop_sequence = found, Ending.STOP_SEQUENCE, sequence
    limit = conversation.max_tokens
    if limit is not None and cut > limit * CHARS_PER_TOKEN:
        cut, ending, stop_sequence = limit * CHARS_PER_TOKEN, Ending.LENGTH, None
    kept = text[:cut]
    return Reply(
        text=kept, ending=ending, stop_sequence=stop_sequence, output_tokens=text_tokens(kept)
    )


def _quoted(text: str) -> str:
    collapsed = " ".join(text.split())
    if len(collapsed) > _QUOTE_CHARS:
        collapsed = collapsed[:_QUOTE_CHARS].rsplit(" ", 1)[0] + "..."
    return f'"{collapsed}"' if collapsed else '""'
