"""`/api/analytics/burn-rate` and `/api/analytics/adoption` through the whole gateway in
process: budgets applied through `/api/config` and seeded by the gateway from the
ledger, their live spend beside the rows and growing with real calls through the
emulator; keys made through `/api/keys` counted as known users; each role's view through
the admin gate; refusals in the admin error shape."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from sluicegate.analytics.panels.projection import month_bounds
from sluicegate.model.record import LedgerRecord
from sluicegate.server.admin_auth import AdminGate, admin_app
from sluicegate.server.analytics_api import analytics_routes
from tests.analytics.landing import land
from tests.server.inprocess import InProcessGateway
from tests.server.test_analytics_api import HeaderRoles, error_of

NOW = time.time()
START = max(month_bounds(NOW)[0], NOW - 3600)  # this month, whatever the day
BUDGETS = """
name: budgets
type: gateway-budget-config
budgets:
  - {id: alpha-monthly, scope: {metadata: {project: [alpha]}}, ceiling_usd: 1000, window: monthly}
  - {id: search-weekly, scope: {subjects: [team:search]}, ceiling_usd: 1000, window: weekly}
  - {id: org, ceiling_usd: 100000, window: monthly}
"""
RECORDS = [
    LedgerRecord(
        request_id=f"landed-{i}",
        ts=START + (NOW - START) * i / 40,
        user_id=f"u{i % 7}",
        team=("search", "data")[i % 2],
        project=("alpha", "beta", None)[i % 3],
        client_tool=("cursor", "claude-code")[i % 2 if i < 30 else 0],
        status_code=200,
        input_tokens=100,
        output_tokens=10,
        cost_usd=0.25 + i / 100,
        attempt_count=1,
    )
    for i in range(40)
]
ALPHA = sum(r.cost_usd or 0 for r in RECORDS if r.project == "alpha")


@pytest.fixture
async def landed(gw: InProcessGateway) -> InProcessGateway:
    await land(gw.gateway.engine, RECORDS)
    await gw.apply(BUDGETS)  # new budget windows: the gateway seeds them from the ledger
    await _until(
        gw, lambda rows: len(rows) == 3 and all(row["spent_usd"] > 0 for row in rows.values())
    )
    return gw


async def _until(gw: InProcessGateway, ready: Any, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            rows = (await gw.http.get("/api/budgets", headers=gw.admin)).json()["data"]
            if ready({row["id"]: row for row in rows}):
                return
            await asyncio.sleep(0.05)


async def _panel(gw: InProcessGateway, name: str, **params: str) -> dict[str, Any]:
    response = await gw.http.get(f"/api/analytics/{name}", params=params, headers=gw.admin)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _controls(row: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in row["controls"]}


async def test_budgets_live_spend_beside_the_rows_and_real_calls_add_to_it(
    landed: InProcessGateway,
) -> None:
    answer = await _panel(landed, "burn-rate")
    rows = {row["label"]: row for row in answer["rows"]}
    assert rows["UNTAGGED"]["kind"] == "untagged" and answer["rows"][0]["label"] == "UNTAGGED"
    (state,) = _controls(rows["alpha"])["alpha-monthly"]["status"]
    assert state["spent_usd"] == pytest.approx(ALPHA, abs=1e-5)
    assert rows["alpha"]["month_to_date_usd"] == pytest.approx(ALPHA, abs=1e-8)
    assert "search-weekly" not in _controls(rows["alpha"])  # a team budget: the team view's
    # calls through the gateway by a key pinned to alpha: the budget counts them at once
    key = await landed.create_key(user_id="ana", team="search", project="alpha", pinned=["project"])
    spent = 0.0
    for _ in range(3):
        response = await landed.http.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {key}"},
        )
        assert response.status_code == 200, response.text
        spent += float(response.headers["x-sluice-cost-usd"])
    assert spent > 0
    after = await _panel(landed, "burn-rate")
    alpha = {row["label"]: row for row in after["rows"]}["alpha"]
    (state,) = _controls(alpha)["alpha-monthly"]["status"]
    assert state["spent_usd"] == pytest.approx(ALPHA + spent, abs=1e-5)
    budgets = {b["name"]: b for b in after["breakdowns"]}["budgets"]
    assert {r["label"] for r in budgets["rows"]} == {"alpha-monthly", "org"}


async def test_refusals_are_json_in_the_admin_shape(landed: InProcessGateway) -> None:
    for path, params, status, param in [
        ("/api/analytics/adoption", {"group_by": "project"}, 400, "group_by"),
        ("/api/analytics/burn-rate", {"group_by": "user_id"}, 400, "group_by"),
        ("/api/analytics/burn-rate", {"since": "yesterday"}, 400, "since"),
        ("/api/analytics/burn-rate", {"colour": "x"}, 400, "colour"),
    ]:
        response = await landed.http.get(path, params=params, headers=landed.admin)
        assert error_of(response, status)["param"] == param


@pytest.fixture
async def as_role(landed: InProcessGateway) -> AsyncIterator[Any]:
    gate = AdminGate(Starlette(), admin_app(analytics_routes(landed.gateway)), HeaderRoles())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=gate), base_url="http://gw"
    ) as http:

        async def get(panel: str, role: str, **params: str) -> httpx.Response:
            headers = {"x-test-role": role}
            for header in ("teams", "user"):
                if header in params:
                    headers[f"x-test-{header}"] = params.pop(header)
            return await http.get(f"/api/analytics/{panel}", params=params, headers=headers)

        yield get


async def test_each_role_sees_the_budgets_get_api_budgets_shows_it(as_role: Any) -> None:
    lead = (await as_role("burn-rate", "team-lead", teams="search", group_by="team")).json()
    assert [row["label"] for row in lead["rows"]] == ["search"]
    (state,) = _controls(lead["rows"][0])["search-weekly"]["status"]
    assert state["spent_usd"] == pytest.approx(
        sum(r.cost_usd or 0 for r in RECORDS if r.team == "search"), abs=1e-5
    )
    assert "org" not in _controls(lead["rows"][0])  # not confined to its teams
    finance = (await as_role("burn-rate", "finance")).json()
    assert "org" in _controls(finance["totals"])
    member = (await as_role("burn-rate", "member", user="u1")).json()
    assert member["totals"]["requests"] == sum(1 for r in RECORDS if r.user_id == "u1")
    assert all(c["kind"] != "budget" for row in member["rows"] for c in row["controls"])
    refused = error_of(await as_role("adoption", "member", user="u1"), 403)
    assert refused["code"] == "role_forbidden"
    assert (await as_role("adoption", "team-lead", teams="data")).status_code == 200


async def test_adoption_counts_key_holders_as_known(landed: InProcessGateway) -> None:
    for user in ("k1", "k2", "k3"):
        await landed.create_key(user_id=user, team="infra", name=f"{user}-laptop")
    answer = await _panel(landed, "adoption", group_by="team")
    teams = {row["group"]["team"]: row for row in answer["rows"]}
    assert (teams["infra"]["known_users"], teams["infra"]["active_users"]) == (3, 0)
    search = {r.user_id for r in RECORDS if r.team == "search"}
    assert teams["search"]["active_users"] == teams["search"]["known_users"] == len(search)
    assert answer["totals"]["known_users"] == 7 + 3
