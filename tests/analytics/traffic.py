"""Ledger records for panel tests: several providers and their models, teams, users,
custom metadata, errors of several classes and types, retries, fallbacks, rate-limit and
budget events; seeded, so a failure replays."""

from __future__ import annotations

import random

from sluicegate.model.record import LedgerRecord, PolicyEvent

MODELS = {
    "openai": ("gpt-4o", "gpt-4o-mini"),
    "anthropic": ("claude-haiku-4-5", "claude-opus-4-1"),
    "azure": ("gpt-4o",),
}
TEAMS = ("search", "data", "infra", None)
PROJECTS = ("alpha", "beta", None)
CUSTOMERS = tuple(f"cust-{i}" for i in range(1, 9))
FEATURES = ("summarise", "classify", "chat")
# (status, error type): 0 is a request nothing answered
OUTCOMES = (
    *[(200, None)] * 12,
    (429, "rate_limit_error"),
    (400, "invalid_request_error"),
    (502, "upstream_error"),
    (504, "timeout_error"),
    (499, "client_disconnected"),
    (0, "internal_error"),
)


def traffic(
    count: int,
    *,
    start: float,
    span_s: float,
    seed: int = 11,
    slow: str | None = None,
    prefix: str = "t",
) -> list[LedgerRecord]:
    """`count` records with times in [start, start + span_s); `slow`: a provider ten
    times slower than the others."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        provider = rng.choice(tuple(MODELS))
        status, error_type = rng.choice(OUTCOMES)
        ok = 200 <= status < 400
        metadata = {}
        if rng.random() < 0.7:
            metadata["customer_id"] = rng.choice(CUSTOMERS[:3] * 4 + CUSTOMERS)  # a long tail
        if rng.random() < 0.5:
            metadata["feature"] = rng.choice(FEATURES)
        latency = rng.lognormvariate(6, 1.0) * (10 if provider == slow else 1)
        kinds = rng.sample(("rate_limit", "budget"), rng.choice((0, 0, 0, 1, 2)))
        records.append(
            LedgerRecord(
                request_id=f"{prefix}{seed}-{i:06d}",
                ts=start + rng.random() * span_s,
                user_id=rng.choice(("ana", "bo", "cy", None)),
                team=rng.choice(TEAMS),
                project=rng.choice(PROJECTS),
                session_id=rng.choice((f"s{rng.randint(1, 20)}", None)),
                workflow_tag=rng.choice(("review", "triage", None)),
                environment=rng.choice(("prod", "dev")),
                metadata=metadata,
                client_tool=rng.choice(("cursor", "claude-code", None)),
                client_api="openai_chat",
                requested_model=rng.choice(MODELS[provider]),
                provider=provider if status else None,
                model=rng.choice(MODELS[provider]) if status else None,
                status_code=status,
                error_type=error_type,
                input_tokens=rng.randint(1, 4000) if ok else None,
                output_tokens=rng.randint(1, 800) if ok else None,
                cache_read_tokens=rng.choice((0, 0, 512)),
                cost_usd=round(rng.random() / 20, 6) if ok and rng.random() < 0.9 else None,
                latency_ms=latency if status else None,
                ttft_ms=latency * rng.uniform(0.1, 0.5) if ok and rng.random() < 0.5 else None,
                stream=rng.random() < 0.5,
                attempt_count=rng.randint(1, 3),
                retry_used=rng.random() < 0.2,
                fallback_used=rng.random() < 0.1,
                policy_events=[
                    PolicyEvent(kind=k, rule_id=f"{k}-rule", action="hard_block") for k in kinds
                ],
            )
        )
    return records
