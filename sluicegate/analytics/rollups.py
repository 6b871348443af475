"""What a batch of ledger records adds to the rollup tables (a pure function).

    records --rollup_deltas--> RollupDeltas --upsert (rollup_sql.py)--> rollup_* tables

Each record adds to one `rollup_usage` row per grain (hour, day), one `rollup_users` row
per grain when it names a user, one `rollup_metadata` row per grain and analytics
metadata key it carries, and one `rollup_sessions` row when it names a session. Deltas of
rows with the same key are summed here, so a batch upserts each row once. Applying the
deltas of the same records twice counts them twice: the store applies the deltas of the
records it actually inserted (a replayed batch's duplicates add nothing).

Derived values, defined once here and in the docs (docs/analytics.md):
- `status_class`: "2xx".."5xx" from the status code, "none" when nothing answered (0).
- `errors`: requests whose status is not 2xx or 3xx.
- `unpriced`: requests with tokens and no cost (a model with no price).
- `rate_limit_hits` / `budget_hits`: requests a rate-limit rule / budget acted on (any
  action); `guardrail_blocks`: requests a guardrail blocked.
- `retry_tokens` (sessions): input tokens re-sent by extra attempts (input x (attempts-1))
  plus all tokens of requests that ended in an error.
- `wasted_input_tokens` (sessions): input tokens of requests whose answer nobody used:
  an error, or a client that left before the end.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from sluicegate.analytics.histogram import bucket_of
from sluicegate.db.schema import (
    FLOAT_MEASURES,
    METADATA_DIMENSIONS,
    METADATA_MEASURES,
    SESSION_IDENTITY,
    SESSION_MEASURES,
    USAGE_DIMENSIONS,
    USAGE_MEASURES,
    USER_DIMENSIONS,
    USER_MEASURES,
)
from sluicegate.model.identity import UNTAGGED
from sluicegate.model.record import LedgerRecord

GRAINS: dict[str, int] = {"hour": 3600, "day": 86400}
NONE = ""  # a dimension with no value


def status_class(code: int) -> str:
    return f"{code // 100}xx" if 100 <= code < 600 else "none"


def is_error(code: int) -> bool:
    return not 200 <= code < 400


def bucket_start(ts: float, grain: str) -> float:
    width = GRAINS[grain]
    return float(int(ts // width) * width)


def row_id(grain: str, bucket: float, dimensions: tuple[str, ...]) -> str:
    """A rollup row's key: grain, bucket and a digest of its dimensions (a separator no
    dimension value can hold keeps ("a b", "") and ("a", "b ") apart)."""
    digest = hashlib.blake2b("\x1f".join(dimensions).encode(), digest_size=16).hexdigest()
    return f"{grain[0]}{int(bucket)}:{digest}"


@dataclass
class RollupDeltas:
    """Rows to add, per table, keyed by row id (sessions by session id)."""

    usage: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.usage or self.users or self.metadata or self.sessions)


def rollup_deltas(
    records: Iterable[LedgerRecord], metadata_keys: Collection[str] = ()
) -> RollupDeltas:
    deltas = RollupDeltas()
    for record in records:
        facts = _facts(record)
        for grain in GRAINS:
            bucket = bucket_start(record.ts, grain)
            usage_dims = _usage_dimensions(record)
            _add(
                deltas.usage,
                grain,
                bucket,
                USAGE_DIMENSIONS,
                usage_dims,
                facts.usage,
                USAGE_MEASURES,
                True,
            )
            if record.user_id:
                user_dims = (
                    record.user_id,
                    _text(record.team),
                    _project(record),
                    _text(record.workflow_tag),
                    _text(record.client_tool),
                )
                _add(
                    deltas.users,
                    grain,
                    bucket,
                    USER_DIMENSIONS,
                    user_dims,
                    facts.usage,
                    USER_MEASURES,
                    False,
                )
            for key in metadata_keys:
                value = record.metadata.get(key)
                if value is None:
                    continue
                meta_dims = (
                    key,
                    value,
                    _text(record.team),
                    _project(record),
                    _text(record.workflow_tag),
                    _text(record.model),  # the served model, as in rollup_usage
                )
                measures = METADATA_MEASURES
                _add(
                    deltas.metadata,
                    grain,
                    bucket,
                    METADATA_DIMENSIONS,
                    meta_dims,
                    facts.usage,
                    measures,
                    False,
                )
        if record.session_id:
            _add_session(deltas.sessions, record, facts)
    return deltas


# -- one record's figures -----------------------------------------------------------------


@dataclass
class _Facts:
    usage: dict[str, float]  # every usage measure this record adds, by column
    retry_tokens: int
    wasted_input_tokens: int


def _facts(record: LedgerRecord) -> _Facts:
    tokens = {
        "input_tokens": record.input_tokens or 0,
        "output_tokens": record.output_tokens or 0,
        "cache_read_tokens": record.cache_read_tokens or 0,
        "cache_write_tokens": record.cache_write_tokens or 0,
        "reasoning_tokens": record.reasoning_tokens or 0,
    }
    error = is_error(record.status_code)
    kinds = {event.kind for event in record.policy_events}
    blocked = any(event.get("action") == "block" for event in record.guardrail_events)
    has_tokens = any(tokens.values())
    usage: dict[str, float] = {
        "requests": 1,
        "errors": int(error),
        **tokens,
        "unpriced": int(has_tokens and record.cost_usd is None),
        "estimated_usage": int(record.usage_source == "estimated"),
        "streams": int(record.stream),
        "attempts": record.attempt_count,
        "retries": int(record.retry_used),
        "fallbacks": int(record.fallback_used),
        "rate_limit_hits": int("rate_limit" in kinds),
        "budget_hits": int("budget" in kinds),
        "guardrail_events": len(record.guardrail_events),
        "guardrail_blocks": int(blocked),
        "sessions_killed": int(record.session_killed),
        "client_disconnects": int(record.client_disconnected),
        "cost_usd": record.cost_usd or 0.0,
        "latency_count": 0,
        "latency_sum_ms": 0.0,
        "ttft_count": 0,
        "ttft_sum_ms": 0.0,
    }
    if record.latency_ms is not None:
        usage["latency_count"] = 1
        usage["latency_sum_ms"] = record.latency_ms
        usage[f"latency_b{bucket_of(record.latency_ms):02d}"] = 1
    if record.ttft_ms is not None:
        usage["ttft_count"] = 1
        usage["ttft_sum_ms"] = record.ttft_ms
        usage[f"ttft_b{bucket_of(record.ttft_ms):02d}"] = 1
    resent = tokens["input_tokens"] * max(record.attempt_count - 1, 0)
    retry_tokens = resent + (tokens["input_tokens"] + tokens["output_tokens"] if error else 0)
    unused = error or record.client_disconnected
    return _Facts(usage, retry_tokens, tokens["input_tokens"] if unused else 0)


def _usage_dimensions(record: LedgerRecord) -> tuple[str, ...]:
    return (
        _text(record.team),
        _project(record),
        _text(record.workflow_tag),
        _text(record.environment),
        _text(record.cost_center),
        _text(record.client_tool),
        _text(record.client_api),
        _text(record.requested_model),
        _text(record.model),
        _text(record.provider),
        status_class(record.status_code),
        _text(record.error_type),
    )


def _text(value: str | None) -> str:
    return value or NONE


def _project(record: LedgerRecord) -> str:
    """UNTAGGED is a value of its own (a request refused before its envelope was read has
    no project at all, and counts as untagged too)."""
    return record.project or UNTAGGED


# -- summing into rows ----------------------------------------------------------------------


def _add(
    rows: dict[str, dict[str, Any]],
    grain: str,
    bucket: float,
    names: tuple[str, ...],
    dimensions: tuple[str, ...],
    figures: dict[str, float],
    measures: tuple[str, ...],
    with_latency: bool,
) -> None:
    key = row_id(grain, bucket, dimensions)
    row = rows.get(key)
    if row is None:
        row = rows[key] = {"id": key, "grain": grain, "bucket": bucket}
        row.update(zip(names, dimensions, strict=True))
        for name in measures:
            row[name] = 0
        for name in FLOAT_MEASURES if with_latency else ("cost_usd",):
            row[name] = 0.0
    for name in measures:
        value = figures.get(name)
        if value:
            row[name] += value
    for name in FLOAT_MEASURES if with_latency else ("cost_usd",):
        row[name] += figures.get(name, 0.0)


def _add_session(sessions: dict[str, dict[str, Any]], record: LedgerRecord, facts: _Facts) -> None:
    session_id = record.session_id or ""
    row = sessions.get(session_id)
    identity = (
        _text(record.user_id),
        _text(record.team),
        _project(record),
        _text(record.workflow_tag),
        _text(record.client_tool),
    )
    if row is None:
        row = sessions[session_id] = {
            "session_id": session_id,
            "first_ts": record.ts,
            "last_ts": record.ts,
            **dict(zip(SESSION_IDENTITY, identity, strict=True)),
            **dict.fromkeys(SESSION_MEASURES, 0),
            "cost_usd": 0.0,
        }
    else:
        row["first_ts"] = min(row["first_ts"], record.ts)
        row["last_ts"] = max(row["last_ts"], record.ts)
        for name, value in zip(SESSION_IDENTITY, identity, strict=True):
            if not row[name] or (name == "project" and row[name] == UNTAGGED):
                row[name] = value
    figures = facts.usage
    for name in SESSION_MEASURES:
        if name == "retry_tokens":
            row[name] += facts.retry_tokens
        elif name == "wasted_input_tokens":
            row[name] += facts.wasted_input_tokens
        else:
            row[name] += int(figures.get(name, 0))
    row["cost_usd"] += figures["cost_usd"]
