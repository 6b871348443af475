"""A realistic synthetic ledger for the panel bench (bench/panels.py), generated in time order.

The shape follows an engineering organisation using agents: teams own projects and
workflows; each user belongs to one team and mostly uses one client tool; work arrives as
*sessions* (an agent run: a burst of 1 to a few hundred calls a few seconds apart, on one
workflow, model and customer), more of them in working hours and on weekdays. About 8% of
requests carry no project (UNTAGGED), 10% no workflow; statuses include rate limits,
provider errors and network failures (status 0); metadata has a long tail of
`customer_id` values (Zipf-like over 5,000 customers), a `feature` and a per-session
`ticket` (a key that is never rolled up). Outcomes are produced for some sessions.

Everything is drawn from one seeded `random.Random`, so a size and a seed give the same
ledger on every database.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from sluicegate.model.record import AttemptRecord, LedgerRecord, PolicyEvent

DAY = 86400.0
TEAMS = (
    "search", "payments", "platform", "mobile", "growth", "data", "infra", "support",
    "security", "ml", "web", "billing",
)  # fmt: skip
TOOLS = (  # client tool, its client API, its share of users' primary tools
    ("Claude Code", "anthropic_messages", 30),
    ("Cursor", "openai_chat", 25),
    ("Codex", "openai_responses", 12),
    ("openai-python", "openai_chat", 12),
    ("anthropic-python", "anthropic_messages", 8),
    ("LangChain", "openai_chat", 6),
    ("Continue", "openai_chat", 4),
    ("curl", "openai_chat", 3),
)
# model, provider, tier, $ per 1M input, $ per 1M output, typical latency ms
MODELS = (
    ("claude-opus-4-1", "anthropic", "frontier", 15.0, 75.0, 9000),
    ("claude-sonnet-4-5", "anthropic", "standard", 3.0, 15.0, 4500),
    ("claude-haiku-4-5", "anthropic", "economy", 1.0, 5.0, 1200),
    ("gpt-5", "openai", "frontier", 1.25, 10.0, 8000),
    ("gpt-4.1", "openai", "standard", 2.0, 8.0, 3500),
    ("gpt-4o-mini", "openai", "economy", 0.15, 0.6, 900),
    ("o3", "openai", "frontier", 2.0, 8.0, 12000),
    ("gemini-2.5-pro", "google", "frontier", 1.25, 10.0, 7000),
    ("gemini-2.5-flash", "google", "economy", 0.3, 2.5, 1100),
    ("mistral-large", "mistral", "standard", 2.0, 6.0, 3000),
    ("codestral", "mistral", "economy", 0.3, 0.9, 800),
)
VIRTUAL = {"smart": ("claude-sonnet-4-5", "gpt-4.1"), "fast": ("gpt-4o-mini", "claude-haiku-4-5")}
WORKING_HOURS = (7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18)
FEATURES = tuple(f"feature-{i:02d}" for i in range(40))
CUSTOMERS = 5000
USERS = 600
OUTCOME_KINDS = ("pr_merged", "ticket_closed", "incident_resolved", "eval_run")
# status code, error type, weight (per 1,000 requests)
STATUSES = (
    (200, None, 955),
    (429, "rate_limit_error", 15),
    (500, "api_error", 6),
    (502, "upstream_error", 5),
    (503, "overloaded_error", 5),
    (400, "invalid_request_error", 8),
    (401, "authentication_error", 2),
    (0, "timeout", 4),
)


@dataclass(frozen=True)
class Workflow:
    tag: str | None
    team: str
    project: str | None
    environment: str
    models: tuple[int, ...]  # indexes into MODELS this workflow uses


@dataclass(frozen=True)
class User:
    user_id: str
    team: str
    key_id: str
    tools: tuple[int, ...]  # primary first


@dataclass
class Outcome:
    session_id: str
    kind: str
    workflow_tag: str | None
    ts: float
    value: float | None
    pass_rate: float | None


@dataclass
class Org:
    workflows: dict[str, list[Workflow]] = field(default_factory=dict)  # by team
    users: list[User] = field(default_factory=list)


def build_org(rng: random.Random) -> Org:
    org = Org()
    for t, team in enumerate(TEAMS):
        projects = [f"{team}-{name}" for name in ("api", "app", "etl", "infra", "ml")[: 3 + t % 3]]
        flows: list[Workflow] = []
        for p, project in enumerate(projects):
            for w in range(2):
                tag = f"{project}-{('review', 'triage', 'codegen', 'eval')[(p + w) % 4]}"
                models = tuple(rng.sample(range(len(MODELS)), 3))
                env = ("production", "staging", "development")[(p + w) % 3]
                flows.append(Workflow(tag, team, project, env, models))
        flows.append(Workflow(None, team, None, "development", (1, 5)))  # untagged traffic
        flows.append(Workflow(None, team, projects[0], "production", (2, 4)))  # no workflow
        org.workflows[team] = flows
    weights = [share for _, _, share in TOOLS]
    for u in range(USERS):
        team = TEAMS[u % len(TEAMS)]
        primary = rng.choices(range(len(TOOLS)), weights)[0]
        secondary = rng.randrange(len(TOOLS))
        org.users.append(User(f"user-{u:04d}", team, f"key_{u:04d}", (primary, secondary)))
    return org


def _customer(rng: random.Random) -> str:
    # Zipf-like: a few customers hold most of the traffic, a long tail holds the rest
    return f"cust-{min(int(rng.paretovariate(1.1)) - 1, CUSTOMERS - 1):04d}"


class LedgerGenerator:
    """`rows` records over `days` days ending at `end`. Each day is drawn from its own
    seeded generator (`day(d)`), so days can be generated in parallel and in any order and
    still give the same ledger; ids carry the day's number, so they never collide."""

    def __init__(self, rows: int, days: int, end: float, seed: int = 12) -> None:
        self.rows = rows
        self.days = days
        self.end = end
        self.seed = seed
        self.org = build_org(random.Random(seed))
        start = end - days * DAY
        weights = [0.35 if _weekend(start + d * DAY) else 1.0 for d in range(days)]
        total = sum(weights)
        self.quotas = [int(rows * w / total) for w in weights]
        self.quotas[-1] += rows - sum(self.quotas)
        self.start = start
        self._status_cum = list(itertools.accumulate(w for _, _, w in STATUSES))
        self.rng = random.Random(seed)
        self.outcomes: list[Outcome] = []
        self._prefix = ""
        self._serial = 0
        self._sessions = 0

    def day(self, d: int) -> tuple[list[LedgerRecord], list[Outcome]]:
        """Day `d`'s records in time order, and the outcomes its sessions produced."""
        self.rng = random.Random(f"{self.seed}:{d}")
        self.outcomes = []
        self._prefix = f"{d:04d}"
        self._serial = self._sessions = 0
        day_start = self.start + d * DAY
        records = self._day(day_start, min(day_start + DAY, self.end), self.quotas[d])
        records.sort(key=lambda r: r.ts)
        return records, self.outcomes

    def _day(self, day_start: float, day_end: float, quota: int) -> list[LedgerRecord]:
        rng = self.rng
        records: list[LedgerRecord] = []
        while len(records) < quota:
            # working hours (UTC 07-19) hold most session starts
            if rng.random() < 0.8:
                offset = rng.choice(WORKING_HOURS) * 3600 + rng.random() * 3600
            else:
                offset = rng.random() * DAY
            session = self._session(day_start + offset, day_end, quota - len(records))
            records.extend(session)
        return records

    def _session(self, begin: float, day_end: float, room: int) -> list[LedgerRecord]:
        rng = self.rng
        user = rng.choice(self.org.users)
        flows = self.org.workflows[user.team]
        flow = flows[rng.randrange(len(flows))]
        tool = user.tools[0] if rng.random() < 0.8 else user.tools[1]
        model_index = flow.models[0] if rng.random() < 0.7 else rng.choice(flow.models)
        agent = TOOLS[tool][0] in ("Claude Code", "Cursor", "Codex", "LangChain")
        # agent runs are bursts (heavy tail); SDK scripts a handful of calls
        length = min(int(rng.paretovariate(1.3) * (6 if agent else 2)), 400, room)
        self._sessions += 1
        session_id = f"sess-{self._prefix}-{self._sessions:06d}"
        customer = _customer(rng)
        feature = FEATURES[min(int(rng.expovariate(0.15)), len(FEATURES) - 1)]
        meta = {"customer_id": customer, "feature": feature}
        if rng.random() < 0.3:
            meta["ticket"] = f"T-{rng.randrange(1_000_000):06d}"
        out: list[LedgerRecord] = []
        ts = begin
        for _ in range(max(length, 1)):
            if ts >= day_end:
                break
            out.append(self._record(ts, user, flow, tool, model_index, session_id, meta))
            ts += rng.expovariate(1 / 8.0) + 0.5
        if out and flow.tag is not None and rng.random() < 0.35:
            kind = OUTCOME_KINDS[rng.randrange(len(OUTCOME_KINDS))]
            self.outcomes.append(
                Outcome(
                    session_id,
                    kind,
                    flow.tag,
                    out[-1].ts + 60,
                    round(rng.uniform(1, 500), 2) if kind == "pr_merged" else None,
                    round(rng.random(), 3) if kind == "eval_run" else None,
                )
            )
        return out

    def _record(
        self,
        ts: float,
        user: User,
        flow: Workflow,
        tool: int,
        model_index: int,
        session_id: str,
        meta: dict[str, str],
    ) -> LedgerRecord:
        rng = self.rng
        self._serial += 1
        tool_name, client_api, _ = TOOLS[tool]
        model, provider, _tier, price_in, price_out, typical_ms = MODELS[model_index]
        requested = model
        routing_rule = None
        if rng.random() < 0.15:
            for alias, targets in VIRTUAL.items():
                if model in targets:
                    requested, routing_rule = alias, f"{alias}-route"
        drawn = bisect.bisect(self._status_cum, rng.random() * self._status_cum[-1])
        status, error_type, _ = STATUSES[drawn]
        attempts = 1
        fallback = retry = False
        if status == 200 and rng.random() < 0.03:
            attempts, retry = 2, True
            fallback = routing_rule is not None and rng.random() < 0.5
        answered = status == 200
        input_tokens = int(rng.lognormvariate(8.3, 1.0)) if status != 0 else None
        output_tokens = int(rng.lognormvariate(5.8, 0.9)) if answered else None
        cache_read = (
            int(input_tokens * rng.random() * 0.8)
            if answered and input_tokens and rng.random() < 0.6
            else 0
        )
        cost = None
        if answered and input_tokens is not None and output_tokens is not None:
            cost = round((input_tokens * price_in + output_tokens * price_out) / 1e6, 9)
        latency = rng.lognormvariate(0, 0.6) * typical_ms * (4 if status == 0 else 1)
        stream = rng.random() < 0.7 and answered
        events: list[PolicyEvent] = []
        if status == 429 and rng.random() < 0.5:
            events.append(
                PolicyEvent(kind="rate_limit", rule_id=f"{user.team}-rpm", action="hard_block")
            )
        elif status == 0 and rng.random() < 0.1:
            events.append(
                PolicyEvent(kind="budget", rule_id=f"{user.team}-monthly", action="hard_block")
            )
        return LedgerRecord(
            request_id=f"req_{self._prefix}{self._serial:08d}",
            ts=ts,
            key_id=user.key_id,
            user_id=user.user_id,
            team=flow.team,
            project=flow.project,
            session_id=session_id,
            workflow_tag=flow.tag,
            environment=flow.environment,
            cost_center=f"cc-{flow.team}",
            metadata=meta,
            client_api=client_api,
            requested_model=requested,
            provider=provider if status != 0 or rng.random() < 0.5 else None,
            model=model,
            response_model=model if answered else None,
            status_code=status,
            error_type=error_type,
            error_message=f"{error_type} from {provider}" if error_type else None,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read if answered else None,
            cache_write_tokens=0 if answered else None,
            reasoning_tokens=0 if answered else None,
            usage_source="provider" if answered else None,
            cost_usd=cost,
            price_id=f"{provider}:{model}" if cost is not None else None,
            price_version="2026-11" if cost is not None else None,
            latency_ms=round(latency, 3),
            ttft_ms=round(latency * rng.uniform(0.1, 0.4), 3) if stream else None,
            stream=stream,
            attempt_count=attempts,
            fallback_used=fallback,
            retry_used=retry,
            routing_rule=routing_rule,
            attempts=[
                AttemptRecord(
                    provider=provider,
                    model=model,
                    status_code=status or None,
                    latency_ms=round(latency, 3),
                    error_class=error_type,
                )
            ],
            policy_events=events,
            client_tool=tool_name,
        )


def _weekend(ts: float) -> bool:
    return int(ts // DAY + 3) % 7 >= 5  # 1970-01-01 was a Thursday (weekday 3)


def outcome_rows(outcomes: list[Outcome], received_at: float) -> list[dict[str, Any]]:
    """Rows of the `outcomes` table (as `POST /api/outcomes` stores them)."""
    return [
        {
            "id": f"out_{o.session_id}",
            "source": "api",
            "external_id": f"ext-{o.session_id}",
            "kind": o.kind,
            "session_id": o.session_id,
            "workflow_tag": o.workflow_tag,
            "url": None,
            "value": o.value,
            "pass_rate": o.pass_rate,
            "ts": o.ts,
            "received_at": received_at,
            "extra": {},
        }
        for o in outcomes
    ]
