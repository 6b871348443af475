"""The premium-review panel against direct SQL over the same raw rows (exact requests,
tokens and cost per workflow x frontier model, shares), on SQLite and PostgreSQL; its
projections against pricing.py applied to each raw row; tier overrides and configured
targets from a real analytics document; the load-balancing documents it proposes parsed,
compiled and routed by the real config code; and what each role sees."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics.panels.premium_rows import PremiumRow
from sluicegate.analytics.window import DAY, Window
from sluicegate.config.parse import parse_documents
from sluicegate.config.problems import ConfigValidationError
from sluicegate.config.registry import DocumentRegistry
from sluicegate.errors import InvalidRequest, PermissionDenied
from sluicegate.model.identity import Envelope
from sluicegate.model.record import LedgerRecord
from sluicegate.model.usage import Usage
from sluicegate.router.plan import route_for
from sluicegate.server.roles import AdminPrincipal, Role
from tests.analytics.landing import land
from tests.analytics.panel_support import NOW, R, ask, in_window
from tests.analytics.panel_support import raw_sums as dialect_sums
from tests.analytics.premium_traffic import (
    PRICES,
    TIERS,
    compiled,
    premium_context,
    premium_traffic,
)

FRONTIER = sorted(m for m, tier in TIERS.items() if tier == "frontier")
LEAD = AdminPrincipal("lead", Role.TEAM_LEAD, teams=("search",))
MEMBER = AdminPrincipal("bo", Role.MEMBER, user_id="bo")
WORKFLOW = func.coalesce(R.workflow_tag, "")
TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


@pytest.fixture
async def records(engine: AsyncEngine) -> list[LedgerRecord]:
    landed = premium_traffic(1500, start=NOW - 10 * DAY, span_s=10 * DAY - 60)
    await land(engine, landed)
    return landed


def _sums() -> dict[str, Any]:
    return {
        "requests": func.count(),
        **{name: func.sum(func.coalesce(R[name], 0)) for name in TOKENS},
        "cost_usd": func.sum(func.coalesce(R.cost_usd, 0.0)),
    }


async def raw_sums(
    engine: AsyncEngine,
    keys: list[ColumnElement[Any]],
    figures: dict[str, ColumnElement[Any]],
    *where: ColumnElement[bool],
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Direct SQL, as Python numbers (PostgreSQL sums into Decimal)."""
    found = await dialect_sums(engine, keys, figures, *where)
    return {
        k: {n: (float(v) if n == "cost_usd" else int(v or 0)) for n, v in sums.items()}
        for k, sums in found.items()
    }


def _window(answer: Any) -> Window:
    w = answer.window
    return Window(w.since_unix, w.until_unix, w.since_unix, w.until_unix)


def _scale(answer: Any) -> float:
    return 30 * DAY / (answer.window.until_unix - answer.window.since_unix)


async def _raw_rows(engine: AsyncEngine, *where: ColumnElement[bool]) -> list[Any]:
    stmt = select(R.workflow_tag, R.team, R.model, R.provider, *(R[n] for n in TOKENS))
    async with engine.connect() as conn:
        return list((await conn.execute(stmt.where(*where))).mappings())


def _usage(row: Any) -> Usage:
    return Usage(**{name: row[name] or 0 for name in TOKENS})


def _key(row: PremiumRow) -> tuple[str, str]:
    return (row.group["workflow_tag"] or "", row.model or "")


