"""The latency panel's figures against SQL over the same raw rows (counts exact,
percentiles within one histogram bucket), over windows not aligned to hours, on SQLite
and PostgreSQL; and the actions it proposes, naming the controls in force."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from sqlalchemy import case, func
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics import reader, sources
from sluicegate.analytics.histogram import bucket_of
from sluicegate.analytics.window import DAY, HOUR, Window, iso
from sluicegate.errors import InvalidRequest
from sluicegate.model.record import LedgerRecord
from sluicegate.server.roles import AdminPrincipal, Role
from tests.analytics.landing import land
from tests.analytics.panel_support import (
    R,
    ask,
    context,
    in_window,
    raw_sums,
    raw_values,
    snapshot,
    true_percentile,
)
from tests.analytics.traffic import traffic

DAY0 = 1_780_000_000.0 - 1_780_000_000.0 % DAY
SINCE = DAY0 + 7 * HOUR + 13 * 60 + 5  # 07:13:05 on day 0
UNTIL = DAY0 + 2 * DAY + 5 * HOUR + 41 * 60  # 05:41 on day 2
WINDOW = (("since", iso(SINCE)), ("until", str(UNTIL)))

ROUTING = """
name: fast-chat
type: gateway-load-balancing-config
rule_type: weight-based
rules:
  - {target: {provider: azure, model: gpt-4o}, weight: 50}
  - {target: {provider: openai, model: gpt-4o}, weight: 50}
---
name: limits
type: gateway-rate-limit-config
rules:
  - id: per-user
    limit: {requests: 100, window: 1m, scope: user}
---
name: budgets
type: gateway-budget-config
budgets:
  - {id: monthly, ceiling_usd: 100, window: monthly}
