"""The tags panel against SQL over the same raw rows (exact counts, tokens and cost), with
a metadata key rolled up and not, over windows not aligned to hours, on SQLite and
PostgreSQL: the top N, the "other" row and the "(no value)" row add up to the total."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from sqlalchemy import case, func
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics.config import AnalyticsSettings
from sluicegate.analytics.panels.tags import TagRow
from sluicegate.analytics.window import DAY, HOUR, Window, iso
from sluicegate.errors import InvalidRequest
from sluicegate.model.record import LedgerRecord
from tests.analytics.landing import land
from tests.analytics.panel_support import R, ask, context, in_window, raw_sums, snapshot
from tests.analytics.traffic import traffic

DAY0 = 1_780_000_000.0 - 1_780_000_000.0 % DAY
WINDOW = (("since", iso(DAY0 - 5 * HOUR - 1)), ("until", iso(DAY0 + DAY + 3 * HOUR + 17 * 60)))
ROLLED = AnalyticsSettings(rollup_metadata_keys=("customer_id",))
FIGURES = ("requests", "errors", "input_tokens", "output_tokens", "cost_usd")


@pytest.fixture
async def records(engine: AsyncEngine) -> list[LedgerRecord]:
    landed = traffic(1500, start=DAY0 - 2 * DAY, span_s=4 * DAY)
    await land(engine, landed, ("customer_id",))
    return landed


def _sums() -> dict[str, Any]:
    return {
        "requests": func.count(),
        "errors": func.sum(case((R.status_code.between(200, 399), 0), else_=1)),
        "input_tokens": func.sum(func.coalesce(R.input_tokens, 0)),
        "output_tokens": func.sum(func.coalesce(R.output_tokens, 0)),
        "cost_usd": func.sum(func.coalesce(R.cost_usd, 0.0)),
    }


def _window(answer: Any) -> Window:
    w = answer.window
    return Window(w.since_unix, w.until_unix, w.since_unix, w.until_unix)


def _assert_figures(row: TagRow, expected: dict[str, Any]) -> None:
    for name in ("requests", "errors", "input_tokens", "output_tokens"):
        assert getattr(row, name) == int(expected[name] or 0), (row.label, name)
    assert row.cost_usd == pytest.approx(float(expected["cost_usd"] or 0.0), abs=1e-8)


def _add_up(rows: list[TagRow], totals: TagRow) -> None:
    for name in ("requests", "errors", "input_tokens", "output_tokens", "tokens"):
        assert sum(getattr(r, name) for r in rows) == getattr(totals, name), name
    assert sum(r.cost_usd for r in rows) == pytest.approx(totals.cost_usd, abs=1e-8)


@pytest.mark.parametrize("rolled_up", [True, False], ids=["rolled-up", "raw"])
async def test_spend_by_a_metadata_key_equals_sql_over_raw_rows(
    engine: AsyncEngine, records: list[LedgerRecord], rolled_up: bool
) -> None:
    settings = ROLLED if rolled_up else AnalyticsSettings()
    answer = await ask(
        context(engine, settings), "tags", *WINDOW, ("group_by", "metadata.customer_id")
    )
    assert answer.source == ("rollup_metadata" if rolled_up else "requests")
    assert answer.window.since == iso(DAY0 - 6 * HOUR)
    assert answer.window.until == iso(DAY0 + DAY + 4 * HOUR)
    window = in_window(_window(answer))
    customer = func.coalesce(R.metadata["customer_id"].as_string(), "")
    expected = await raw_sums(engine, [customer], _sums(), window)
    groups = [r for r in answer.rows if r.kind == "group"]
    assert len(groups) == 8  # every customer: the default limit (20) holds them all
    for row in groups:
        assert row.group == {"metadata.customer_id": row.label}
        _assert_figures(row, expected[(row.label,)])
    costs = [r.cost_usd for r in groups]
    assert costs == sorted(costs, reverse=True)
    (no_value,) = [r for r in answer.rows if r.kind == "no_value"]
    assert no_value.label == "(no value)"
    _assert_figures(no_value, expected[("",)])
    assert [r.kind for r in answer.rows].count("other") == 0
    (total,) = (await raw_sums(engine, [], _sums(), window)).values()
    _assert_figures(answer.totals, total)
    _add_up(answer.rows, answer.totals)
    share = no_value.cost_usd / answer.totals.cost_usd
    assert no_value.cost_share == pytest.approx(share, abs=1e-6)
    actions = [msgspec.to_builtins(a) for a in answer.actions]
    assert actions[0]["control"] == {"kind": "config", "name": "metadata.customer_id"}
    assert actions[0]["where"] == {"type": "header", "name": "X-Sluice-Metadata"}
    assert actions[0]["message"].startswith(f"{share:.0%} of spend")
    roll_up = [a for a in actions if a["control"]["name"] == "rollup_metadata_keys"]
    assert bool(roll_up) is not rolled_up  # read from raw rows: roll the key up


async def test_top_n_then_other_then_no_value_add_up(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    for settings in (ROLLED, AnalyticsSettings()):
        answer = await ask(
            context(engine, settings),
            "tags",
            *WINDOW,
            ("group_by", "metadata.customer_id"),
            ("limit", "3"),
        )
        assert [r.kind for r in answer.rows] == ["group"] * 3 + ["other", "no_value"]
        assert (
            answer.rows[0].label == "cust-1" or answer.rows[0].cost_usd >= answer.rows[1].cost_usd
        )
        _add_up(answer.rows, answer.totals)


async def test_filters_and_a_second_dimension_with_the_key(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    answer = await ask(
        context(engine, ROLLED),
        "tags",
        *WINDOW,
        ("group_by", "metadata.customer_id,team"),
        ("project", "UNTAGGED"),
        ("limit", "1000"),
    )
    assert answer.source == "rollup_metadata" and answer.filters == {"project": "UNTAGGED"}
    window = in_window(_window(answer))
    customer = func.coalesce(R.metadata["customer_id"].as_string(), "")
    untagged = func.coalesce(R.project, "UNTAGGED") == "UNTAGGED"
    team = func.coalesce(R.team, "")
    expected = await raw_sums(engine, [customer, team], _sums(), window, untagged)
    groups = [r for r in answer.rows if r.kind == "group"]
    assert {(r.group["metadata.customer_id"], r.group["team"] or "") for r in groups} == {
        k for k in expected if k[0]
    }
    for row in groups:
        _assert_figures(row, expected[(row.group["metadata.customer_id"], row.group["team"] or "")])
    (total,) = (await raw_sums(engine, [], _sums(), window, untagged)).values()
    _assert_figures(answer.totals, total)
    _add_up(answer.rows, answer.totals)
    # a filter on the key itself: every request counted carries it
    only = await ask(
        context(engine, ROLLED), "tags", *WINDOW,
        ("group_by", "team"), ("metadata.customer_id", "cust-2"),
    )  # fmt: skip
    (one,) = (await raw_sums(engine, [], _sums(), window, customer == "cust-2")).values()
    _assert_figures(only.totals, one)
    _add_up(only.rows, only.totals)


async def test_spend_by_team_keeps_requests_without_a_team_apart(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    answer = await ask(context(engine), "tags", *WINDOW, ("group_by", "team"))
    assert answer.source == "rollup_cuboids:model"
    window = in_window(_window(answer))
    expected = await raw_sums(engine, [func.coalesce(R.team, "")], _sums(), window)
    assert [r.kind for r in answer.rows] == ["group", "group", "group", "no_value"]
    for row in answer.rows:
        _assert_figures(row, expected[(row.group.get("team") or "",)])
    _add_up(answer.rows, answer.totals)
    header = msgspec.to_builtins(answer.actions[0])
    assert header["where"] == {"type": "header", "name": "X-Sluice-Team"}


async def test_the_default_grouping_is_the_first_rolled_up_key(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    assert (await ask(context(engine, ROLLED), "tags", *WINDOW)).group_by == [
        "metadata.customer_id"
    ]
    assert (await ask(context(engine), "tags", *WINDOW)).group_by == ["project"]


async def test_a_key_not_rolled_up_is_refused_past_the_raw_window(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    long = (("since", iso(DAY0 - 20 * DAY)), ("until", iso(DAY0 + DAY)))
    with pytest.raises(InvalidRequest) as caught:
        await ask(context(engine), "tags", *long, ("group_by", "metadata.customer_id"))
    assert caught.value.param == "group_by"
    assert "add it to rollup_metadata_keys in the gateway-analytics-config" in caught.value.message
    rolled = await ask(context(engine, ROLLED), "tags", *long, ("group_by", "metadata.customer_id"))
    inside = [r for r in records if r.ts < DAY0 + DAY]
    assert rolled.source == "rollup_metadata" and rolled.totals.requests == len(inside)


async def test_one_value_with_most_of_the_spend_and_no_budget_is_flagged(
    engine: AsyncEngine,
) -> None:
    heavy = [
        LedgerRecord(
            request_id=f"h{i}",
            ts=DAY0 + HOUR + i,
            metadata={"customer_id": c},
            status_code=200,
            input_tokens=10,
            output_tokens=5,
            cost_usd=cost,
            attempt_count=1,
        )  # fmt: skip
        for i, (c, cost) in enumerate([("acme", 0.9)] * 10 + [("globex", 0.1)] * 10)
    ]
    await land(engine, heavy, ("customer_id",))
    params = (*WINDOW, ("group_by", "metadata.customer_id"))
    answer = await ask(context(engine, ROLLED), "tags", *params)
    (flag,) = [msgspec.to_builtins(a) for a in answer.actions]
    assert flag["control"] == {"kind": "budget", "name": "metadata.customer_id=acme"}
    assert flag["where"] == {"type": "gateway-budget-config", "name": None}
    assert flag["message"].startswith("metadata.customer_id acme is 90% of the tagged spend")
    budgeted = snapshot(
        "name: tenants\ntype: gateway-budget-config\nbudgets:\n"
        "  - {id: acme, scope: {metadata: {customer_id: acme}}, ceiling_usd: 50, window: monthly}\n"
    )
    answer = await ask(context(engine, ROLLED, budgeted), "tags", *params)
    assert answer.actions == []


async def test_a_window_without_traffic_answers_zeros(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    empty = (("since", iso(DAY0 + 10 * DAY)), ("until", iso(DAY0 + 11 * DAY)))
    for settings in (ROLLED, AnalyticsSettings()):
        for grouping in ("metadata.customer_id", "project"):
            answer = await ask(context(engine, settings), "tags", *empty, ("group_by", grouping))
            assert answer.rows == [] and answer.totals.requests == 0
            assert answer.totals.cost_usd == 0.0
