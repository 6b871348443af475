"""The outcome-join and leverage panels through the whole gateway in process, on SQLite
and PostgreSQL: outcomes recorded with POST /api/outcomes, sessions landed in the
ledger, the panels' answers, and the sessions behind a row's figures listed page by
page for an admin (never with a user id); every refusal in the admin error shape; each
role's view through the admin gate."""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from sluicegate.analytics.window import DAY, HOUR, iso
from sluicegate.server.app import Gateway
from tests.analytics.landing import land
from tests.analytics.session_reference import raw_sessions
from tests.analytics.session_traffic import land_sessions, orphan_outcomes, session_traffic
from tests.outcomes.conftest import RolesForTests, as_role
from tests.server.conftest import settings_for
from tests.server.inprocess import InProcessGateway, emulator_upstream, serving
from tests.support import fresh_postgres_database

DAY0 = 1_780_000_000.0 - 1_780_000_000.0 % DAY
WINDOW = {"since": iso(DAY0), "until": iso(DAY0 + 2 * DAY)}
WEEK = session_traffic(260, start=DAY0 - 7 * DAY, span_s=6 * DAY, seed=21, prefix="w", loop_share=0)
NOW = session_traffic(140, start=DAY0, span_s=DAY + 12 * HOUR, seed=22, prefix="n")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def landed(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[InProcessGateway]:
    """A gateway whose ledger holds the sessions; the window's outcomes recorded through
    the API, the week's before it by the store."""
    with ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path}/gateway.db"
            if request.param == "sqlite"
            else stack.enter_context(fresh_postgres_database())
        )
        gateway = Gateway(settings_for(tmp_path, database_url=url), upstream=emulator_upstream())
        gateway.admin_auth = RolesForTests(gateway.admin_auth)
        async with serving(gateway) as running:
            await land_sessions(gateway.engine, WEEK)
            await land(gateway.engine, NOW.records)
            for outcome in [*NOW.outcomes, *orphan_outcomes(2, ts=DAY0 + HOUR)]:
                body = msgspec.to_builtins(outcome)
                del body["source"]  # the API's own
                sent = await running.http.post("/api/outcomes", json=body, headers=running.admin)
                assert sent.status_code == 201, sent.text
            yield running


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    return dict(error)


async def _get(gw: InProcessGateway, path: str, **params: str) -> dict[str, Any]:
    response = await gw.http.get(path, params={**WINDOW, **params}, headers=gw.admin)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _every_page(gw: InProcessGateway, panel: str, **params: str) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await _get(
            gw, f"/api/analytics/{panel}/sessions", limit="7", **params,
            **({"cursor": cursor} if cursor else {}),
        )  # fmt: skip
        listed += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return listed
        assert len(page["data"]) == 7


async def test_the_panels_answer_from_the_ledger_and_the_outcomes_api(
    landed: InProcessGateway,
) -> None:
    gw = landed
    panels = {p["name"]: p for p in (await _get(gw, "/api/analytics"))["data"]}
    assert panels["outcomes"]["layer"] == panels["leverage"]["layer"] == "outcome"
    expected = await raw_sessions(gw.gateway.engine, DAY0, DAY0 + 2 * DAY)
    outcomes = await _get(gw, "/api/analytics/outcomes")
    assert outcomes["source"] == "rollup_session_groups"
    assert outcomes["totals"]["sessions"] == len(expected)
    assert outcomes["totals"]["outcomes"] == sum(s.outcomes for s in expected.values())
    assert outcomes["totals"]["pr_merged"] == sum(
        s.kinds.get("pr_merged", 0) for s in expected.values()
    )
    assert any(a["control"]["name"] == "session id" for a in outcomes["actions"])  # the ghosts
    leverage = await _get(gw, "/api/analytics/leverage")
    assert leverage["totals"]["sessions"] == len(expected)
    assert [c["key"] for c in leverage["columns"]][:4] == [
        "label", "sessions", "score_mean", "score_median",
    ]  # fmt: skip


