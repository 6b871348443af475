"""The leverage panel: the score against the seed's own function, and each workflow's
mean, median and counts against a direct computation over the same raw rows (sessions
grouped from `requests`, outcomes read row by row, the loop baseline taken from the
week before), on SQLite and PostgreSQL; loops, untraced workflows and their actions;
the bound on sessions scored; the caller's scope; never a view by user."""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from typing import Any

import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics import loop_baseline
from sluicegate.analytics.leverage_score import ScoreInputs, leverage_score
from sluicegate.analytics.leverage_sessions import DIGITS
from sluicegate.analytics.panels import leverage
from sluicegate.analytics.panels.base import PanelContext
from sluicegate.analytics.panels.leverage import LeverageRow, ScoredView
from sluicegate.analytics.panels.session_listing import SessionAsk, decode_cursor
from sluicegate.analytics.query import parse_query
from sluicegate.analytics.scope import scoped
from sluicegate.analytics.window import DAY, HOUR, iso
from sluicegate.errors import InvalidRequest
from sluicegate.server.roles import AdminPrincipal, Role, analytics_scope
from tests.analytics.panel_support import ADMIN, NOW, ask, context, snapshot
from tests.analytics.session_reference import (
    RefSession,
    p95,
    raw_sessions,
    seed_inputs,
    seed_score,
    tokens_per_hour,
)
from tests.analytics.session_traffic import land_sessions, session_traffic
from tests.db.databases import Databases

DAY0 = 1_780_000_000.0 - 1_780_000_000.0 % DAY
SINCE, UNTIL = DAY0 + 5 * HOUR + 17 * 60, DAY0 + 2 * DAY + 3 * HOUR - 1
WINDOW = (("since", iso(SINCE)), ("until", iso(UNTIL)))
EFFECTIVE = (DAY0 + 5 * HOUR, DAY0 + 2 * DAY + 3 * HOUR)
BASELINE = (EFFECTIVE[0] - 7 * DAY, EFFECTIVE[0])
LEAD = AdminPrincipal("lead", Role.TEAM_LEAD, teams=("data",))
SESSION_LIMIT = """
name: guards
type: gateway-rate-limit-config
rules:
  - id: oncall-session-tokens
    when: {metadata: {X-Sluice-Workflow-Tag: [oncall]}}
    limit: {tokens: 2000000, window: 1h, scope: session}
"""


def test_the_score_is_the_seeds_function() -> None:
    rng = random.Random(1)
    for _ in range(2000):
        inputs = ScoreInputs(
            incidents_resolved=rng.choice((0, 0, 1, 2)),
            prs_merged=rng.choice((0, 0, 1, 3)),
            tickets_closed=rng.choice((0, 1)),
            eval_pass_rate=rng.choice((0.0, rng.random())),
            budget_hits=rng.choice((0, 0, 1, 4)),
            rate_limit_hits=rng.choice((0, 2, 9)),
            guardrail_blocks=rng.choice((0, 0, 1)),
            retry_tokens=rng.choice((0, rng.randint(0, 200_000))),
            unused_context_ratio=rng.choice((0.0, rng.random())),
            loop=rng.random() < 0.2,
            cost_usd=rng.choice((0.0, 0.0004, rng.random() * 30)),
        )
        seed = {
            "incidents_resolved": inputs.incidents_resolved,
            "prs_merged": inputs.prs_merged,
            "tickets_closed": inputs.tickets_closed,
            "eval_pass_rate": inputs.eval_pass_rate,
            "budget_limit_hits": inputs.budget_hits,
            "rate_limit_hits": inputs.rate_limit_hits,
            "guardrail_blocks": inputs.guardrail_blocks,
            "retry_token_count": inputs.retry_tokens,
            "unused_context_ratio": inputs.unused_context_ratio,
            "tokens_per_hr": 4.0 if inputs.loop else 2.0,
            "p95_baseline": 1.0,
            "total_cost_usd": inputs.cost_usd,
        }
        assert leverage_score(inputs).score == pytest.approx(seed_score(seed), abs=1e-9)
    one_pr = leverage_score(ScoreInputs(prs_merged=1, cost_usd=1.0))
    assert (one_pr.score, one_pr.outcome_points, one_pr.cost_dampener) == (15.0, 15.0, 1.0)
    assert leverage_score(ScoreInputs(prs_merged=1, cost_usd=0.0)).score == 100.0  # clamped
    looping = leverage_score(ScoreInputs(prs_merged=1, loop=True, cost_usd=1.0))
    assert (looping.score, looping.waste_penalty) == (0.0, 15.0)


