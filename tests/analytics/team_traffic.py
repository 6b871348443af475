"""Ledger records shaped like a team's traffic, for rollup tests: several teams, tools,
models and sessions, errors, retries, policy and guardrail events, estimated usage and a
metadata key. A session keeps one identity (user, team, project, workflow, tool), as a
real one does, the same in every call (it follows from the session id); everything else
varies per request. Seeded, so a failure replays."""

from __future__ import annotations

import random

import msgspec

from sluicegate.model.record import LedgerRecord, PolicyEvent
from tests.analytics.ledger_rows import PROJECTS, TEAMS, TOOLS, ledger_records

HOUR = 3600.0
START = 1_780_000_000.0 - 1_780_000_000.0 % 86400  # a UTC midnight


def traffic(
    count: int, *, start: float = START, span_s: float = 30 * HOUR, seed: int = 11
) -> list[LedgerRecord]:
    rng = random.Random(seed)
    out = []
    for record in ledger_records(count, start=start, span_s=span_s, seed=seed):
        changes: dict[str, object] = {
            "usage_source": rng.choice(("provider", "provider", "estimated", None)),
            "session_killed": rng.random() < 0.02,
            "reasoning_tokens": rng.choice((None, 0, 128)),
        }
        if rng.random() < 0.1:
            changes["policy_events"] = [
                PolicyEvent(kind="rate_limit", rule_id="r1", action="audit"),
                PolicyEvent(kind="budget", rule_id="b1", action="alert"),
            ]
        if record.session_id is not None:
            changes.update(session_identity(record.session_id))
        out.append(msgspec.structs.replace(record, **changes))
    return out


def session_identity(session_id: str) -> dict[str, object]:
    pick = random.Random(session_id)
    return {
        "user_id": pick.choice((f"u{pick.randint(1, 12)}", None)),
        "team": pick.choice(TEAMS),
        "project": pick.choice(PROJECTS),
        "workflow_tag": pick.choice(("review", "triage", None)),
        "client_tool": pick.choice(TOOLS),
    }
