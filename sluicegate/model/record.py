"""The ledger record: one per request, whatever its outcome."""

from __future__ import annotations

from typing import Any

import msgspec


class AttemptRecord(msgspec.Struct, kw_only=True):
    """One try against one concrete target."""

    provider: str
    model: str
    status_code: int | None  # None: no HTTP answer (connection error, timeout)
    latency_ms: float
    error_class: str | None = None
    reason: str = "primary"  # primary | retry | fallback


class PolicyEvent(msgspec.Struct, kw_only=True):
    """A rate-limit rule, budget or guardrail that acted on the request."""

    kind: str  # rate_limit | budget | guardrail | identity
    rule_id: str
    action: str  # hard_block | queued | fallback | alert | audit | redact | ...
    detail: str | None = None


class LedgerRecord(msgspec.Struct, kw_only=True, omit_defaults=False):
    request_id: str
    ts: float  # unix seconds, arrival time
    key_id: str | None = None
    user_id: str | None = None
    team: str | None = None
    project: str | None = None
    session_id: str | None = None
    workflow_tag: str | None = None
    environment: str | None = None
    cost_center: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    trace_id: str | None = None
    client_api: str | None = None
    requested_model: str | None = None
    provider: str | None = None
    model: str | None = None  # sent upstream
    response_model: str | None = None  # what the provider said answered
    # The provider's own id for the call that answered (its `x-request-id` / `request-id`
    # header): what their support asks for when a charge or an answer is disputed.
    upstream_request_id: str | None = None
    status_code: int = 0
    error_type: str | None = None
    error_message: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    # Where the token counts came from: "provider" (its own usage report), "estimated"
    # (the provider's report never arrived, e.g. the client left mid-stream: input from the
    # request, output counted from the content relayed; see `settle.estimate_usage`), or
    # None when there is no usage at all.
    usage_source: str | None = None
    cost_usd: float | None = None
    price_id: str | None = None
    price_version: str | None = None
    # The model whose prices the cost is at, when the served model has none and a budget
    # said to price it as another (`unpriced: {price_as: MODEL}`); None otherwise.
    priced_as: str | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    stream: bool = False
    attempt_count: int = 0
    fallback_used: bool = False
    retry_used: bool = False
    routing_rule: str | None = None
    route_reason: str | None = None  # the router's account: failures, retries, open circuits
    attempts: list[AttemptRecord] = msgspec.field(default_factory=list)
    policy_events: list[PolicyEvent] = msgspec.field(default_factory=list)
    guardrail_events: list[dict[str, Any]] = msgspec.field(default_factory=list)
    session_killed: bool = False
    client_disconnected: bool = False
    # The gateway closed the provider's call before it finished (the client left, or a
    # guardrail stopped the stream): the provider may still bill the whole generation,
    # which can exceed the usage recorded here.
    upstream_cancelled: bool = False
    # The client program that sent it (Cursor, Claude Code, an SDK...): the X-Sluice-Tool
    # header, else recognised from the User-Agent (identity/client_tool.py).
    client_tool: str | None = None
