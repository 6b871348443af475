"""The demo's requests, planned up front from a seed: the same seed and size give the same
plan (`DemoPlan` compares equal), so a run can be replayed and a test can check it.

A plan is sessions of one user on one tool; each session's turns are sent in order (a
multi-turn agent), sessions run side by side. Among them: untagged calls (no project, no
workflow), one looping agent (a session that keeps calling until its rate limit stops
it), and the outcomes some sessions produce."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from sluicegate.demo.org import (
    CUSTOMERS,
    FEATURES,
    FLAKY_MODEL,
    LOOP_WORKFLOW,
    USERS,
    WORKFLOWS,
    Tool,
    User,
    Workflow,
)

UNTAGGED_SHARE = 0.15  # of sessions: no project, no workflow tag
FLAKY_SHARE = 0.08  # of tagged calls: sent to the model the emulator sometimes fails
LOOP_TURNS = 40  # the looping agent's calls (its rate limit stops it before the end)
# The looping agent pastes the same large file into every call: a loop costs tokens.
LOOP_PROMPT = "Fix the failing build; here is the whole module again:\n" + (
    "def rank(results, weights):\n    return sorted(results, key=lambda r: -weights[r.kind])\n" * 60
)
PROMPTS = (
    "Summarise the failing test output and suggest a fix.",
    "Refactor this function to remove the duplicated branch.",
    "Write a reply to the customer explaining the outage timeline.",
    "Which of these log lines explains the latency spike?",
    "Draft a docstring for the ranking module's public entry point.",
)


@dataclass(frozen=True)
class PlannedCall:
    model: str
    prompt: str
    max_tokens: int
    stream: bool
    metadata: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PlannedOutcome:
    kind: str
    external_id: str
    via_github: bool  # a signed webhook when its secret is configured, else the API


@dataclass(frozen=True)
class PlannedSession:
    session_id: str
    user: User
    tool: Tool
    workflow: Workflow | None  # None: untagged
    calls: tuple[PlannedCall, ...]
    looping: bool = False
    outcome: PlannedOutcome | None = None

    @property
    def project(self) -> str | None:
        return self.workflow.project if self.workflow else None


@dataclass(frozen=True)
class DemoPlan:
    seed: int | str
    sessions: tuple[PlannedSession, ...] = field(default=())

    @property
    def requests(self) -> int:
        return sum(len(s.calls) for s in self.sessions)


def plan(
    seed: int | str, requests: int, *, looping: bool = True, prefix: str | None = None
) -> DemoPlan:
    """`requests` calls, with the looping agent when there is room and `looping`; session
    ids `PREFIX-NNNN` (default prefix `demo-SEED`)."""
    rng = random.Random(seed)
    prefix = prefix or f"demo-{seed}"
    sessions: list[PlannedSession] = []
    left = requests
    loop_turns = min(LOOP_TURNS, requests // 4)
    if looping and loop_turns >= 5:
        sessions.append(_looping_session(rng, prefix, loop_turns))
        left -= loop_turns
    while left > 0:
        session = _session(rng, prefix, len(sessions), left)
        sessions.append(session)
        left -= len(session.calls)
    rng.shuffle(sessions)  # the loop starts somewhere in the run, not always first
    return DemoPlan(seed, tuple(sessions))


def _session(rng: random.Random, prefix: str, index: int, left: int) -> PlannedSession:
    user = rng.choice(USERS)
    tool = rng.choice(user.tools)
    session_id = f"{prefix}-{index:04d}"
    if rng.random() < UNTAGGED_SHARE:
        turns = min(left, rng.randint(1, 3))
        calls = tuple(
            _call(rng, rng.choice(("gpt-4o-mini", "gpt-4o")), tagged=False) for _ in range(turns)
        )
        return PlannedSession(session_id, user, tool, None, calls)
    workflow = rng.choice(WORKFLOWS)
    turns = min(left, rng.randint(*workflow.turns))
    calls = tuple(_call(rng, _model(rng, workflow, tool)) for _ in range(turns))
    outcome = None
    if workflow.outcome_kind and rng.random() < workflow.outcome_share:
        github = workflow.outcome_kind == "pr_merged" and rng.random() < 0.5
        outcome = PlannedOutcome(workflow.outcome_kind, f"{session_id}-outcome", github)
    return PlannedSession(session_id, user, tool, workflow, calls, outcome=outcome)


def _looping_session(rng: random.Random, prefix: str, turns: int) -> PlannedSession:
    user = next(u for u in USERS if u.team == "search")
    calls = tuple(
        PlannedCall("gpt-4o", LOOP_PROMPT, 256, stream=False, metadata=_call(rng, "").metadata)
        for _ in range(turns)
    )
    return PlannedSession(f"{prefix}-loop", user, user.tools[0], LOOP_WORKFLOW, calls, looping=True)


def _model(rng: random.Random, workflow: Workflow, tool: Tool) -> str:
    """A model the tool's wire can name (either wire reaches either provider, but the
    tools people use send their vendor's names), now and then the flaky one."""
    if rng.random() < FLAKY_SHARE:
        return FLAKY_MODEL
    wanted = "claude" if tool.client == "anthropic" else "gpt"
    matching = [m for m in workflow.models if m.startswith(wanted)] or list(workflow.models)
    return rng.choice(matching)


def _call(rng: random.Random, model: str, *, tagged: bool = True) -> PlannedCall:
    metadata: tuple[tuple[str, str], ...] = ()
    if tagged:
        metadata = (("customer_id", rng.choice(CUSTOMERS)), ("feature", rng.choice(FEATURES)))
    return PlannedCall(
        model=model,
        prompt=rng.choice(PROMPTS),
        max_tokens=rng.choice((64, 128, 256, 512)),
        stream=rng.random() < 0.3,
        metadata=metadata,
    )
