"""Varied ledger records for analytics tests, seeded so a failure replays."""

from __future__ import annotations

import random

from sluicegate.model.record import LedgerRecord, PolicyEvent

TEAMS = ("search", "data", "infra")
PROJECTS = ("alpha", "beta", None)  # None: a request refused before its envelope (UNTAGGED)
TOOLS = ("cursor", "claude-code", "openai-python", None)
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-opus-4-1", "claude-haiku-4-5")
STATUSES = (200, 200, 200, 200, 429, 500, 503, 0)


def ledger_records(count: int, *, start: float, span_s: float, seed: int = 7) -> list[LedgerRecord]:
    rng = random.Random(seed)
    records = []
    for i in range(count):
        status = rng.choice(STATUSES)
        ok = 200 <= status < 400
        kinds = rng.sample(("rate_limit", "budget"), rng.randint(0, 1))
        records.append(
            LedgerRecord(
                request_id=f"r{seed}-{i:06d}",
                ts=start + rng.random() * span_s,
                user_id=rng.choice((f"u{rng.randint(1, 12)}", None)),
                team=rng.choice(TEAMS),
                project=rng.choice(PROJECTS),
                session_id=rng.choice((f"s{rng.randint(1, 30)}", None)),
                workflow_tag=rng.choice(("review", "triage", None)),
                metadata={"customer_id": f"c{rng.randint(1, 5)}"} if rng.random() < 0.6 else {},
                client_tool=rng.choice(TOOLS),
                client_api="openai_chat",
                requested_model=rng.choice(MODELS),
                model=rng.choice(MODELS) if status else None,
                provider="openai",
                status_code=status,
                error_type=None if ok else "upstream_error",
                input_tokens=rng.randint(1, 5000) if ok else None,
                output_tokens=rng.randint(1, 900) if ok else None,
                cache_read_tokens=rng.choice((0, 0, 1024)),
                cost_usd=round(rng.random() / 10, 6) if ok and rng.random() < 0.9 else None,
                latency_ms=rng.lognormvariate(6, 1.2) if status else None,
                ttft_ms=rng.lognormvariate(5, 1) if ok and rng.random() < 0.5 else None,
                stream=rng.random() < 0.5,
                attempt_count=rng.randint(1, 3),
                retry_used=rng.random() < 0.2,
                fallback_used=rng.random() < 0.1,
                policy_events=[
                    PolicyEvent(kind=k, rule_id="r", action="hard_block") for k in kinds
                ],
                guardrail_events=[{"guardrail": "g", "phase": "input", "action": "block"}]
                if rng.random() < 0.05
                else [],
                client_disconnected=rng.random() < 0.05,
            )
        )
    return records