@pytest.fixture
async def landed(engine: AsyncEngine) -> AsyncEngine:
    quiet_week = session_traffic(
        420, start=DAY0 - 7 * DAY, span_s=6 * DAY, seed=8, prefix="old", loop_share=0.0
    )
    during = session_traffic(300, start=DAY0, span_s=2 * DAY + 3 * HOUR, seed=9, prefix="now")
    looping = session_traffic(
        24, start=DAY0 + 6 * HOUR, span_s=DAY, seed=10, prefix="loop", loop_share=0.7,
        workflows=("oncall",),
    )  # fmt: skip
    await land_sessions(engine, quiet_week, during, looping)
    return engine


async def _reference(engine: AsyncEngine) -> dict[str, list[tuple[RefSession, float, bool | None]]]:
    """Per workflow: each session in the window, its seed score, and its loop flag."""
    week = await raw_sessions(engine, *BASELINE)
    rates: dict[str, list[float]] = defaultdict(list)
    for s in week.values():
        rates[s.workflow].append(tokens_per_hour(s))
    baseline = {w: p95(r) for w, r in rates.items() if len(r) >= 20}
    found: dict[str, list[tuple[RefSession, float, bool | None]]] = defaultdict(list)
    for s in (await raw_sessions(engine, *EFFECTIVE)).values():
        p = baseline.get(s.workflow)
        loop = None if p is None else tokens_per_hour(s) > 3 * p
        found[s.workflow].append((s, seed_score(seed_inputs(s, p)), loop))
    return found


def _assert_row(row: LeverageRow, scored: list[tuple[RefSession, float, bool | None]]) -> None:
    sessions = [s for s, _, _ in scored]
    scores = [score for _, score, _ in scored]
    assert row.sessions == len(scored), row.label
    assert row.score_mean == pytest.approx(statistics.fmean(scores), abs=1e-6), row.label
    assert row.score_median == pytest.approx(statistics.median(scores), abs=1e-6), row.label
    assert row.traced_sessions == sum(1 for s in sessions if s.outcomes), row.label
    assert row.loop_sessions == sum(1 for _, _, loop in scored if loop), row.label
    assert row.unchecked_sessions == sum(1 for _, _, loop in scored if loop is None), row.label
    assert row.outcomes == sum(s.outcomes for s in sessions)
    assert row.tokens == sum(s.input_tokens + s.output_tokens for s in sessions)
    assert row.retry_tokens == sum(s.retry_tokens for s in sessions)
    assert row.rate_limit_hits == sum(s.rate_limit_hits for s in sessions)
    assert row.budget_hits == sum(s.budget_hits for s in sessions)
    assert row.guardrail_blocks == sum(s.guardrail_blocks for s in sessions)
    assert row.cost_usd == pytest.approx(sum(s.cost_usd for s in sessions), abs=1e-8)


async def test_leverage_by_workflow_equals_the_raw_rows(landed: AsyncEngine) -> None:
    answer = await ask(context(landed), "leverage", *WINDOW)
    assert answer.source == "rollup_sessions" and answer.group_by == ["workflow_tag"]
    reference = await _reference(landed)
    assert {r.group["workflow_tag"] or "" for r in answer.rows} == set(reference)
    for row in answer.rows:
        assert row.kind == "group"
        _assert_row(row, reference[row.group["workflow_tag"] or ""])
    _assert_row(answer.totals, [x for scored in reference.values() for x in scored])
    means = [r.score_mean for r in answer.rows]
    assert means == sorted(means, reverse=True)  # workflow patterns, the best first
    assert answer.rows[-1].label == "sandbox" and answer.rows[-1].score_mean == 0.0
    assert any(r.loop_sessions for r in answer.rows)
    # the sessions behind each figure are countable, and nothing names a person
    text = msgspec.json.encode(answer).decode()
    assert '"user_id":null' in text.replace(" ", "")  # the scope's, and only it
    assert not any(name in text for name in ('"ana"', '"bo"', '"cy"', '"di"'))


