"""A ledger and key table whose adoption answer is known: teams of named sizes, each
tool used by a known set of their people over a week, people seen earlier (known, not
active), people seen too long ago, and key holders live, revoked, expired and not yet
made; seeded, so a failure replays.

    team data    20 known: cursor d01..d14 (70%), claude-code d01..d09 (45%),
                 d15..d16 send no tool, d17..d20 seen 20 days before (not in the week);
                 claude-code's requests there meet a rate limit one time in five
    team search  9 known: cursor s01..s06, claude-code s01..s08, and w1 whose key was
                 revoked mid-week (live in it)
    team infra   6 key holders, none active
"""

from __future__ import annotations

import random
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics.window import DAY, HOUR
from sluicegate.db.schema import api_keys
from sluicegate.model.record import LedgerRecord, PolicyEvent

DAY0 = 1_780_000_000.0 - 1_780_000_000.0 % DAY  # a UTC midnight: the week starts here
WEEK = 7 * DAY


def _users(prefix: str, first: int, last: int) -> list[str]:
    return [f"{prefix}{i:02d}" for i in range(first, last + 1)]


USAGE: list[tuple[str, str | None, list[str]]] = [  # (team, tool, users) in the week
    ("data", "cursor", _users("d", 1, 14)),
    ("data", "claude-code", _users("d", 1, 9)),
    ("data", None, _users("d", 15, 16)),
    ("search", "cursor", _users("s", 1, 6)),
    ("search", "claude-code", _users("s", 1, 8)),
]
EARLIER = [("data", "cursor", _users("d", 17, 20), DAY0 + WEEK - 20 * DAY)]
TOO_OLD = [("data", "cursor", ["gone"], DAY0 + WEEK - 40 * DAY)]


def adoption_records(seed: int = 5) -> list[LedgerRecord]:
    rng = random.Random(seed)
    records: list[LedgerRecord] = []

    def add(team: str | None, tool: str | None, user: str | None, ts: float) -> None:
        limited = tool == "claude-code" and team == "data" and rng.random() < 0.2
        records.append(
            LedgerRecord(
                request_id=f"ad{seed}-{len(records):06d}",
                ts=ts,
                user_id=user,
                team=team,
                project=rng.choice(("alpha", "beta", None)),
                client_tool=tool,
                model=rng.choice(("gpt-4o", "claude-haiku-4-5")),
                provider="openai",
                status_code=429 if limited else rng.choice((200, 200, 200, 500)),
                input_tokens=100,
                output_tokens=20,
                cost_usd=0.01,
                attempt_count=1,
                policy_events=(
                    [PolicyEvent(kind="rate_limit", rule_id="per-user", action="hard_block")]
                    if limited
                    else []
                ),
            )
        )

    for team, tool, users in USAGE:
        for user in users:
            days = rng.sample(range(7), rng.randint(1, 7))  # active on some days of the week
            for day in days:
                for _ in range(rng.randint(1, 4)):
                    add(team, tool, user, DAY0 + day * DAY + rng.uniform(0, DAY - 1))
    for team, tool, users, ts in [*EARLIER, *TOO_OLD]:
        for user in users:
            add(team, tool, user, ts + rng.uniform(0, 6 * HOUR))
    for i in range(30):  # no user at all: counted in requests, never as a person
        add(rng.choice(("data", "search")), rng.choice(("cursor", None)), None, DAY0 + i * HOUR)
    return records


def _key(key_id: str, user: str, team: str | None, **times: float | None) -> dict[str, Any]:
    return {
        "id": key_id,
        "name": key_id,
        "key_hash": f"hash-{key_id}",
        "key_prefix": "sg-test",
        "user_id": user,
        "team": team,
        "models": [],
        "is_admin": False,
        "created_at": times.get("created_at", DAY0 - 90 * DAY),
        "updated_at": DAY0,
        "expires_at": times.get("expires_at"),
        "revoked_at": times.get("revoked_at"),
        "metadata": {},
    }


KEYS = [
    *(_key(f"k-{u}", u, "infra") for u in _users("i", 1, 6)),  # live, never used
    _key("k-d01", "d01", "data"),  # a user the rollups know too: counted once
    _key("k-revoked", "r1", "data", revoked_at=DAY0 - DAY),  # gone before the week
    _key("k-expired", "x1", "data", expires_at=DAY0 - HOUR),
    _key("k-later", "l1", "data", created_at=DAY0 + WEEK + DAY),  # made after the week
    _key("k-revoked-in-week", "w1", "search", revoked_at=DAY0 + 2 * DAY),  # live in it
]


async def insert_keys(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(insert(api_keys), KEYS)
