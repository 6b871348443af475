"""The client tool: X-Sluice-Tool when sent, else the recognition table on the
User-Agent (and X-Title), else the User-Agent's first product name, else None."""

from __future__ import annotations

import time

import pytest

from sluicegate.identity.client_tool import (
    MAX_TOOL_CHARS,
    TOOLS,
    ClientToolReader,
    product_name,
    sanitise,
)

# One real User-Agent per entry of the table (from each tool's source or captured
# traffic), and what it must be recorded as.
EXAMPLES: list[tuple[str, str, str]] = [
    ("claude-code", "claude-cli/2.0.24 (external, cli)", ""),
    ("claude-code", "claude-cli/2.0.62 (external, claude-vscode, agent-sdk/0.1.62)", ""),
    ("codex", "codex_cli_rs/0.38.0 (Ubuntu 24.04.2 LTS; x86_64) WindowsTerminal", ""),
    ("codex", "codex_vscode/0.44.0 (Mac OS 15.6.1; arm64) vscode/1.104.2", ""),
    (
        "cursor",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Cursor/0.45.14 Chrome/128.0.6613.186 Electron/32.2.6 Safari/537.36",
        "",
    ),
    ("github-copilot", "GitHubCopilotChat/0.26.7", ""),
    (
        "windsurf",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Windsurf/1.106.0 Chrome/138.0.7204.251 Electron/37.3.1 Safari/537.36",
        "",
    ),
    ("cline", "Cline/3.32.5", ""),
    ("cline", "OpenAI/JS 4.96.0", "Cline"),  # the SDK's UA, the app's title
    ("roo-code", "Roo-Code/3.0.0 (VS Code)", ""),
    ("continue", "Continue/1.0.0 (VS Code)", ""),
    ("aider", "OpenAI/Python 1.99.9", "Aider"),  # aider calls through litellm's SDK
    ("aider", "aider/0.86.1", ""),
    ("zed", "Zed/0.170.4 (macos; aarch64)", ""),
    ("opencode", "opencode/0.15.3 ai-sdk/provider-utils/3.0.10 runtime/bun/1.2.21", ""),
    ("gemini-cli", "GeminiCLI/0.1.22 (linux; x64)", ""),
    ("langchain", "langchainjs-openai/1.0.0 ((node/v20.18.0; win32; x64))", ""),
    ("llamaindex", "llamaindex-ts/0.8.2", ""),
    ("vercel-ai-sdk", "ai-sdk/openai/2.0.30 ai-sdk/provider-utils/3.0.9 runtime/node.js/v22", ""),
    ("litellm", "litellm/1.77.7", ""),
    ("openai-agents", "Agents/Python 0.3.3", ""),
    ("openai-python", "OpenAI/Python 1.99.9", ""),
    ("openai-python", "AsyncOpenAI/Python 3.54.0", ""),
    ("openai-python", "AzureOpenAI/Python 1.51.0", ""),
    ("openai-js", "OpenAI/JS 4.96.0", ""),
    ("anthropic-python", "Anthropic/Python 0.69.0", ""),
    ("anthropic-python", "AsyncAnthropicBedrock/Python 0.69.0", ""),
    ("anthropic-js", "Anthropic/JS 0.65.0", ""),
    ("curl", "curl/8.5.0", ""),
    ("python-requests", "python-requests/2.32.3", ""),
    ("python-httpx", "python-httpx/0.28.1", ""),
    (
        "browser",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/135.0.0.0 Safari/537.36",
        "",
    ),
]


def _headers(user_agent: str = "", title: str = "", **extra: str) -> list[tuple[bytes, bytes]]:
    headers = [(b"host", b"gw"), (b"content-type", b"application/json")]
    if user_agent:
        headers.append((b"user-agent", user_agent.encode()))
    if title:
        headers.append((b"x-title", title.encode()))
    headers += [(name.encode(), value.encode()) for name, value in extra.items()]
    return headers


@pytest.mark.parametrize(("tool", "user_agent", "title"), EXAMPLES)
def test_each_entry_recognises_its_tools_user_agent(tool: str, user_agent: str, title: str) -> None:
    assert ClientToolReader().read(_headers(user_agent, title)) == tool


def test_every_entry_has_an_example() -> None:
    assert {entry.tool for entry in TOOLS} == {tool for tool, _, _ in EXAMPLES}


def test_the_header_wins_under_every_prefix() -> None:
    reader = ClientToolReader(("x-sluice-", "x-tfy-", "x-acme-"))
    ua = "claude-cli/2.0.24 (external, cli)"
    assert reader.read(_headers(ua, **{"x-sluice-tool": "review-bot"})) == "review-bot"
    assert reader.read(_headers(ua, **{"x-tfy-tool": "Claude Code"})) == "claude-code"
    assert reader.read(_headers(ua, **{"x-acme-tool": "nightly/eval"})) == "nightly-eval"
    # a header with nothing usable in it falls back to the User-Agent
    assert reader.read(_headers(ua, **{"x-sluice-tool": " \t!!"})) == "claude-code"
    # a prefix not configured is just another header
    assert ClientToolReader().read(_headers(ua, **{"x-acme-tool": "x"})) == "claude-code"


def test_an_unknown_user_agent_is_recorded_by_its_first_product_name() -> None:
    reader = ClientToolReader()
    assert reader.read(_headers("AcmeAgent/2.3 (build 7; linux) okhttp/4.12")) == "acmeagent"
    assert reader.read(_headers("(compatible) Go-http-client/1.1")) == "go-http-client"
    assert reader.read(_headers("no product here")) is None
    assert reader.read(_headers("")) is None
    assert reader.read(_headers(title="Some App")) is None  # a title alone names no product


def test_recorded_names_are_sanitised_and_bounded() -> None:
    assert sanitise("  My Tool\x00v2\n ") == "my-tool-v2"
    assert sanitise("a" * 500) == "a" * MAX_TOOL_CHARS
    assert sanitise("é€") is None
    assert product_name(f"{'x' * 300}/1.0") == "x" * MAX_TOOL_CHARS
    assert product_name("x" * 100_000) is None  # scanning is bounded too


def test_recognition_is_cached_and_cheap() -> None:
    reader = ClientToolReader(cache_size=4)
    headers = _headers(EXAMPLES[0][1])
    reader.read(headers)
    started = time.perf_counter()
    for _ in range(20_000):
        reader.read(headers)
    per_call_us = (time.perf_counter() - started) / 20_000 * 1e6
    assert reader.recognise.cache_info().hits >= 20_000
    assert per_call_us < 20  # measured ~1 us: a header scan and a cache hit
    for i in range(10):  # many distinct User-Agents: the cache stays at its bound
        reader.read(_headers(f"bot{i}/1.0"))
    assert reader.recognise.cache_info().currsize == 4
