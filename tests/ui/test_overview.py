"""The overview's eight-item checklist, computed live from config and ledger: each item's
colour follows what is configured and what traffic shows, and features not built yet
are red with the reason. A team lead is not shown it (it reads the whole config)."""

from __future__ import annotations

import re

from tests.server.inprocess import ADMIN_KEY, InProcessGateway
from tests.ui.browserless import Browser

CONFIG = """
name: budgets
type: gateway-budget-config
budgets:
  - id: alpha-monthly
    scope: {metadata: {project: [alpha]}}
    ceiling_usd: 100
    window: monthly
    alerts: [{at_pct: 80}]
---
name: limits
type: gateway-rate-limit-config
rules:
  - id: per-user
    limit: {requests: 1000, window: 1m, scope: user}
"""
ROW = re.compile(r'<tr data-item="(\d)">.*?data-status="(\w+)"', re.S)


async def _statuses(browser: Browser) -> dict[int, str]:
    page = await browser.get("/ui/")
    assert page.status_code == 200, page.text
    return {int(n): status for n, status in ROW.findall(page.text)}


async def test_the_checklist_follows_config_and_traffic(gw: InProcessGateway) -> None:
    key = await gw.create_key(user_id="alice", team="search")
    for project in ("alpha", "beta"):
        response = await gw.http.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {key}", "x-sluice-project": project},
        )
        assert response.status_code == 200, response.text
    browser = Browser(gw.http)
    await browser.sign_in(ADMIN_KEY)
    before = await _statuses(browser)
    assert before == {
        1: "green",  # every request named a project and a team
        2: "red",  # no budget at all
        3: "red",  # no rate limit
        4: "red",  # guardrails: not built
        5: "red",
        6: "red",  # the runaway-agent detector: not built
        7: "red",  # no outcome joined
        8: "red",  # no routed virtual model
    }
    await gw.apply(CONFIG)
    after = await _statuses(browser)
    assert after[2] == "amber" and after[3] == "amber"  # alpha budgeted, beta not; per-user only
    page = (await browser.get("/ui/")).text
    assert "missing: beta" in page and "not built in this gateway yet" in page


async def test_a_team_lead_is_not_shown_the_checklist(gw: InProcessGateway) -> None:
    made = await gw.http.post(
        "/api/tokens",
        json={"role": "team-lead", "teams": ["search"], "name": "lead"},
        headers=gw.admin,
    )
    browser = Browser(gw.http)
    await browser.sign_in(made.json()["token"])
    page = await browser.get("/ui/")
    assert page.status_code == 200 and 'data-testid="checklist"' not in page.text
