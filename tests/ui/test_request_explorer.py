"""The request explorer: the API's own listing for the signed-in caller (an admin,
audited; a member, its own rows; other roles refused), filters and cursor pages in the
URL, each row opening to its whole record with attempts and policy events."""

from __future__ import annotations

import html
import re

from tests.server.inprocess import ADMIN_KEY, InProcessGateway
from tests.ui.browserless import Browser

ROW = re.compile(r'<tr data-request="([^"]+)">')
NEXT = re.compile(r'<a href="([^"]+)" data-testid="next-page">')


async def _traffic(gw: InProcessGateway) -> None:
    for user, team in (("alice", "search"), ("alice", "search"), ("bob", "payments")):
        key = await gw.create_key(user_id=user, team=team)
        response = await gw.http.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {key}", "x-sluice-project": "p"},
        )
        assert response.status_code == 200, response.text


async def test_an_admin_pages_through_filtered_rows_and_is_audited(gw: InProcessGateway) -> None:
    await _traffic(gw)
    browser = Browser(gw.http)
    await browser.sign_in(ADMIN_KEY)
    first = await browser.get("/ui/requests?limit=2")
    assert first.status_code == 200
    ids = ROW.findall(first.text)
    assert len(ids) == 2
    link = NEXT.search(first.text)
    assert link is not None
    second = await browser.get(html.unescape(link.group(1)))
    more = ROW.findall(second.text)
    assert len(more) == 1 and not set(more) & set(ids) and NEXT.search(second.text) is None
    assert "attempts" in first.text and "policy events" in first.text
    assert "gpt-4o-mini" in first.text  # the record's model and its attempt
    only = await browser.get("/ui/requests?team=payments")
    assert len(ROW.findall(only.text)) == 1 and "payments" in only.text
    audit = await gw.http.get("/api/audit", headers=gw.admin)
    assert any(row["path"].startswith("/ui/requests") for row in audit.json()["data"]), audit.text


async def test_a_member_sees_its_own_rows_and_a_team_lead_none(gw: InProcessGateway) -> None:
    await _traffic(gw)
    member = await gw.http.post(
        "/api/tokens", json={"role": "member", "user_id": "bob", "name": "bob"}, headers=gw.admin
    )
    browser = Browser(gw.http)
    await browser.sign_in(member.json()["token"])
    own = await browser.get("/ui/requests")
    assert own.status_code == 200 and len(ROW.findall(own.text)) == 1
    other = await browser.get("/ui/requests?user_id=alice")
    assert other.status_code == 403
    lead = await gw.http.post(
        "/api/tokens",
        json={"role": "team-lead", "teams": ["search"], "name": "lead"},
        headers=gw.admin,
    )
    refused = Browser(gw.http)
    await refused.sign_in(lead.json()["token"])
    page = await refused.get("/ui/requests")
    assert page.status_code == 403 and "ledger rows name users" in page.text
