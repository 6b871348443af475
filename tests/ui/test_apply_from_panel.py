"""Review and apply a config change from the premium-review panel's action queue, over
HTTP in process: the panel links the review by its row (never the document), the review
shows the proposal, its diff against the live config and a 7-day what-if; the apply lands
a new version through `POST /api/config`'s own path (and routes the next request there);
a forged CSRF token, a role that may not apply, and a stale proposal are refused."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from sluicegate.server.app import Gateway
from tests.db.databases import SQL_BACKENDS, Databases
from tests.server.conftest import settings_for
from tests.server.inprocess import ADMIN_KEY, InProcessGateway, emulator_upstream, serving
from tests.ui.browserless import Browser, csrf_of

FRONTIER, CHEAPER = "claude-opus-4-7", "claude-sonnet-4-6"
REVIEW_CALLS = 4
PANEL_QUERY = "since=1h"
HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')
LIMITS = """
name: limits
type: gateway-rate-limit-config
rules:
  - id: per-user
    limit: {requests: 100, window: 1m, scope: user}
"""
WHAT_IF = re.compile(r'hx-get="(/ui/panels/premium-review/apply/what-if\?[^"]+)"')
LINK = re.compile(r'<a href="([^"]+)" data-proposal="review\|' + FRONTIER + '">')


async def send(gw: InProcessGateway, key: str, workflow: str) -> Any:
    response = await gw.http.post(
        "/v1/chat/completions",
        json={"model": FRONTIER, "messages": [{"role": "user", "content": "review this diff"}]},
        headers={"authorization": f"Bearer {key}", "x-sluice-workflow-tag": workflow},
    )
    assert response.status_code == 200, response.text
    return response


async def reviewed_traffic(gw: InProcessGateway) -> str:
    key = await gw.create_key(user_id="dev", team="search")
    for _ in range(REVIEW_CALLS):
        await send(gw, key, "review")
    return key


@pytest.fixture
async def premium(tmp_path: Path) -> AsyncIterator[tuple[InProcessGateway, str]]:
    async with serving(Gateway(settings_for(tmp_path), upstream=emulator_upstream())) as gw:
        yield gw, await reviewed_traffic(gw)


async def token(gw: InProcessGateway, **fields: Any) -> str:
    response = await gw.http.post("/api/tokens", json=fields, headers=gw.admin)
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


async def signed_in(gw: InProcessGateway, credential: str = ADMIN_KEY) -> Browser:
    browser = Browser(gw.http)
    await browser.sign_in(credential)
    return browser


async def review_url(browser: Browser) -> str:
    panel = await browser.get(f"/ui/panels/premium-review?{PANEL_QUERY}")
    assert panel.status_code == 200, panel.text
    found = LINK.search(panel.text)
    assert found, "the panel links no review for the review workflow"
    return html.unescape(found.group(1))


def form_of(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in HIDDEN.findall(page)}


async def api_config(gw: InProcessGateway) -> dict[str, Any]:
    response = await gw.http.get("/api/config", headers=gw.admin)
    assert response.status_code == 200
    return dict(response.json())


async def api_row(gw: InProcessGateway) -> dict[str, Any]:
    response = await gw.http.get(f"/api/analytics/premium-review?{PANEL_QUERY}", headers=gw.admin)
    (row,) = [r for r in response.json()["rows"] if r["label"] == "review"]
    return dict(row)


async def test_the_review_shows_the_proposal_its_diff_and_a_what_if(
    premium: tuple[InProcessGateway, str],
) -> None:
    gw, _ = premium
    browser = await signed_in(gw)
    url = await review_url(browser)
    assert parse_qs(urlsplit(url).query) == {
        "q": [PANEL_QUERY],
        "group": ["review"],
        "served": [FRONTIER],
    }  # the row's names and the panel's query; the document is not in the URL
    page = await browser.get(url)
    assert page.status_code == 200, page.text
    text = html.unescape(page.text)
    row = await api_row(gw)
    assert row["yaml"] in text  # the API's document, recomputed server-side
    assert f"gateway-load-balancing-config/{FRONTIER}: new document" in text
    assert "--- /dev/null" in text and "+type: gateway-load-balancing-config" in text
    # the what-if is loaded after the page (htmx), from the same row names
    loaded = WHAT_IF.search(page.text)
    assert loaded and 'data-table="what-if-routes"' not in text
    fragment = await browser.get(html.unescape(loaded.group(1)))
    assert fragment.status_code == 200, fragment.text
    what_if = re.search(r'data-table="what-if-routes">.*?</table>', fragment.text, re.S)
    assert what_if, fragment.text
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", what_if.group(0))
    assert cells[:2] == [FRONTIER, str(REVIEW_CALLS)]  # every reviewed request replayed
    assert float(cells[4]) < 0  # cheaper on the target
    fields = form_of(page.text)
    assert fields["live_version"] == str((await api_config(gw))["version"])
    assert fields["csrf_token"] and fields["digest"]


@pytest.mark.parametrize("backend", SQL_BACKENDS)
async def test_an_apply_lands_a_new_version_and_routes_the_workflow(
    backend: str, databases: Databases, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path, database_url=databases.url(backend))
    async with serving(Gateway(settings, upstream=emulator_upstream())) as gw:
        key = await reviewed_traffic(gw)
        before = (await gw.apply(LIMITS))["version"]  # a version to diff against
        browser = await signed_in(gw)
        page = await browser.get(await review_url(browser))
        applied = await browser.post_form("/ui/panels/premium-review/apply", form_of(page.text))
        assert applied.status_code == 200, applied.text
        config = await api_config(gw)
        assert config["version"] == before + 1 and config["live_version"] == before + 1
        assert f"Applied: version {before + 1}" in applied.text
        assert f'href="/ui/config/diff?from={before}&amp;to={before + 1}"' in applied.text
        (document,) = [d for d in config["documents"] if d["name"] == FRONTIER]
        assert document["type"] == "gateway-load-balancing-config"
        assert config["applied_by"] == "admin (web UI)"
        assert config["comment"] == f"premium-review: review off {FRONTIER} (web UI)"
        # the change is live: the reviewed workflow goes to the cheaper model, others not
        moved = await send(gw, key, "review")
        assert moved.headers["x-sluice-resolved-model"] == f"anthropic/{CHEAPER}"
        kept = await send(gw, key, "classify")
        assert kept.headers["x-sluice-resolved-model"] == f"anthropic/{FRONTIER}"


async def test_a_forged_csrf_token_is_refused(premium: tuple[InProcessGateway, str]) -> None:
    gw, _ = premium
    browser = await signed_in(gw)
    page = await browser.get(await review_url(browser))
    before = (await api_config(gw))["version"]
    forged = {**form_of(page.text), "csrf_token": "0" * 64}
    refused = await browser.post_form("/ui/panels/premium-review/apply", forged)
    assert refused.status_code == 403 and "CSRF" in refused.text
    assert (await api_config(gw))["version"] == before


async def test_roles_that_may_not_apply_see_it_read_only_and_get_403(
    premium: tuple[InProcessGateway, str],
) -> None:
    gw, _ = premium
    admin = await signed_in(gw)
    fields = form_of((await admin.get(await review_url(admin))).text)
    before = (await api_config(gw))["version"]

    finance = await signed_in(gw, await token(gw, role="finance", name="fin"))
    url = await review_url(finance)
    page = await finance.get(url)
    assert page.status_code == 200
    assert "new document" in page.text  # a config reader sees the diff
    assert "may not run a what-if" in page.text and 'name="digest"' not in page.text
    assert 'data-testid="read-only"' in page.text
    what_if = await finance.get(url.replace("/apply?", "/apply/what-if?"))
    assert what_if.status_code == 403 and "finance role may not" in what_if.text
    posted = await finance.post_form(
        "/ui/panels/premium-review/apply", {**fields, "csrf_token": csrf_of(page.text)}
    )
    assert posted.status_code == 403 and "finance role may not POST" in posted.text

    lead = await signed_in(gw, await token(gw, role="team-lead", teams=["search"], name="l"))
    page = await lead.get(await review_url(lead))
    assert page.status_code == 200 and f"name: {FRONTIER}" in page.text  # the proposal
    assert "may not read the live config" in page.text and "/dev/null" not in page.text
    posted = await lead.post_form(
        "/ui/panels/premium-review/apply", {**fields, "csrf_token": csrf_of(page.text)}
    )
    assert posted.status_code == 403
    assert (await api_config(gw))["version"] == before


async def test_a_stale_proposal_is_refused_not_applied(
    premium: tuple[InProcessGateway, str],
) -> None:
    gw, _ = premium
    browser = await signed_in(gw)
    url = await review_url(browser)
    fields = form_of((await browser.get(url)).text)
    # the document it writes, changed by someone else since the page was shown
    theirs = await gw.apply(
        f"name: {FRONTIER}\ntype: gateway-load-balancing-config\nrules:\n"
        f"  - target: {{provider: anthropic, model: {FRONTIER}}}\n"
    )
    refused = await browser.post_form("/ui/panels/premium-review/apply", fields)
    assert refused.status_code == 409, refused.text
    assert "review it again" in refused.text and "nothing was applied" in refused.text
    assert (await api_config(gw))["version"] == theirs["version"]
    # reviewed again, against their document; another document changing before the
    # apply does not make it stale
    again = form_of((await browser.get(url)).text)
    assert again["live_version"] == str(theirs["version"]) and again != fields
    other = await gw.apply(LIMITS)
    applied = await browser.post_form("/ui/panels/premium-review/apply", again)
    assert applied.status_code == 200, applied.text
    config = await api_config(gw)
    assert config["version"] == other["version"] + 1
    assert {d["name"] for d in config["documents"]} == {FRONTIER, "limits"}


async def test_a_row_the_panel_does_not_propose_is_not_found(
    premium: tuple[InProcessGateway, str],
) -> None:
    gw, _ = premium
    browser = await signed_in(gw)
    missing = await browser.get(
        f"/ui/panels/premium-review/apply?q={PANEL_QUERY}&group=nope&served={FRONTIER}"
    )
    assert missing.status_code == 404 and "proposes no config change" in missing.text
    bare = await browser.get("/ui/panels/premium-review/apply?q=since%3D1h")
    assert bare.status_code == 400 and "group" in bare.text
    other = await browser.get("/ui/panels/burn-rate/apply?group=a&served=b")
    assert other.status_code == 404


async def test_a_what_if_past_its_deadline_is_said_and_the_review_still_applies(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path, what_if_deadline_s=1e-9)  # no replay can finish
    async with serving(Gateway(settings, upstream=emulator_upstream())) as gw:
        await reviewed_traffic(gw)
        browser = await signed_in(gw)
        page = await browser.get(await review_url(browser))
        loaded = WHAT_IF.search(page.text)
        assert loaded
        fragment = await browser.get(html.unescape(loaded.group(1)))
        assert fragment.status_code == 200  # htmx swaps in only a 2xx answer
        assert "No what-if: 503 what_if_deadline" in fragment.text
        applied = await browser.post_form("/ui/panels/premium-review/apply", form_of(page.text))
        assert applied.status_code == 200 and "Applied: version 1" in applied.text