async def _listed(ctx: PanelContext, *params: tuple[str, str]) -> list[ScoredView]:
    """Every session the leverage listing shows for these parameters, page by page."""
    query = parse_query(
        [*WINDOW, *params],
        panel="leverage",
        default_group_by="workflow_tag",
        default_limit=20,
        now=NOW,
    )
    asked = scoped(query, analytics_scope(ADMIN))
    views: list[ScoredView] = []
    after = None
    while True:
        page = await leverage.PANEL.sessions(ctx, asked, SessionAsk(limit=1000, after=after))
        views += page.data
        if page.next_cursor is None:
            return views
        after = decode_cursor(page.next_cursor)


@pytest.mark.parametrize("params", [(), (("team", "search"),)])
async def test_each_row_is_the_scores_its_listed_sessions_show(
    landed: AsyncEngine, params: tuple[tuple[str, str], ...]
) -> None:
    """The panel scores in SQL, the listing in Python: a workflow's mean, median and loop
    counts are exactly those of the sessions listed behind it."""
    ctx = context(landed)
    answer = await ask(ctx, "leverage", *WINDOW, *params)
    by_workflow: dict[str, list[ScoredView]] = defaultdict(list)
    for view in await _listed(ctx, *params):
        by_workflow[view.session.workflow_tag or ""].append(view)
    assert {r.group["workflow_tag"] or "" for r in answer.rows} == set(by_workflow)
    for row in answer.rows:
        views = by_workflow[row.group["workflow_tag"] or ""]
        scores = [v.score for v in views]
        assert row.sessions == len(views), row.label
        assert row.score_mean == round(statistics.fmean(scores), DIGITS), row.label
        assert row.score_median == round(statistics.median(scores), DIGITS), row.label
        assert row.loop_sessions == sum(1 for v in views if v.loop), row.label
        assert row.unchecked_sessions == sum(1 for v in views if v.loop is None), row.label
        waste = statistics.fmean(v.waste_penalty for v in views)
        assert row.waste_penalty_mean == pytest.approx(waste, abs=1e-6), row.label
    assert any(r.loop_sessions for r in answer.rows) or params


