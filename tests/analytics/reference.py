"""What the rollup tables must hold, computed the plain way from the raw ledger rows.

`expected_rollups` reads the `requests` table back and applies the definitions of
analytics/rollups.py record by record, column by column (no grouping tricks), with the
core figures (requests, errors, tokens, cost, latency) summed by SQL itself; `stored_rollups`
reads the rollup tables. Both give {table: {row identity: {column: value}}}, compared by
`assert_same_rollups` (integers exactly, floats to 1e-9).
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Collection
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from sluicegate.analytics.cuboids import CUBOIDS
from sluicegate.analytics.histogram import BOUNDS_MS
from sluicegate.db.schema import (
    CUBOID_DIMENSIONS,
    METADATA_DIMENSIONS,
    TOOL_USER_DIMENSIONS,
    USAGE_DIMENSIONS,
    USER_DIMENSIONS,
    requests,
    rollup_cuboids,
    rollup_metadata,
    rollup_sessions,
    rollup_tool_users,
    rollup_usage,
    rollup_users,
)

Tables = dict[str, dict[tuple[Any, ...], dict[str, Any]]]
R = requests.c
WIDTHS = {"hour": 3600, "day": 86400}
FIRST_MONDAY = 4 * 86400  # 1970-01-05T00:00Z
WEEK = 7 * 86400
TABLES = ("usage", "cuboids", "users", "tool_users", "metadata", "sessions")


def _bucket(ts: float, grain: str) -> float:
    if grain == "week":
        return float(math.floor((ts - FIRST_MONDAY) / WEEK) * WEEK + FIRST_MONDAY)
    return float(math.floor(ts / WIDTHS[grain]) * WIDTHS[grain])


def _text(value: Any) -> str:
    return value or ""


def _class(code: int) -> str:
    return f"{code // 100}xx" if 100 <= code < 600 else "none"


def _error(code: int) -> bool:
    return not 200 <= code < 400


def _usage_row(row: dict[str, Any]) -> dict[str, Any]:
    tokens = {
        name: row[name] or 0
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
        )
    }
    kinds = {event["kind"] for event in row["policy_events"]}
    figures: dict[str, Any] = {
        "requests": 1,
        "errors": int(_error(row["status_code"])),
        **tokens,
        "unpriced": int(any(tokens.values()) and row["cost_usd"] is None),
        "estimated_usage": int(row["usage_source"] == "estimated"),
        "streams": int(row["stream"]),
        "attempts": row["attempt_count"],
        "retries": int(row["retry_used"]),
        "fallbacks": int(row["fallback_used"]),
        "rate_limit_hits": int("rate_limit" in kinds),
        "budget_hits": int("budget" in kinds),
        "guardrail_events": len(row["guardrail_events"]),
        "guardrail_blocks": int(any(e.get("action") == "block" for e in row["guardrail_events"])),
        "sessions_killed": int(row["session_killed"]),
        "client_disconnects": int(row["client_disconnected"]),
        "latency_count": int(row["latency_ms"] is not None),
        "ttft_count": int(row["ttft_ms"] is not None),
        "cost_usd": row["cost_usd"] or 0.0,
        "latency_sum_ms": row["latency_ms"] or 0.0,
        "ttft_sum_ms": row["ttft_ms"] or 0.0,
    }
    for prefix in ("latency", "ttft"):
        for i in range(len(BOUNDS_MS) + 1):
            figures[f"{prefix}_b{i:02d}"] = 0
        value = row[f"{prefix}_ms"]
        if value is not None:
            figures[f"{prefix}_b{bisect.bisect_left(BOUNDS_MS, value):02d}"] = 1
    return figures


def _add(
    table: dict[tuple[Any, ...], dict[str, Any]], key: tuple[Any, ...], figures: dict[str, Any]
) -> None:
    row = table.setdefault(key, defaultdict(int))
    for name, value in figures.items():
        row[name] += value


def _usage_dimensions(row: dict[str, Any]) -> tuple[str, ...]:
    return (
        _text(row["team"]),
        row["project"] or "UNTAGGED",
        _text(row["workflow_tag"]),
        _text(row["environment"]),
        _text(row["cost_center"]),
        _text(row["client_tool"]),
        _text(row["client_api"]),
        _text(row["requested_model"]),
        _text(row["model"]),
        _text(row["provider"]),
        _class(row["status_code"]),
        _text(row["error_type"]),
    )


async def expected_rollups(conn: AsyncConnection, metadata_keys: Collection[str]) -> Tables:
    rows = [dict(r) for r in (await conn.execute(select(requests))).mappings()]
    rows.sort(key=lambda r: (r["ts"], r["request_id"]))
    tables: Tables = {name: {} for name in TABLES}
    for row in rows:
        usage = _usage_row(row)
        project = row["project"] or "UNTAGGED"
        small = {
            n: usage[n] for n in ("requests", "errors", "input_tokens", "output_tokens", "cost_usd")
        }
        for grain in ("hour", "day", "week"):  # week rows: the cuboids and tool users only
            bucket = _bucket(row["ts"], grain)
            named = dict(zip(USAGE_DIMENSIONS, _usage_dimensions(row), strict=True))
            for cuboid in CUBOIDS:
                kept = [named[d] if d in cuboid.dimensions else "" for d in USAGE_DIMENSIONS]
                _add(tables["cuboids"], (grain, bucket, cuboid.name, *kept), usage)
            if row["user_id"]:
                key = (grain, bucket, row["user_id"], _text(row["team"]), _text(row["client_tool"]))
                _add(tables["tool_users"], key, small)
            if grain == "week":
                continue
            dims = _usage_dimensions(row)
            _add(tables["usage"], (grain, bucket, *dims), usage)
            if row["user_id"]:
                key = (
                    grain,
                    bucket,
                    row["user_id"],
                    _text(row["team"]),
                    project,
                    _text(row["workflow_tag"]),
                    _text(row["client_tool"]),
                )
                _add(tables["users"], key, small)
            for meta_key in metadata_keys:
                value = row["metadata"].get(meta_key)
                if value is None:
                    continue
                key = (
                    grain,
                    bucket,
                    meta_key,
                    value,
                    _text(row["team"]),
                    project,
                    _text(row["workflow_tag"]),
                    _text(row["model"]),
                )
                figures = {
                    n: usage[n]
                    for n in (
                        "requests",
                        "errors",
                        "input_tokens",
                        "output_tokens",
                        "cache_read_tokens",
                        "cache_write_tokens",
                        "reasoning_tokens",
                        "cost_usd",
                    )
                }
                _add(tables["metadata"], key, figures)
        if row["session_id"]:
            _add_session(tables["sessions"], row, usage)
    await _check_core_figures_by_sql(conn, tables)
    return {name: {k: dict(v) for k, v in rows_.items()} for name, rows_ in tables.items()}


def _add_session(
    sessions: dict[tuple[Any, ...], dict[str, Any]], row: dict[str, Any], usage: dict[str, Any]
) -> None:
    key = (row["session_id"],)
    session = sessions.get(key)
    if session is None:
        session = sessions[key] = defaultdict(int)
        session.update(
            first_ts=row["ts"],
            last_ts=row["ts"],
            user_id="",
            team="",
            project="",
            workflow_tag="",
            client_tool="",
        )
    session["first_ts"] = min(session["first_ts"], row["ts"])
    session["last_ts"] = max(session["last_ts"], row["ts"])
    for name in ("user_id", "team", "project", "workflow_tag", "client_tool"):
        value = row[name]
        if value and value != "UNTAGGED" and not session[name]:
            session[name] = value
    inputs = usage["input_tokens"]
    error = _error(row["status_code"])
    for name in (
        "requests",
        "errors",
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
        "rate_limit_hits",
        "budget_hits",
        "guardrail_blocks",
        "sessions_killed",
        "cost_usd",
    ):
        session[name] += usage[name]
    session["retry_tokens"] += inputs * max(row["attempt_count"] - 1, 0) + (
        inputs + usage["output_tokens"] if error else 0
    )
    session["wasted_input_tokens"] += inputs if error or row["client_disconnected"] else 0


def finish_sessions(tables: Tables) -> Tables:
    for session in tables["sessions"].values():
        if not session["project"]:
            session["project"] = "UNTAGGED"
    return tables


async def _check_core_figures_by_sql(conn: AsyncConnection, tables: Tables) -> None:
    """The per-record reference agrees with SQL's own sums over the raw rows (hour grain,
    by team and project), so that the reference itself is checked."""
    project = func.coalesce(R.project, "UNTAGGED")
    team = func.coalesce(R.team, "")
    bucket = (func.floor(R.ts / 3600) * 3600).label("bucket")
    statement = select(
        bucket,
        team,
        project,
        func.count(),
        func.sum(case((R.status_code.between(200, 399), 0), else_=1)),
        func.sum(func.coalesce(R.input_tokens, 0)),
        func.sum(func.coalesce(R.output_tokens, 0)),
        func.sum(func.coalesce(R.cost_usd, 0.0)),
        func.count(R.latency_ms),
        func.sum(func.coalesce(R.latency_ms, 0.0)),
    ).group_by(bucket, team, project)
    by_sql = {
        (float(b), t, p): (n, int(e), int(i), int(o), c, lc, ls)
        for b, t, p, n, e, i, o, c, lc, ls in await conn.execute(statement)
    }
    by_reference: dict[tuple[Any, ...], list[Any]] = {}
    for key, row in tables["usage"].items():
        if key[0] != "hour":
            continue
        sums = by_reference.setdefault((key[1], key[2], key[3]), [0, 0, 0, 0, 0.0, 0, 0.0])
        for i, name in enumerate(
            (
                "requests",
                "errors",
                "input_tokens",
                "output_tokens",
                "cost_usd",
                "latency_count",
                "latency_sum_ms",
            )
        ):
            sums[i] += row[name]
    assert by_reference.keys() == by_sql.keys()
    for key, sql in by_sql.items():
        mine = by_reference[key]
        assert tuple(mine[:4]) == sql[:4] and mine[5] == sql[5], key
        assert math.isclose(mine[4], sql[4], abs_tol=1e-9) and math.isclose(
            mine[6], sql[6], rel_tol=1e-9
        )


async def stored_rollups(conn: AsyncConnection) -> Tables:
    tables: Tables = {}
    for name, table, dims in (
        ("usage", rollup_usage, USAGE_DIMENSIONS),
        ("cuboids", rollup_cuboids, CUBOID_DIMENSIONS),
        ("users", rollup_users, USER_DIMENSIONS),
        ("tool_users", rollup_tool_users, TOOL_USER_DIMENSIONS),
        ("metadata", rollup_metadata, METADATA_DIMENSIONS),
    ):
        rows = (await conn.execute(select(table))).mappings()
        found: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in rows:
            key = (row["grain"], float(row["bucket"]), *(row[d] for d in dims))
            assert key not in found, f"two {name} rows for {key}"
            found[key] = {c: row[c] for c in row if c not in ("id", "grain", "bucket", *dims)}
        tables[name] = found
    sessions = (await conn.execute(select(rollup_sessions))).mappings()
    tables["sessions"] = {
        (r["session_id"],): {c: r[c] for c in r if c != "session_id"} for r in sessions
    }
    return tables


def assert_same_rollups(got: Tables, expected: Tables, *, session_identity: bool = True) -> None:
    expected = finish_sessions(expected)
    for name in TABLES:
        assert got[name].keys() == expected[name].keys(), (
            name,
            sorted(got[name].keys() - expected[name].keys())[:3],
            sorted(expected[name].keys() - got[name].keys())[:3],
        )
        for key, want in expected[name].items():
            have = got[name][key]
            for column, value in want.items():
                if not session_identity and column in (
                    "user_id",
                    "team",
                    "project",
                    "workflow_tag",
                    "client_tool",
                ):
                    continue
                if isinstance(value, float) or isinstance(have[column], float):
                    assert math.isclose(have[column], value, rel_tol=1e-9, abs_tol=1e-9), (
                        name,
                        key,
                        column,
                    )
                else:
                    assert have[column] == value, (name, key, column, have[column], value)


def total_requests(tables: Tables) -> int:
    return sum(row["requests"] for key, row in tables["usage"].items() if key[0] == "day")
