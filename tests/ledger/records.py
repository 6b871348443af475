"""Ledger records for tests."""

from __future__ import annotations

from typing import Any

from sluicegate.model.record import AttemptRecord, LedgerRecord, PolicyEvent


def record(n: int, **fields: Any) -> LedgerRecord:
    """A plain successful record; `n` makes the id and (by default) the time."""
    values: dict[str, Any] = {
        "request_id": f"req-{n:06d}",
        "ts": 1_700_000_000.0 + n,
        "project": "alpha",
        "requested_model": "fast",
        "model": "gpt-4o-mini",
        "status_code": 200,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": 0.001,
    }
    values.update(fields)
    return LedgerRecord(**values)


def full_record() -> LedgerRecord:
    """Every field set to something other than its default."""
    return LedgerRecord(
        request_id="req-full",
        ts=1_700_000_123.456789,
        key_id="key_1",
        user_id="u1",
        team="platform",
        project="alpha",
        session_id="s1",
        workflow_tag="triage",
        environment="prod",
        cost_center="cc-7",
        metadata={"ticket": "T-1", "tool": "cli"},
        trace_id="abc123",
        client_api="openai",
        requested_model="smart",
        provider="anthropic",
        model="claude-sonnet",
        response_model="claude-sonnet-2025",
        status_code=200,
        error_type=None,
        error_message=None,
        input_tokens=1200,
        output_tokens=340,
        cache_read_tokens=1000,
        cache_write_tokens=0,
        reasoning_tokens=64,
        cost_usd=0.01234,
        price_id="anthropic/claude-sonnet",
        price_version="2025-10-01",
        latency_ms=812.5,
        ttft_ms=120.25,
        stream=True,
        attempt_count=2,
        fallback_used=True,
        retry_used=True,
        routing_rule="smart-fallback",
        attempts=[
            AttemptRecord(
                provider="openai",
                model="gpt-4o",
                status_code=None,
                latency_ms=30000.0,
                error_class="UpstreamTimeout",
                reason="primary",
            ),
            AttemptRecord(
                provider="anthropic",
                model="claude-sonnet",
                status_code=200,
                latency_ms=812.5,
                reason="fallback",
            ),
        ],
        policy_events=[PolicyEvent(kind="budget", rule_id="b1", action="alert", detail="80%")],
        guardrail_events=[
            {
                "hook": "input",
                "type": "secret",
                "action": "redact",
                "spans": [[3, 9]],
                "score": 0.97,
                "nested": {"ok": True},
            }
        ],
        session_killed=True,
        client_disconnected=True,
    )
