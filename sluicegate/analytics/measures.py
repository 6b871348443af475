"""The additive figures analytics sum, and each one's definition over raw `requests` rows.

A rollup table holds a measure when it has a column of that name; over raw rows each
measure is the SQL expression below, written to equal what `rollups.rollup_deltas` adds
for the same records (a test holds the two equal on both dialects). Every measure is a
SUM in SQL: rows are never brought into Python to be added up.

Rate-limit and budget hits live in the `policy_events` JSON list; they are read with the
dialect's own JSON functions (`json_each` on SQLite, `@>` on PostgreSQL). Guardrail
figures are read from rollups only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Double,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

from sluicegate.analytics.histogram import BOUNDS_MS, BUCKETS
from sluicegate.db.schema import FLOAT_MEASURES, TOKEN_MEASURES, requests

R = requests.c
FLOATS = frozenset(FLOAT_MEASURES)  # summed as floats; every other measure is a count
EMPTY_LIST = "[]"  # policy_events with no event, as the ledger's JSON serializer writes it


def _has_policy_kind(kind: str, dialect: str) -> ColumnElement[bool]:
    """The row's `policy_events` holds an event of this kind (a rate limit, a budget)."""
    if dialect == "postgresql":
        pattern = literal(orjson.dumps([{"kind": kind}]).decode())
        return cast(R.policy_events, JSONB).op("@>")(cast(pattern, JSONB))
    events = func.json_each(R.policy_events).table_valued("value").alias("policy_event")
    kind_of = func.json_extract(events.c.value, "$.kind")
    # Most rows carry no event: their list as the ledger writes it skips json_each
    # (a table set up per row); any other text still goes through it, so this is exact.
    stored = type_coerce(R.policy_events, String())
    return and_(
        stored != EMPTY_LIST, exists(select(literal(1)).select_from(events).where(kind_of == kind))
    )


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.sum(case((condition, 1), else_=0))


def _bucket(column: ColumnElement[float], index: int) -> ColumnElement[bool]:
    """`histogram.bucket_of(v) == index`: BOUNDS[index-1] < v <= BOUNDS[index]."""
    if index == 0:
        return column <= BOUNDS_MS[0]
    if index == BUCKETS - 1:
        return column > BOUNDS_MS[-1]
    return (column > BOUNDS_MS[index - 1]) & (column <= BOUNDS_MS[index])


def _histogram(prefix: str, column: ColumnElement[float]) -> dict[str, RawMeasure]:
    return {
        # no IS NOT NULL: a comparison with NULL is not true, so a row without a value
        # counts in no bucket (one test fewer per bucket and row, on raw reads)
        f"{prefix}_b{i:02d}": (lambda i=i: _flag(_bucket(column, i)))  # type: ignore[misc]
        for i in range(BUCKETS)
    }


RawMeasure = Callable[[], ColumnElement[Any]]
PolicyMeasure = Callable[[str], ColumnElement[Any]]  # takes the dialect's name

RAW_MEASURES: dict[str, RawMeasure] = {
    "requests": lambda: func.count(),
    "errors": lambda: _flag(~R.status_code.between(200, 399)),
    **{name: (lambda c=R[name]: func.sum(func.coalesce(c, 0))) for name in TOKEN_MEASURES},  # type: ignore[misc]
    "cost_usd": lambda: func.sum(func.coalesce(R.cost_usd, literal(0.0, Double()))),
    "attempts": lambda: func.sum(R.attempt_count),
    "retries": lambda: _flag(R.retry_used),
    "fallbacks": lambda: _flag(R.fallback_used),
    "streams": lambda: _flag(R.stream),
    "sessions_killed": lambda: _flag(R.session_killed),
    "client_disconnects": lambda: _flag(R.client_disconnected),
    "latency_count": lambda: func.count(R.latency_ms),
    "latency_sum_ms": lambda: func.sum(func.coalesce(R.latency_ms, literal(0.0, Double()))),
    "ttft_count": lambda: func.count(R.ttft_ms),
    "ttft_sum_ms": lambda: func.sum(func.coalesce(R.ttft_ms, literal(0.0, Double()))),
    **_histogram("latency", R.latency_ms),
    **_histogram("ttft", R.ttft_ms),
}

# Measures whose SQL depends on the dialect (JSON functions differ).
DIALECT_MEASURES: dict[str, PolicyMeasure] = {
    "rate_limit_hits": lambda dialect: _flag(_has_policy_kind("rate_limit", dialect)),
    "budget_hits": lambda dialect: _flag(_has_policy_kind("budget", dialect)),
}


def raw_measure(name: str, dialect: str) -> ColumnElement[Any] | None:
    """The SUM of measure `name` over raw rows; None when raw rows cannot give it."""
    if name in RAW_MEASURES:
        return RAW_MEASURES[name]()
    if name in DIALECT_MEASURES:
        return DIALECT_MEASURES[name](dialect)
    return None


def raw_has(name: str) -> bool:
    return name in RAW_MEASURES or name in DIALECT_MEASURES


LATENCY_HISTOGRAM = tuple(f"latency_b{i:02d}" for i in range(BUCKETS))
TTFT_HISTOGRAM = tuple(f"ttft_b{i:02d}" for i in range(BUCKETS))

Figures = dict[str, float]  # measure -> its sum (ints for counts)


def as_figure(name: str, value: Any) -> float:
    """A summed value as Python: PostgreSQL sums bigint into numeric (Decimal)."""
    if value is None:
        return 0.0 if name in FLOATS else 0
    return float(value) if name in FLOATS else int(value)


def subtract(total: Figures, parts: list[Figures]) -> Figures:
    """`total` minus each of `parts`, measure by measure (the "other" row of a top N)."""
    rest = dict(total)
    for part in parts:
        for name, value in part.items():
            rest[name] = rest.get(name, 0) - value
    return {name: (max(value, 0.0) if name in FLOATS else value) for name, value in rest.items()}