async def test_the_sessions_behind_a_row_are_listed_page_by_page(landed: InProcessGateway) -> None:
    gw = landed
    leverage = await _get(gw, "/api/analytics/leverage")
    review = next(r for r in leverage["rows"] if r["label"] == "review")
    listed = await _every_page(gw, "leverage", workflow_tag="review")
    assert len(listed) == len({s["session"]["session_id"] for s in listed}) == review["sessions"]
    first = await _get(gw, "/api/analytics/leverage/sessions", workflow_tag="review", limit="7")
    assert first["sessions"] == review["sessions"] and first["filters"] == {
        "workflow_tag": "review"
    }
    newest_first = [(s["session"]["last_ts"], s["session"]["session_id"]) for s in listed]
    assert newest_first == sorted(newest_first, reverse=True)
    scores = [s["score"] for s in listed]
    assert statistics.fmean(scores) == pytest.approx(review["score_mean"], abs=1e-6)
    assert statistics.median(scores) == pytest.approx(review["score_median"], abs=1e-6)
    assert sum(1 for s in listed if s["loop"]) == review["loop_sessions"]
    assert "user_id" not in str(first["data"]) and "user_id" not in first["data"][0]["session"]
    # the untraced sessions of a workflow, from the outcome join
    outcomes = await _get(gw, "/api/analytics/outcomes")
    triage = next(r for r in outcomes["rows"] if r["label"] == "triage")
    untraced = await _every_page(gw, "outcomes", workflow_tag="triage", traced="false")
    assert len(untraced) == triage["untraced_sessions"]
    assert all(s["outcomes"] == 0 for s in untraced)
    traced = await _every_page(gw, "outcomes", workflow_tag="triage", traced="true")
    assert len(traced) == triage["traced_sessions"]
    assert sum(s["ticket_closed"] for s in traced) == triage["ticket_closed"]
    assert sum(s["cost_usd"] for s in [*traced, *untraced]) == pytest.approx(
        triage["cost_usd"], abs=1e-8
    )


@pytest.mark.parametrize(
    ("path", "params", "status", "param"),
    [
        ("/api/analytics/latency/sessions", {}, 404, "panel"),
        ("/api/analytics/leverage/sessions", {"cursor": "not-a-cursor"}, 400, "cursor"),
        ("/api/analytics/leverage/sessions", {"cursor": "WzEsIjAiXQ"}, 200, None),
        ("/api/analytics/leverage/sessions", {"cursor": "WzEsImFcdTAwMDBiIl0"}, 400, "cursor"),
        ("/api/analytics/leverage/sessions", {"traced": "maybe"}, 400, "traced"),
        ("/api/analytics/leverage/sessions", {"limit": "0"}, 400, "limit"),
        ("/api/analytics/leverage/sessions", {"limit": "1001"}, 400, "limit"),
        ("/api/analytics/outcomes/sessions", {"group_by": "team"}, 400, "group_by"),
        ("/api/analytics/outcomes/sessions", {"provider": "openai"}, 400, "provider"),
        ("/api/analytics/outcomes/sessions", {"user_id": "ana"}, 400, "user_id"),
        ("/api/analytics/outcomes/sessions", {"since": "soon"}, 400, "since"),
        ("/api/analytics/outcomes/sessions", {"team": "a\x00b"}, 400, None),
        ("/api/analytics/leverage", {"group_by": "user_id"}, 400, "group_by"),
        ("/api/analytics/outcomes", {"group_by": "model"}, 400, "group_by"),
    ],
)
async def test_refusals_are_json_in_the_admin_shape(
    gw: InProcessGateway, path: str, params: dict[str, str], status: int, param: str | None
) -> None:
    response = await gw.http.get(path, params=params, headers=gw.admin)
    if status == 200:
        assert response.status_code == 200, response.text
        return
    error = error_of(response, status)
    assert error["param"] == param
    if status == 404:
        assert error["code"] == "panel_not_found" and "outcomes, leverage" in error["message"]


async def test_a_repeated_page_parameter_is_refused(gw: InProcessGateway) -> None:
    response = await gw.http.get(
        "/api/analytics/leverage/sessions?limit=2&limit=3", headers=gw.admin
    )
    assert error_of(response, 400)["param"] == "limit"


async def test_each_role_sees_its_own_scope_and_only_admins_list_sessions(
    landed: InProcessGateway,
) -> None:
    gw = landed
    expected = await raw_sessions(gw.gateway.engine, DAY0, DAY0 + 2 * DAY)
    for role in ("finance", "platform", "security", "team-lead", "member"):
        listing = await gw.http.get(
            "/api/analytics/leverage/sessions", params=WINDOW, headers=as_role(role, "data")
        )
        assert error_of(listing, 403)["code"] == "role_forbidden"
        for panel in ("leverage", "outcomes"):
            response = await gw.http.get(
                f"/api/analytics/{panel}", params=WINDOW, headers=as_role(role, "data")
            )
            assert response.status_code == 200, response.text
            answer = response.json()
            if role == "team-lead":
                assert answer["scope"]["teams"] == ["data"]
                wanted = sum(1 for s in expected.values() if s.team == "data")
                assert answer["totals"]["sessions"] == wanted
            if role == "member":  # a member with no session of its own sees none
                assert answer["totals"]["sessions"] == 0
    lead = await gw.http.get(
        "/api/analytics/outcomes",
        params={**WINDOW, "team": "search"},
        headers=as_role("team-lead", "data"),
    )
    assert error_of(lead, 403)["code"] == "team_forbidden"
