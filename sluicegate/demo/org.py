"""The demo organisation's shape: teams, projects, users on their tools, workflows.

Everything here is constant data; `plan` draws from it with a seeded generator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Client = Literal["openai", "anthropic", "httpx"]


@dataclass(frozen=True)
class Tool:
    """A client program: how it talks (SDK or plain HTTP) and the User-Agent it sends,
    real-looking so `identity/client_tool.py` recognises it (None: the SDK's own)."""

    name: str
    client: Client
    user_agent: str | None


CLAUDE_CODE = Tool("claude-code", "anthropic", "claude-cli/1.0.83 (external, cli)")
CURSOR = Tool("cursor", "openai", "Mozilla/5.0 (X11; Linux x86_64) Cursor/1.4.5 Chrome/132.0")
CODEX = Tool("codex", "openai", "codex_cli_rs/0.20.0 (Ubuntu 24.4.0; x86_64) xterm-256color")
OPENAI_SDK = Tool("openai-python", "openai", None)
ANTHROPIC_SDK = Tool("anthropic-python", "anthropic", None)
CURL = Tool("curl", "httpx", "curl/8.5.0")


@dataclass(frozen=True)
class User:
    user_id: str
    team: str
    tools: tuple[Tool, ...]


@dataclass(frozen=True)
class Workflow:
    """A kind of work: its project, the models it uses, how many turns a session has,
    the outcome a session may produce (and how often), `None` kind: never traced."""

    tag: str
    project: str
    models: tuple[str, ...]
    turns: tuple[int, int]
    outcome_kind: str | None
    outcome_share: float


USERS: tuple[User, ...] = (
    User("ana", "search", (CLAUDE_CODE, CURSOR)),
    User("bo", "search", (CURSOR,)),
    User("cy", "search", (CODEX, OPENAI_SDK)),
    User("di", "data", (CLAUDE_CODE,)),
    User("ed", "data", (OPENAI_SDK, CURL)),
    User("fi", "data", (CURSOR, CODEX)),
    User("gu", "infra", (CLAUDE_CODE, ANTHROPIC_SDK)),
    User("ha", "infra", (CODEX,)),
    User("io", "support", (ANTHROPIC_SDK, OPENAI_SDK)),
)
TEAMS: tuple[str, ...] = tuple(dict.fromkeys(u.team for u in USERS))

# Models of the default catalog (what `serve --emulator` answers without provider
# documents). `code-review` overuses a frontier model: the premium-model review's queue.
WORKFLOWS: tuple[Workflow, ...] = (
    Workflow("code-review", "platform-search", ("claude-opus-4-7",), (2, 5), "pr_merged", 0.7),
    Workflow(
        "feature-dev", "platform-search", ("gpt-4o", "claude-sonnet-4-6"), (3, 8), "pr_merged", 0.5
    ),
    Workflow(
        "triage", "helpdesk", ("gpt-4o-mini", "claude-haiku-4-5"), (1, 3), "ticket_closed", 0.6
    ),
    Workflow(
        "oncall", "infra-ops", ("gpt-4o", "claude-sonnet-4-6"), (2, 6), "incident_resolved", 0.4
    ),
    Workflow(
        "refactor-agent",
        "platform-search",
        ("gpt-4o", "claude-sonnet-4-6"),
        (2, 6),
        "pr_merged",
        0.5,
    ),
    Workflow("etl-summaries", "data-pipeline", ("gpt-4o-mini",), (1, 2), None, 0.0),
)
# The looping agent's workflow: its usual sessions are the baseline its loop stands out from.
LOOP_WORKFLOW = next(w for w in WORKFLOWS if w.tag == "refactor-agent")
# Requests to this model fail now and then in the emulator (the fault table `setup` sets).
FLAKY_MODEL = "gpt-4.1-mini"
CUSTOMERS: tuple[str, ...] = ("acme", "globex", "initech", "umbrella")
FEATURES: tuple[str, ...] = ("search-ranking", "autocomplete", "ticket-replies", "reports")
