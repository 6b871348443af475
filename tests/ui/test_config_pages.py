"""The config pages: the live documents and history, one version, the diff between two;
readable by the roles `GET /api/config` admits, refused to a team lead."""

from __future__ import annotations

import html

from tests.server.inprocess import ADMIN_KEY, InProcessGateway
from tests.ui.browserless import Browser

V1 = """
name: limits
type: gateway-rate-limit-config
rules:
  - id: per-user
    limit: {requests: 100, window: 1m, scope: user}
"""
V2 = V1.replace("requests: 100", "requests: 250")


async def test_live_documents_history_and_a_diff(gw: InProcessGateway) -> None:
    await gw.apply(V1)
    await gw.apply(V2)
    browser = Browser(gw.http)
    await browser.sign_in(ADMIN_KEY)
    live = await browser.get("/ui/config")
    assert live.status_code == 200
    assert "Version 2" in live.text and "requests: 250" in live.text
    assert 'href="/ui/config/diff?from=1&amp;to=2"' in live.text
    first = await browser.get("/ui/config/versions/1")
    assert "requests: 100" in first.text and "requests: 250" not in first.text
    diff = html.unescape((await browser.get("/ui/config/diff?from=1&to=2")).text)
    assert "-    requests: 100" in diff and "+    requests: 250" in diff
    assert "gateway-rate-limit-config/limits: changed" in diff
    missing = await browser.get("/ui/config/versions/9")
    assert missing.status_code == 404 and "no config version 9" in missing.text
    bad = await browser.get("/ui/config/diff?from=x&to=2")
    assert bad.status_code == 400 and "from" in bad.text


async def test_config_readers_only(gw: InProcessGateway) -> None:
    finance = await gw.http.post(
        "/api/tokens", json={"role": "finance", "name": "fin"}, headers=gw.admin
    )
    lead = await gw.http.post(
        "/api/tokens",
        json={"role": "team-lead", "teams": ["search"], "name": "lead"},
        headers=gw.admin,
    )
    reader = Browser(gw.http)
    await reader.sign_in(finance.json()["token"])
    assert (await reader.get("/ui/config")).status_code == 200
    refused = Browser(gw.http)
    await refused.sign_in(lead.json()["token"])
    page = await refused.get("/ui/config")
    assert page.status_code == 403 and "team-lead role may not" in page.text
