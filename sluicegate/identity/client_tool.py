"""Which client program sent a request: Cursor, Claude Code, an SDK, curl...

    X-Sluice-Tool (under every header prefix)   wins when sent (sanitised)
    else TOOLS, in order, on User-Agent/X-Title  the first entry that matches
    else the User-Agent's first product name     `name/version` -> name (sanitised)
    else None

`TOOLS` is the one table: coding agents and IDEs first (they often run on an SDK whose
name is in their User-Agent too), then frameworks, then SDKs, then plain HTTP clients.
An entry matches the User-Agent, or `X-Title`: the app-attribution header OpenRouter
defined, which agents such as Aider and Cline send while their User-Agent is the SDK's.
Each entry's example User-Agent is in tests/identity/test_client_tool.py.

Recognising costs a few regex searches, so results are kept in a bounded LRU keyed by
(User-Agent, X-Title): a client sends the same strings on every call.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sluicegate.identity.envelope import DEFAULT_PREFIXES

MAX_TOOL_CHARS = 64
CACHE_SIZE = 2048  # distinct (User-Agent, X-Title) pairs remembered
_SCANNED_CHARS = 512  # of a User-Agent: enough for any real one, bounds the regex work


@dataclass(frozen=True)
class ToolPattern:
    """`tool` when the User-Agent matches `user_agent` or X-Title matches `title`
    (case-insensitive searches)."""

    tool: str
    user_agent: str | None = None
    title: str | None = None


TOOLS: tuple[ToolPattern, ...] = (
    # coding agents and editors
    ToolPattern("claude-code", user_agent=r"^claude-cli/"),
    ToolPattern("codex", user_agent=r"^codex_[a-z_]+/"),
    ToolPattern("cursor", user_agent=r"\bcursor/"),
    ToolPattern("github-copilot", user_agent=r"\bgithubcopilot"),
    ToolPattern("windsurf", user_agent=r"\bwindsurf/", title=r"^windsurf$"),
    ToolPattern("cline", user_agent=r"^cline/", title=r"^cline$"),
    ToolPattern("roo-code", user_agent=r"^roo-code/", title=r"^roo code$"),
    ToolPattern("continue", user_agent=r"^continue/", title=r"^continue$"),
    ToolPattern("aider", user_agent=r"\baider/", title=r"^aider$"),
    ToolPattern("zed", user_agent=r"^zed/"),
    ToolPattern("opencode", user_agent=r"^opencode/", title=r"^opencode$"),
    ToolPattern("gemini-cli", user_agent=r"^geminicli/"),
    # frameworks (each runs on an SDK, so before them)
    ToolPattern("langchain", user_agent=r"langchain"),
    ToolPattern("llamaindex", user_agent=r"llama[-_]?index"),
    ToolPattern("vercel-ai-sdk", user_agent=r"(^|\s)ai-sdk/"),
    ToolPattern("litellm", user_agent=r"^litellm/"),
    ToolPattern("openai-agents", user_agent=r"^agents/python "),
    # the official SDKs (their User-Agent is the client class's name: AsyncOpenAI...)
    ToolPattern("openai-python", user_agent=r"^(async)?(azure)?openai/python "),
    ToolPattern("openai-js", user_agent=r"^(azure)?openai/js "),
    ToolPattern("anthropic-python", user_agent=r"^(async)?anthropic\w*/python "),
    ToolPattern("anthropic-js", user_agent=r"^anthropic\w*/js "),
    # plain HTTP clients
    ToolPattern("curl", user_agent=r"^curl/"),
    ToolPattern("python-requests", user_agent=r"^python-requests/"),
    ToolPattern("python-httpx", user_agent=r"^python-httpx/"),
    ToolPattern("browser", user_agent=r"^mozilla/"),
)

_UNSAFE = re.compile(r"[^a-z0-9._+:@-]+")
_PRODUCT = re.compile(r"(?:^|\s)([!#$%&'*+.^_`|~0-9A-Za-z-]+)/\S")


def sanitise(value: str) -> str | None:
    """A tool name as recorded: lower-case, runs of anything but letters, digits and
    . _ + : @ - as one '-', at most MAX_TOOL_CHARS; None when nothing is left."""
    cleaned = _UNSAFE.sub("-", value.strip().lower()).strip("-")
    return cleaned[:MAX_TOOL_CHARS].rstrip("-") or None


def product_name(user_agent: str) -> str | None:
    """The name of the User-Agent's first `name/version` product."""
    match = _PRODUCT.search(user_agent[:_SCANNED_CHARS])
    return sanitise(match.group(1)) if match else None


class _Compiled:
    def __init__(self, patterns: Sequence[ToolPattern]):
        def compile_(text: str | None) -> re.Pattern[str] | None:
            return re.compile(text, re.IGNORECASE) if text else None

        self.entries = [(p.tool, compile_(p.user_agent), compile_(p.title)) for p in patterns]

    def recognise(self, user_agent: str, title: str) -> str | None:
        scanned = user_agent[:_SCANNED_CHARS]
        title = title.strip()[:_SCANNED_CHARS]
        for tool, ua_pattern, title_pattern in self.entries:
            if ua_pattern is not None and scanned and ua_pattern.search(scanned):
                return tool
            if title_pattern is not None and title and title_pattern.search(title):
                return tool
        return product_name(user_agent) if user_agent else None


class ClientToolReader:
    """Reads the client tool from ASGI raw headers (lower-case names)."""

    def __init__(
        self,
        prefixes: Sequence[str] = DEFAULT_PREFIXES,
        *,
        tools: Sequence[ToolPattern] = TOOLS,
        cache_size: int = CACHE_SIZE,
    ):
        self._explicit = frozenset(f"{prefix.lower()}tool".encode() for prefix in prefixes)
        compiled = _Compiled(tools)
        self.recognise = functools.lru_cache(maxsize=cache_size)(compiled.recognise)

    def read(self, raw_headers: list[tuple[bytes, bytes]]) -> str | None:
        user_agent = title = b""
        for name, value in raw_headers:
            if name == b"user-agent":
                user_agent = value
            elif name == b"x-title":
                title = value
            elif name in self._explicit:
                explicit = sanitise(value.decode("latin-1"))
                if explicit is not None:
                    return explicit
        if not user_agent and not title:
            return None
        return self.recognise(user_agent.decode("latin-1"), title.decode("latin-1"))