"""


@pytest.fixture
async def records(engine: AsyncEngine) -> list[LedgerRecord]:
    landed = traffic(1500, start=DAY0 - DAY, span_s=4 * DAY, slow="azure")
    await land(engine, landed)
    return landed


def _assert_same_bucket(panel: float | None, values: list[float], q: float) -> None:
    assert panel is not None
    assert bucket_of(panel) == bucket_of(true_percentile(values, q)), (panel, q)


async def test_rows_totals_and_breakdowns_equal_sql_over_raw_rows(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    answer = await ask(context(engine), "latency", *WINDOW)
    assert answer.window.since == iso(DAY0 + 7 * HOUR) and answer.window.until == iso(
        DAY0 + 2 * DAY + 6 * HOUR
    )
    assert answer.window.requested_since == iso(SINCE)
    assert answer.source == "rollup_cuboids:model" and answer.group_by == ["provider", "model"]
    window = in_window(_effective(answer))
    provider, model = func.coalesce(R.provider, ""), func.coalesce(R.model, "")
    expected = await raw_sums(
        engine,
        [provider, model],
        {
            "requests": func.count(),
            "errors": func.sum(case((R.status_code.between(200, 399), 0), else_=1)),
            "retries": func.sum(case((R.retry_used, 1), else_=0)),
            "fallbacks": func.sum(case((R.fallback_used, 1), else_=0)),
            "attempts": func.sum(R.attempt_count),
        },
        window,
    )
    rows = {(r.group["provider"] or "", r.group["model"] or ""): r for r in answer.rows}
    assert rows.keys() == expected.keys()
    in_range = [r for r in records if _effective(answer).since <= r.ts < _effective(answer).until]
    for key, row in rows.items():
        figures = expected[key]
        for name in ("requests", "errors", "retries", "fallbacks", "attempts"):
            assert getattr(row, name) == int(figures[name]), (key, name)
        mine = [r for r in in_range if (r.provider or "", r.model or "") == key]
        assert row.rate_limit_hits == sum(
            any(e.kind == "rate_limit" for e in r.policy_events) for r in mine
        )
        assert row.budget_hits == sum(
            any(e.kind == "budget" for e in r.policy_events) for r in mine
        )
        assert row.error_rate == pytest.approx(figures["errors"] / figures["requests"], abs=1e-6)
        where = (window, provider == key[0], model == key[1])
        latencies = await raw_values(engine, R.latency_ms, *where)
        assert row.latency_ms.samples == len(latencies)
        if latencies:
            assert row.latency_ms.mean == pytest.approx(sum(latencies) / len(latencies), abs=0.06)
            for q, value in (
                (0.5, row.latency_ms.p50),
                (0.9, row.latency_ms.p90),
                (0.99, row.latency_ms.p99),
            ):
                _assert_same_bucket(value, latencies, q)
        ttfts = await raw_values(engine, R.ttft_ms, *where)
        if ttfts:
            _assert_same_bucket(row.ttft_ms.p50, ttfts, 0.5)
            _assert_same_bucket(row.ttft_ms.p99, ttfts, 0.99)
    totals = answer.totals
    assert totals.requests == sum(int(f["requests"]) for f in expected.values()) == len(in_range)
    assert totals.errors == sum(r.errors for r in answer.rows)
    everything = await raw_values(engine, R.latency_ms, window)
    _assert_same_bucket(totals.latency_ms.p99, everything, 0.99)
    by_class = {b.name: b for b in answer.breakdowns}["status_class"].rows
    classes: dict[str | None, int] = {}
    for r in in_range:
        name = f"{r.status_code // 100}xx" if r.status_code else "none"
        classes[name] = classes.get(name, 0) + 1
    assert {row.value: row.requests for row in by_class} == classes
    error_types = {b.name: b for b in answer.breakdowns}["error_type"].rows
    assert sum(row.requests for row in error_types) == sum(1 for r in in_range if r.error_type)
    assert answer.series is not None and len(answer.series) <= 47  # hourly over 47 hours
    assert sum(point.requests for point in answer.series) == totals.requests


async def test_past_the_limit_an_other_row_holds_the_rest(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    answer = await ask(context(engine), "latency", *WINDOW, ("limit", "2"), ("group_by", "model"))
    groups = [r for r in answer.rows if r.kind == "group"]
    (other,) = [r for r in answer.rows if r.kind == "other"]
    assert len(groups) == 2 and groups[0].requests >= groups[1].requests
    for name in ("requests", "errors", "retries", "fallbacks", "rate_limit_hits"):
        assert sum(getattr(r, name) for r in answer.rows) == getattr(answer.totals, name)
    assert other.latency_ms.samples == answer.totals.latency_ms.samples - sum(
        r.latency_ms.samples for r in groups
    )


async def test_a_slow_provider_and_policy_hits_name_their_controls(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    answer = await ask(context(engine, config=snapshot(ROUTING)), "latency", *WINDOW)
    actions = [msgspec.to_builtins(a) for a in answer.actions]
    slow = [a for a in actions if "provider azure p99" in a["message"]]
    assert slow == [
        {
            "message": slow[0]["message"],
            "control": {"kind": "route", "name": "fast-chat"},
            "where": {"type": "gateway-load-balancing-config", "name": "fast-chat"},
        }
    ]
    assert "review its route weights" in slow[0]["message"]
    assert not [a for a in actions if "provider openai p99" in a["message"]]
    failing = [a for a in actions if a["message"].startswith("provider anthropic failed")]
    # anthropic is routed by no virtual model: the action says where one would go
    assert failing and failing[0]["where"] == {
        "type": "gateway-load-balancing-config",
        "name": None,
    }
    limits = [a for a in actions if a["control"]["kind"] == "rate_limit"]
    assert limits == [
        {
            "message": limits[0]["message"],
            "control": {"kind": "rate_limit", "name": "limits"},
            "where": {"type": "gateway-rate-limit-config", "name": "limits"},
        }
    ]
    hits = answer.totals.rate_limit_hits
    assert limits[0]["message"].startswith(f"{hits} requests (")
    budgets = [a for a in actions if a["control"]["kind"] == "budget"]
    assert budgets and budgets[0]["where"] == {"type": "gateway-budget-config", "name": "budgets"}
    fallbacks = [a for a in actions if "answered by a fallback" in a["message"]]
    assert fallbacks and fallbacks[0]["control"] == {"kind": "route", "name": "fast-chat"}
    # hits under an earlier config: no document holds the rule now, the action says so
    bare = await ask(context(engine), "latency", *WINDOW)
    (limit,) = [msgspec.to_builtins(a) for a in bare.actions if a.control.kind == "rate_limit"]
    assert limit["control"]["name"] == "none in force"
    assert limit["where"] == {"type": "gateway-rate-limit-config", "name": None}


async def test_quiet_traffic_proposes_nothing(engine: AsyncEngine) -> None:
    calm = [
        LedgerRecord(
            request_id=f"calm-{i}",
            ts=DAY0 + 8 * HOUR + i,
            provider=p,
            model="m",
            status_code=200,
            latency_ms=200.0,
            attempt_count=1,
        )  # fmt: skip
        for i, p in enumerate(["openai", "anthropic"] * 30)
    ]
    await land(engine, calm)
    answer = await ask(context(engine, config=snapshot(ROUTING)), "latency", *WINDOW)
    assert answer.totals.requests == 60 and answer.actions == []


async def test_a_member_sees_its_own_latency_from_raw_rows(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    member = AdminPrincipal("bo", Role.MEMBER, user_id="bo")
    answer = await ask(context(engine), "latency", *WINDOW, principal=member)
    assert answer.source == "requests" and answer.scope.user_id == "bo"
    window = _effective(answer)
    own = [r for r in records if r.user_id == "bo" and window.since <= r.ts < window.until]
    assert answer.totals.requests == len(own) > 0
    assert sum(r.requests for r in answer.rows) == len(own)
    with pytest.raises(InvalidRequest, match="at most 7 days") as caught:
        await ask(context(engine), "latency", ("since", "30d"), principal=member)
    assert caught.value.param == "since"


def _effective(answer: Any) -> Window:
    w = answer.window
    return Window(w.since_unix, w.until_unix, w.since_unix, w.until_unix)


@pytest.mark.parametrize(
    "grouping", ["provider,model", "team,status_class", "error_type", "client_tool"]
)
async def test_one_raw_scan_answers_as_the_rollups_and_the_three_raw_reads_do(
    engine: AsyncEngine,
    records: list[LedgerRecord],
    monkeypatch: pytest.MonkeyPatch,
    grouping: str,
) -> None:
    """Raw rows read once (latency_raw.py) give the answer the rollups give, rows,
    totals, breakdowns, series and actions alike; so do the three raw reads it replaces
    when there are too many cells for one."""
    shape = (*WINDOW, ("group_by", grouping), ("limit", "3"))
    config = snapshot(ROUTING)
    rolled = await ask(context(engine, config=config), "latency", *shape)
    monkeypatch.setattr(sources, "PLAIN_SOURCES", ())  # every read from raw rows
    scanned = await ask(context(engine, config=config), "latency", *shape)
    monkeypatch.setattr(reader, "MAX_CELLS", 2)  # too many cells: the three reads
    three = await ask(context(engine, config=config), "latency", *shape)
    assert rolled.source.startswith("rollup_") and scanned.source == three.source == "requests"
    if grouping == "provider,model":
        assert [r.kind for r in rolled.rows] == ["group"] * 3 + ["other"]
    for answer in (scanned, three):
        assert _without_source(answer) == _without_source(rolled)


def _without_source(answer: Any) -> Any:
    built = msgspec.to_builtins(answer)
    del built["source"], built["notes"]  # which table, and why
    return built