async def test_rows_are_frontier_traffic_by_workflow_equal_to_sql(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    answer = await ask(premium_context(engine), "premium-review")
    assert answer.group_by == ["workflow_tag"] and answer.source.startswith(
        "rollup_"
    )  # a rollup, never raw rows
    window = in_window(_window(answer))
    expected = await raw_sums(engine, [WORKFLOW, R.model], _sums(), window, R.model.in_(FRONTIER))
    assert {_key(r) for r in answer.rows} == set(expected)  # 4 workflows x 2 models
    assert len(answer.rows) == 8
    by_workflow = await raw_sums(engine, [WORKFLOW], _sums(), window)
    (frontier,) = (await raw_sums(engine, [], _sums(), window, R.model.in_(FRONTIER))).values()
    for row in answer.rows:
        sql = expected[_key(row)]
        assert row.requests == sql["requests"]
        for name in TOKENS:
            assert getattr(row, name) == sql[name], name
        assert row.cost_usd == pytest.approx(sql["cost_usd"], abs=1e-8)
        spent = float(by_workflow[(_key(row)[0],)]["cost_usd"])
        assert row.group_share == pytest.approx(float(sql["cost_usd"]) / spent, abs=1e-6)
        assert row.frontier_share == pytest.approx(
            float(sql["cost_usd"]) / float(frontier["cost_usd"]), abs=1e-6
        )
        assert row.cache_read_share == pytest.approx(
            sql["cache_read_tokens"] / sql["input_tokens"], abs=1e-6
        )
        assert row.month_usd == pytest.approx(float(sql["cost_usd"]) * _scale(answer), abs=1e-6)
        assert row.kind == ("untagged" if row.group["workflow_tag"] is None else "group")
    costs = [r.cost_usd for r in answer.rows]
    assert costs == sorted(costs, reverse=True)
    assert answer.totals.requests == frontier["requests"]
    assert answer.totals.cost_usd == pytest.approx(frontier["cost_usd"], abs=1e-8)
    # the tiers breakdown: every model's spend by its tier (the premium share)
    (tiers,) = [b for b in answer.breakdowns if b.name == "tiers"]
    per_model = await raw_sums(engine, [R.model], _sums(), window)
    (everything,) = (await raw_sums(engine, [], _sums(), window)).values()
    for tier in tiers.rows:
        spent = sum(float(v["cost_usd"]) for (m,), v in per_model.items() if TIERS[m] == tier.value)
        assert tier.cost_usd == pytest.approx(spent, abs=1e-8)
        assert tier.share == pytest.approx(spent / float(everything["cost_usd"]), abs=1e-6)
    assert [t.value for t in tiers.rows] == ["frontier", "standard", "economy"]


async def test_projections_equal_pricing_each_raw_row(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    """Each row's tokens priced on the target (pricing.py, request by request) and with
    half of each prompt read from cache at the served model's price."""
    answer = await ask(premium_context(engine), "premium-review")
    window = in_window(_window(answer))
    raw = await _raw_rows(engine, window, R.model.in_(FRONTIER))
    scale = _scale(answer)
    targets = {"claude-opus-4-7": ("anthropic", "claude-sonnet-4-6"), "gpt-5": ("openai", "gpt-4o")}
    for row in answer.rows:
        mine = [r for r in raw if ((r["workflow_tag"] or ""), r["model"]) == _key(row)]
        provider, target = targets[row.model or ""]
        assert (row.target, row.target_source) == (target, "default")
        on_target = sum(PRICES.price(provider, target, _usage(r)).cost_usd or 0 for r in mine)
        assert row.target_cost_usd == pytest.approx(on_target, rel=1e-9)
        assert row.target_month_usd == pytest.approx(on_target * scale, rel=1e-9)
        at_price = sum(
            PRICES.price(r["provider"], r["model"], _usage(r)).cost_usd or 0 for r in mine
        )
        assert row.at_price_month_usd == pytest.approx(at_price * scale, rel=1e-9)
        # prompt caching: half the input read from cache (more than was read already)
        rate = PRICES.rate_for(provider, row.model or "")
        assert rate is not None
        tokens = {name: sum(r[name] or 0 for r in mine) for name in TOKENS}
        cached = tokens["input_tokens"] / 2
        expected = (
            (tokens["input_tokens"] - cached - tokens["cache_write_tokens"]) * rate.input_mtok
            + cached * rate.cache_read_mtok
            + tokens["cache_write_tokens"] * rate.cache_write_mtok
            + tokens["output_tokens"] * rate.output_mtok
        ) / 1e6
        assert row.cached_month_usd == pytest.approx(expected * scale, rel=1e-3)
        assert (row.cached_month_usd or 0) < (row.at_price_month_usd or 0)
    # gpt-5's standard sibling (gpt-4o) is dearer for these tokens: no move proposed
    gpt5 = [r for r in answer.rows if r.model == "gpt-5"]
    assert all((r.saving_month_usd or 0) < 0 and r.yaml is None for r in gpt5)
    assert any(
        n.startswith("gpt-4o would cost no less than gpt-5 for the same tokens (4 rows)")
        for n in answer.notes
    )
    opus = [r for r in answer.rows if r.model == "claude-opus-4-7"]
    assert all((r.saving_month_usd or 0) > 0 for r in opus)
    assert answer.totals.target_cost_usd == pytest.approx(
        sum(r.target_cost_usd or 0 for r in answer.rows), abs=1e-8
    )


async def test_tier_overrides_and_configured_targets(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    extra = """
name: analytics
type: gateway-analytics-config
model_tiers: {"claude-opus-*": standard, claude-sonnet-4-6: frontier}
cheaper_targets: {claude-sonnet-4-6: haiku, "gpt-*": gpt-4o-mini}
prompt_cache_share: 0.8
"""
    answer = await ask(premium_context(engine, extra), "premium-review")
    assert {r.model for r in answer.rows} == {"claude-sonnet-4-6", "gpt-5"}
    window = in_window(_window(answer))
    raw = await _raw_rows(engine, window, R.model.in_(["claude-sonnet-4-6", "gpt-5"]))
    targets = {
        "claude-sonnet-4-6": ("claude-haiku-4-5", "anthropic"),
        "gpt-5": ("gpt-4o-mini", "openai"),
    }
    for row in answer.rows:
        target, provider = targets[row.model or ""]
        assert (row.target, row.target_source) == (target, "config")
        mine = [r for r in raw if ((r["workflow_tag"] or ""), r["model"]) == _key(row)]
        on_target = sum(PRICES.price(provider, target, _usage(r)).cost_usd or 0 for r in mine)
        assert row.target_cost_usd == pytest.approx(on_target, rel=1e-9)
        assert (row.yaml is not None) == (row.kind != "untagged")  # both targets are cheaper
    assert any("80% of input read from cache" in n for n in answer.notes)
    (tiers,) = [b for b in answer.breakdowns if b.name == "tiers"]
    by_tier = {t.value: t.requests for t in tiers.rows}
    models = await raw_sums(engine, [R.model], {"n": func.count()}, window)
    assert by_tier["standard"] == models[("claude-opus-4-7",)]["n"]

    unknown = extra.replace("gpt-4o-mini}", "gpt-9}")
    answer = await ask(premium_context(engine, unknown), "premium-review")
    assert {r.target for r in answer.rows if r.model == "gpt-5"} == {None}
    assert any("sends gpt-5 to gpt-9, which no provider document serves" in n for n in answer.notes)


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("cheaper_targets", "{gpt-5: gpt-5}", "names itself"),
        ("prompt_cache_share", "1.5", "less than or equal to 1"),
        ("model_tiers", "{gpt-5: premium}", "frontier"),
    ],
)
def test_bad_analytics_settings_are_refused_by_the_config_parser(
    field: str, value: str, says: str
) -> None:
    text = f"name: analytics\ntype: gateway-analytics-config\n{field}: {value}\n"
    with pytest.raises(ConfigValidationError) as refused:
        parse_documents(text, DocumentRegistry())
    assert says in str(refused.value)


async def test_documents_parse_compile_and_route_the_workflow(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    answer = await ask(premium_context(engine), "premium-review")
    (review,) = [r for r in answer.rows if _key(r) == ("review", "claude-opus-4-7")]
    # the alias `opus` and the catalogue name are one virtual model; code-review its own
    assert sorted(review.changes) == ["claude-opus-4-7", "code-review"]
    assert review.yaml is not None
    documents = parse_documents(review.yaml, DocumentRegistry())
    assert {d.name for d in documents} == {"claude-opus-4-7", "code-review"}
    # the documents in force with these applied: every proposed one compiles
    proposed = compiled(review.yaml)
    sonnet = ("anthropic", "claude-sonnet-4-6")
    opus = ("anthropic", "claude-opus-4-7")
    for name in ("claude-opus-4-7", "code-review"):
        vm = proposed.routes[name]
        moved = route_for(vm, Envelope(workflow_tag="review"))
        kept = route_for(vm, Envelope(workflow_tag="classify"))
        assert [(t.provider, t.model) for t in moved.rules] == [sonnet]
        assert [(t.provider, t.model) for t in kept.rules] == [opus]
    # code-review keeps its fallback (document level, inherited by every route)
    assert [(t.provider, t.model) for t in kept.fallbacks] == [("openai", "gpt-4o")]
    # the untagged workflow cannot be matched by a route: no document, an action instead
    (untagged,) = [r for r in answer.rows if _key(r) == ("", "claude-opus-4-7")]
    assert untagged.yaml is None and untagged.kind == "untagged"
    header = [msgspec.to_builtins(a) for a in answer.actions if a.control.kind == "config"]
    assert any(a["where"] == {"type": "header", "name": "X-Sluice-Workflow-Tag"} for a in header)
    # a fallback reached opus for haiku requests: haiku is not rerouted
    assert all("claude-haiku-4-5" not in r.changes for r in answer.rows)
    assert "claude-haiku-4-5 does not route to claude-opus-4-7 in the config in force" in (
        " ".join(answer.notes)
    )
    # one document per model name with every moved workflow's route
    (changes,) = [b for b in answer.breakdowns if b.name == "changes"]
    merged = {c.virtual_model: c for c in changes.rows}
    assert set(merged) == {"claude-opus-4-7", "code-review"}
    assert merged["code-review"].existing and not merged["claude-opus-4-7"].existing
    all_moved = compiled(*(c.yaml for c in changes.rows))
    for workflow in ("review", "classify", "eval-judge"):
        moved = route_for(all_moved.routes["code-review"], Envelope(workflow_tag=workflow))
        assert [(t.provider, t.model) for t in moved.rules] == [sonnet]
    # the actions: the move, naming the document and the what-if that checks it
    (first, *_) = [a for a in answer.actions if a.control.kind == "route"]
    top = next(r for r in answer.rows if r.yaml is not None)
    assert first.message.startswith(f"review workflow_tag {top.label}: ")
    assert f"is on claude-opus-4-7, ~${top.at_price_month_usd:,.2f}/month" in first.message
    assert f"on claude-sonnet-4-6 the same tokens would cost ~${top.target_month_usd:,.2f}" in (
        first.message
    )
    assert "--what-if 7d" in first.message
    assert first.where is not None and first.where.type == "gateway-load-balancing-config"


async def test_group_by_team_routes_by_subject_field(
    engine: AsyncEngine, records: list[LedgerRecord]
) -> None:
    answer = await ask(premium_context(engine), "premium-review", ("group_by", "team"))
    window = in_window(_window(answer))
    team = func.coalesce(R.team, "")
    expected = await raw_sums(engine, [team, R.model], _sums(), window, R.model.in_(FRONTIER))
    got = {(r.group["team"] or "", r.model): r.requests for r in answer.rows}
    assert got == {k: v["requests"] for k, v in expected.items()}
    (search,) = [r for r in answer.rows if r.label == "search" and r.model == "claude-opus-4-7"]
    proposed = compiled(search.yaml or "")
    moved = route_for(proposed.routes["claude-opus-4-7"], Envelope(team="search"))
    assert [t.model for t in moved.rules] == ["claude-sonnet-4-6"]


async def test_what_each_role_sees(engine: AsyncEngine, records: list[LedgerRecord]) -> None:
    ctx = premium_context(engine)
    lead = await ask(ctx, "premium-review", principal=LEAD)
    assert lead.scope.teams == ["search"]
    window = in_window(_window(lead))
    expected = await raw_sums(
        engine, [WORKFLOW, R.model], _sums(), window, R.model.in_(FRONTIER), R.team == "search"
    )
    assert {_key(r): r.requests for r in lead.rows} == {
        k: v["requests"] for k, v in expected.items()
    }
    with pytest.raises(PermissionDenied):
        await ask(ctx, "premium-review", ("team", "data"), principal=LEAD)
    member = await ask(ctx, "premium-review", principal=MEMBER)
    mine = await raw_sums(
        engine, [WORKFLOW, R.model], _sums(), window, R.model.in_(FRONTIER), R.user_id == "bo"
    )
    assert {_key(r): r.requests for r in member.rows} == {k: v["requests"] for k, v in mine.items()}
    with pytest.raises(InvalidRequest) as people:
        await ask(ctx, "premium-review", ("group_by", "user_id"))
    assert people.value.param == "group_by"
    for clash in ("model", "workflow_tag,provider"):
        with pytest.raises(InvalidRequest) as refused:
            await ask(ctx, "premium-review", ("group_by", clash))
        assert refused.value.param == "group_by"