async def test_a_baseline_is_read_again_once_its_cached_copy_is_old(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(loop_baseline, "CLOCK", lambda: clock[0])
    quiet = session_traffic(
        420, start=BASELINE[0], span_s=6 * DAY, seed=8, prefix="old", loop_share=0.0
    )
    during = session_traffic(100, start=DAY0, span_s=DAY, seed=9, prefix="now")
    await land_sessions(engine, quiet, during)
    first = await ask(context(engine), "leverage", *WINDOW)
    # a busier week landed late: the cached baseline holds until it is CACHE_TTL_S old
    busy = session_traffic(
        420, start=BASELINE[0], span_s=6 * DAY, seed=11, prefix="busy", loop_share=0.9
    )
    await land_sessions(engine, busy)
    clock[0] += loop_baseline.CACHE_TTL_S - 1
    cached = await ask(context(engine), "leverage", *WINDOW)
    clock[0] += 2
    again = await ask(context(engine), "leverage", *WINDOW)

    def baselines(answer: Any) -> dict[str, float | None]:
        return {r.label: r.loop_baseline_tokens_per_hour for r in answer.rows}

    assert baselines(cached) == baselines(first)
    week = await raw_sessions(engine, *BASELINE)
    rates: dict[str, list[float]] = defaultdict(list)
    for s in week.values():
        rates[s.workflow].append(tokens_per_hour(s))
    fresh = baselines(again)
    assert fresh != baselines(first)
    for row in again.rows:
        expected = rates.get(row.group["workflow_tag"] or "", [])
        assert fresh[row.label] == (
            pytest.approx(p95(expected), abs=1e-3) if len(expected) >= 20 else None
        ), row.label


async def test_a_looping_workflow_is_named_with_its_per_session_limit(
    landed: AsyncEngine,
) -> None:
    answer = await ask(context(landed), "leverage", *WINDOW)
    oncall = next(r for r in answer.rows if r.label == "oncall")
    assert oncall.loop_sessions >= 0.25 * oncall.sessions and oncall.unchecked_sessions == 0
    assert oncall.loop_baseline_tokens_per_hour is not None
    (loop,) = [a for a in answer.actions if "flagged as loops" in a.message]
    assert loop.message.startswith(
        f"workflow oncall: {oncall.sessions} sessions, mean score {oncall.score_mean:.1f}, "
        f"{oncall.loop_sessions} of them flagged as loops"
    )
    assert "review its agent's exit condition" in loop.message
    assert msgspec.to_builtins(loop.control) == {
        "kind": "rate_limit",
        "name": "per-session tokens: workflow oncall",
    }
    assert msgspec.to_builtins(loop.where) == {"type": "gateway-rate-limit-config", "name": None}
    limited = await ask(context(landed, config=snapshot(SESSION_LIMIT)), "leverage", *WINDOW)
    (loop,) = [a for a in limited.actions if "flagged as loops" in a.message]
    assert (loop.control.kind, loop.control.name) == ("rate_limit", "oncall-session-tokens")
    assert (loop.where.type, loop.where.name) == ("gateway-rate-limit-config", "guards")
    assert "lower it" in loop.message


async def test_an_untraced_workflow_is_told_to_instrument_its_join(landed: AsyncEngine) -> None:
    answer = await ask(context(landed), "leverage", *WINDOW)
    sandbox = next(r for r in answer.rows if r.label == "sandbox")
    assert sandbox.traced_sessions == 0 and sandbox.sessions >= 10
    (join,) = [a for a in answer.actions if a.control.name == "outcome join: workflow sandbox"]
    assert join.message.startswith(
        f"instrument the outcome join for workflow sandbox: {sandbox.sessions} sessions, "
        "mean score 0.0: no session has an outcome"
    )


async def test_without_a_baseline_sessions_are_not_checked_for_loops(engine: AsyncEngine) -> None:
    await land_sessions(engine, session_traffic(80, start=DAY0, span_s=DAY, seed=12))
    answer = await ask(context(engine), "leverage", *WINDOW)
    assert answer.rows and all(r.unchecked_sessions == r.sessions for r in answer.rows)
    for row in answer.rows:
        assert row.loop_sessions == 0 and row.loop_baseline_tokens_per_hour is None
    (note,) = [n for n in answer.notes if n.startswith("not checked for loops")]
    assert "review" in note and "(no value)" in note
    assert not [a for a in answer.actions if "loops" in a.message]


async def test_past_the_bound_the_newest_sessions_are_scored_and_said_so(
    landed: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(leverage, "MAX_SCORED", 50)
    answer = await ask(context(landed), "leverage", *WINDOW)
    in_window = sum(len(v) for v in (await _reference(landed)).values())
    assert answer.totals.sessions == 50 < in_window
    (note,) = [n for n in answer.notes if n.startswith("scored the newest 50")]
    assert f"of the {in_window} sessions in the window" in note


async def test_scoped_to_a_team_lead_s_teams(landed: AsyncEngine) -> None:
    answer = await ask(context(landed), "leverage", *WINDOW, principal=LEAD)
    expected = [x for v in (await _reference(landed)).values() for x in v if x[0].team == "data"]
    assert answer.totals.sessions == len(expected)
    assert answer.scope.teams == ["data"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ((("group_by", "team"),), "group_by"),
        ((("group_by", "workflow_tag,project"),), "group_by"),
        ((("group_by", "user_id"),), "group_by"),
        ((("user_id", "ana"),), "user_id"),
        ((("model", "gpt-4o"),), "model"),
    ],
)
async def test_only_workflows_are_ranked(
    engine: AsyncEngine, params: tuple[tuple[str, str], ...], param: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await ask(context(engine), "leverage", *WINDOW, *params)
    assert refused.value.param == param


@pytest.mark.postgres
async def test_sqlite_and_postgresql_answer_alike(databases: Databases) -> None:
    quiet_week = session_traffic(300, start=DAY0 - 7 * DAY, span_s=6 * DAY, seed=8, prefix="o")
    during = session_traffic(200, start=DAY0, span_s=2 * DAY, seed=9, prefix="n")
    questions = [
        ("leverage", ()),
        ("leverage", (("limit", "2"), ("team", "search"))),
        ("outcomes", ()),
        ("outcomes", (("group_by", "project,client_tool"), ("limit", "3"))),
    ]
    answers = {}
    for backend in ("sqlite", "postgres"):
        engine = await databases.engine(backend)
        await land_sessions(engine, quiet_week, during, orphans=2, ts=DAY0 + HOUR)
        ctx = context(engine)
        answers[backend] = [
            msgspec.to_builtins(await ask(ctx, panel, *WINDOW, *params))
            for panel, params in questions
        ]
    for question, lite, pg in zip(questions, answers["sqlite"], answers["postgres"], strict=True):
        assert lite["totals"]["sessions"] > 0, question
        assert lite == pg, question
