"""The web UI over plain HTTP, in process: the sign-in cookie and its attributes, CSRF on
every form, sign-out ending the session server-side, a revoked token ending its session,
sessions shared by replicas of one database, role scoping of panel pages, and the CSV of
a panel being the API's figures."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from sqlalchemy import select

from sluicegate.db.schema import ui_sessions
from sluicegate.identity.credentials import hash_secret
from sluicegate.server.app import Gateway
from sluicegate.ui.sessions import SESSION_COOKIE
from tests.server.conftest import settings_for
from tests.server.inprocess import ADMIN_KEY, InProcessGateway, emulator_upstream, serving
from tests.ui.browserless import Browser, csrf_of, set_cookies


async def _token(gw: InProcessGateway, **fields: Any) -> dict[str, Any]:
    response = await gw.http.post("/api/tokens", json=fields, headers=gw.admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _call(gw: InProcessGateway, key: str, team: str) -> None:
    response = await gw.http.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {key}", "x-sluice-project": f"{team}-app"},
    )
    assert response.status_code == 200, response.text


async def test_a_page_without_a_session_goes_to_sign_in(gw: InProcessGateway) -> None:
    response = await Browser(gw.http).get("/ui/panels/burn-rate?team=search")
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/sign-in?next=/ui/panels/burn-rate%3Fteam%3Dsearch"


async def test_sign_in_sets_an_httponly_strict_cookie_and_stores_only_its_hash(
    gw: InProcessGateway,
) -> None:
    browser = Browser(gw.http)
    response = await browser.sign_in(ADMIN_KEY, next_path="/ui/panels/latency")
    assert response.status_code == 303 and response.headers["location"] == "/ui/panels/latency"
    morsel = set_cookies(response)[SESSION_COOKIE][SESSION_COOKIE]
    assert morsel["httponly"] and morsel["samesite"] == "strict" and morsel["path"] == "/ui"
    assert not morsel["secure"]  # plain HTTP, no flag: a Secure cookie would not come back
    session_id = morsel.value
    async with gw.gateway.engine.connect() as conn:
        stored = (await conn.execute(select(ui_sessions.c.id_hash))).scalars().all()
    assert stored == [hash_secret(session_id)]
    page = await browser.get("/ui/panels/latency")
    assert page.status_code == 200 and "Latency" in page.text
    assert ADMIN_KEY not in page.text and session_id not in page.text


async def test_the_secure_flag_makes_cookies_secure(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, ui_secure_cookie=True)
    async with serving(Gateway(settings, upstream=emulator_upstream())) as gw:
        response = await Browser(gw.http).sign_in(ADMIN_KEY)
    assert set_cookies(response)[SESSION_COOKIE][SESSION_COOKIE]["secure"]


async def test_a_bad_credential_is_refused_on_the_form(gw: InProcessGateway) -> None:
    browser = Browser(gw.http)
    response = await browser.sign_in("sga-not-a-token")
    assert response.status_code == 401 and "unknown or revoked admin token" in response.text
    assert SESSION_COOKIE not in browser.cookies
    model_key = await gw.create_key(user_id="alice", team="search")
    refused = await browser.sign_in(model_key)
    assert refused.status_code == 403 and "is not an admin key" in refused.text


async def test_sign_in_without_the_form_token_is_refused(gw: InProcessGateway) -> None:
    browser = Browser(gw.http)
    await browser.get("/ui/sign-in")  # the cookie half of the double submit
    forged = await browser.post_form("/ui/sign-in", {"csrf_token": "x" * 64, "token": ADMIN_KEY})
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert SESSION_COOKIE not in browser.cookies


async def test_sign_out_needs_the_csrf_token_and_ends_the_session_server_side(
    gw: InProcessGateway,
) -> None:
    browser = Browser(gw.http)
    await browser.sign_in(ADMIN_KEY)
    page = await browser.get("/ui/")
    session_cookie = browser.cookies[SESSION_COOKIE]
    refused = await browser.post_form("/ui/sign-out", {"csrf_token": "wrong"})
    assert refused.status_code == 403 and "csrf" in refused.text.lower()
    assert (await browser.get("/ui/")).status_code == 200  # still signed in
    done = await browser.post_form("/ui/sign-out", {"csrf_token": csrf_of(page.text)})
    assert done.status_code == 303 and done.headers["location"] == "/ui/sign-in"
    assert SESSION_COOKIE not in browser.cookies
    replayed = Browser(gw.http, {SESSION_COOKIE: session_cookie})  # a copy of the old cookie
    assert (await replayed.get("/ui/")).status_code == 303


async def test_revoking_the_token_ends_its_sessions(gw: InProcessGateway) -> None:
    token = await _token(gw, role="finance", name="fin")
    browser = Browser(gw.http)
    await browser.sign_in(token["token"])
    assert (await browser.get("/ui/panels/burn-rate")).status_code == 200
    revoked = await gw.http.delete(f"/api/tokens/{token['id']}", headers=gw.admin)
    assert revoked.status_code == 200
    assert (await browser.get("/ui/panels/burn-rate")).status_code == 303


async def test_a_session_opened_on_one_replica_works_on_another(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    async with (
        serving(Gateway(settings, upstream=emulator_upstream())) as first,
        serving(Gateway(settings, upstream=emulator_upstream())) as second,
    ):
        signed = Browser(first.http)
        await signed.sign_in(ADMIN_KEY)
        elsewhere = Browser(second.http, dict(signed.cookies))
        assert (await elsewhere.get("/ui/panels/tags")).status_code == 200


async def test_a_team_lead_sees_its_team_and_is_refused_another(gw: InProcessGateway) -> None:
    for team in ("search", "payments"):
        await _call(gw, await gw.create_key(user_id=f"u-{team}", team=team), team)
    lead = await _token(gw, role="team-lead", teams=["search"], name="lead")
    browser = Browser(gw.http)
    await browser.sign_in(lead["token"])
    own = await browser.get("/ui/panels/burn-rate?group_by=team")
    assert own.status_code == 200
    assert "search" in own.text and "payments" not in own.text
    other = await browser.get("/ui/panels/burn-rate?team=payments")
    assert other.status_code == 403 and "payments" in other.text
    people = await browser.get("/ui/panels/latency?group_by=user_id")
    assert people.status_code == 403


async def test_the_csv_is_the_apis_table(gw: InProcessGateway) -> None:
    for team in ("search", "payments", "search"):
        await _call(gw, await gw.create_key(user_id=f"u-{team}", team=team), team)
    browser = Browser(gw.http)
    await browser.sign_in(ADMIN_KEY)
    query = "group_by=team&since=1h"
    response = await browser.get(f"/ui/panels/burn-rate/csv?{query}")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    api = (await gw.http.get(f"/api/analytics/burn-rate?{query}", headers=gw.admin)).json()
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == [c["title"] for c in api["columns"]]
    by_label = {row[0]: row for row in table[1:-1]}
    for row in api["rows"]:
        assert float(by_label[row["label"]][table[0].index("requests")]) == row["requests"]
    assert sum(float(r[table[0].index("requests")]) for r in table[1:-1]) == 3


async def test_a_bad_filter_is_a_400_page_naming_it(gw: InProcessGateway) -> None:
    browser = Browser(gw.http)
    await browser.sign_in(ADMIN_KEY)
    response = await browser.get("/ui/panels/burn-rate?since=yesterdayish")
    assert response.status_code == 400 and "since" in response.text
    unknown = await browser.get("/ui/panels/no-such-panel")
    assert unknown.status_code == 404 and "no analytics panel" in unknown.text
    tag = await browser.get("/ui/panels/tags?tag=nokeyvalue")
    assert tag.status_code == 400 and "KEY=VALUE" in tag.text


async def test_sign_in_without_the_form_cookie_is_refused_even_with_an_empty_token(
    gw: InProcessGateway,
) -> None:
    browser = Browser(gw.http)  # never loaded the form: no sign-in cookie
    forged = await browser.post_form("/ui/sign-in", {"csrf_token": "", "token": ADMIN_KEY})
    assert forged.status_code == 403 and SESSION_COOKIE not in browser.cookies


async def test_a_member_sees_its_own_usage_only(gw: InProcessGateway) -> None:
    for user in ("alice", "bob"):
        await _call(gw, await gw.create_key(user_id=user, team="search"), "search")
    member = await _token(gw, role="member", user_id="alice", name="alice")
    browser = Browser(gw.http)
    await browser.sign_in(member["token"])
    own = await browser.get("/ui/panels/latency?group_by=user_id")
    assert own.status_code == 200, own.text
    table = own.text.split('data-table="latency"', 1)[1].split("</table>", 1)[0]
    assert "<td>alice</td>" in table and "bob" not in own.text
    other = await browser.get("/ui/panels/latency?user_id=bob")
    assert other.status_code == 403
