"""The web UI in a real browser (Debian's chromium, driven by Playwright) against a real
`sluicegate serve --emulator` on loopback, with traffic sent through the gateway: sign in,
a panel's figures equal to the API's, a filter that changes them and lands in the URL, a
team lead kept to its team, a form without its CSRF token refused, sign-out, and a
config change applied from the premium-review action queue.

One browser for the module. Under CI a missing browser or Playwright is a failure."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.gateway import ADMIN_KEY, RunningGateway, run_gateway
from tests.support import IN_CI

CHROMIUM = "/usr/bin/chromium"
TEAMS = {"search": 3, "payments": 2}  # calls sent per team
LIMITS = """
name: limits
type: gateway-rate-limit-config
rules:
  - id: per-user
    limit: {requests: 100, window: 1m, scope: user}
"""

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - the test extra installs it
    if IN_CI:
        raise
    pytest.skip("playwright is not installed (pip install -e '.[test]')", allow_module_level=True)

if not os.path.exists(CHROMIUM):
    message = f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does)"
    if IN_CI:
        pytest.fail(message + "; under CI this is a failure, not a skip", pytrace=False)
    pytest.skip(message, allow_module_level=True)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    db = tmp_path_factory.mktemp("ui") / "sluicegate.db"
    with run_gateway(f"sqlite:///{db}") as running:
        for team, calls in TEAMS.items():
            key = running.create_key(user_id=f"dev-{team}", team=team, name=team)["key"]
            for _ in range(calls):
                response = httpx.post(
                    f"{running.url}/v1/chat/completions",
                    json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                    headers={"authorization": f"Bearer {key}", "x-sluice-project": f"{team}-app"},
                    timeout=30,
                )
                assert response.status_code == 200, response.text
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Screenshots of the pages, as test artifacts (never committed)."""
    return Path(os.environ.get("SLUICEGATE_UI_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))


def _page(browser: Browser, errors: list[str]) -> Page:
    page = browser.new_context().new_page()
    page.set_default_timeout(10_000)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page


def _sign_in(page: Page, gateway: RunningGateway, token: str, path: str) -> None:
    page.goto(f"{gateway.url}{path}")
    assert "/ui/sign-in" in page.url
    page.fill("input[name=token]", token)
    page.click("form.sign-in button")
    page.wait_for_url(f"{gateway.url}{path}")


def _table(page: Page, name: str) -> dict[str, list[str]]:
    """The panel table's body rows by their first cell."""
    rows = page.locator(f"table[data-table='{name}'] tbody tr").all()
    cells = [[c.inner_text().strip() for c in r.locator("td").all()] for r in rows]
    return {row[0]: row[1:] for row in cells}


def _api(gateway: RunningGateway, panel: str, **params: Any) -> dict[str, Any]:
    response = gateway.admin.get(f"/api/analytics/{panel}", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_an_admin_sees_the_gateways_figures_and_filters_them(
    gateway: RunningGateway, browser: Browser, shots: Path
) -> None:
    errors: list[str] = []
    page = _page(browser, errors)
    _sign_in(page, gateway, ADMIN_KEY, "/ui/panels/burn-rate?group_by=team")
    shown = _table(page, "burn-rate")
    api = _api(gateway, "burn-rate", group_by="team")
    assert {row["label"]: str(row["requests"]) for row in api["rows"]} == {
        label: cells[0] for label, cells in shown.items()
    }
    assert shown["search"][0] == "3" and shown["payments"][0] == "2"
    assert page.locator(".uplot canvas").count() >= 1  # the series drawn by uPlot
    assert "sluicegate_session" not in page.evaluate("document.cookie")  # HttpOnly
    page.screenshot(path=str(shots / "burn-rate.png"), full_page=True)

    page.fill("form.filters input[name=team]", "payments")
    page.click("form.filters button")
    page.wait_for_url("**team=payments**")
    page.wait_for_function(
        "!document.querySelector(\"table[data-table='burn-rate']\").innerText.includes('search')"
    )
    assert list(_table(page, "burn-rate")) == ["payments"]
    assert page.locator(".uplot canvas").count() >= 1  # redrawn after the swap
    page.reload()  # the URL alone gives the same view
    assert list(_table(page, "burn-rate")) == ["payments"]
    assert errors == []


def test_a_team_lead_sees_its_team_only(gateway: RunningGateway, browser: Browser) -> None:
    made = gateway.admin.post(
        "/api/tokens", json={"role": "team-lead", "teams": ["search"], "name": "lead-search"}
    )
    assert made.status_code == 201, made.text
    errors: list[str] = []
    page = _page(browser, errors)
    _sign_in(page, gateway, made.json()["token"], "/ui/panels/burn-rate?group_by=team")
    assert list(_table(page, "burn-rate")) == ["search"]
    refused = page.goto(f"{gateway.url}/ui/panels/burn-rate?team=payments")
    assert refused is not None and refused.status == 403
    assert "payments" in page.locator("p.error").inner_text()
    assert errors == [] or all("403" in e for e in errors)


def test_a_form_without_its_csrf_token_is_refused_and_sign_out_ends_the_session(
    gateway: RunningGateway, browser: Browser
) -> None:
    page = _page(browser, [])
    _sign_in(page, gateway, ADMIN_KEY, "/ui/")
    page.evaluate("document.querySelector('header input[name=csrf_token]').value = 'forged'")
    page.click("header form button")
    assert "csrf" in page.locator("p.error").inner_text().lower()
    page.goto(f"{gateway.url}/ui/")  # still signed in
    assert page.locator("[data-testid=who]").inner_text().startswith("admin")
    page.click("header form button")
    page.wait_for_url("**/ui/sign-in")
    page.goto(f"{gateway.url}/ui/panels/latency")
    assert "/ui/sign-in" in page.url


def test_the_overview_checklist_and_a_requests_whole_record(
    gateway: RunningGateway, browser: Browser, shots: Path
) -> None:
    errors: list[str] = []
    page = _page(browser, errors)
    _sign_in(page, gateway, ADMIN_KEY, "/ui/")
    statuses = page.locator("[data-testid=checklist] td[data-status]").all_inner_texts()
    assert len(statuses) == 8 and set(statuses) <= {"green", "amber", "red"}
    page.screenshot(path=str(shots / "overview.png"), full_page=True)
    page.click("nav a[href='/ui/requests']")
    page.wait_for_url("**/ui/requests")
    assert page.locator("tr[data-request]").count() == sum(TEAMS.values())
    record = page.locator("[data-testid=record]").first
    assert not record.locator("ol.attempts").is_visible()
    record.locator("summary").click()
    assert record.locator("ol.attempts li").first.is_visible()
    assert "gpt-4o-mini" in record.locator("ol.attempts").inner_text()
    page.screenshot(path=str(shots / "requests.png"), full_page=True)
    assert errors == []


@pytest.fixture(scope="module")
def premium_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    """A gateway of its own whose `review` workflow runs on a frontier model, so that
    premium-review proposes moving it (the other tests' gateway keeps its figures)."""
    db = tmp_path_factory.mktemp("ui-apply") / "sluicegate.db"
    with run_gateway(f"sqlite:///{db}") as running:
        running.apply(LIMITS)  # a version before the apply, for its diff
        key = running.create_key(user_id="dev-review", team="search", name="review")["key"]
        for _ in range(3):
            response = httpx.post(
                f"{running.url}/v1/chat/completions",
                json={"model": "claude-opus-4-7", "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": f"Bearer {key}", "x-sluice-workflow-tag": "review"},
                timeout=30,
            )
            assert response.status_code == 200, response.text
        yield running


def test_an_apply_from_the_premium_review_queue_lands_a_new_config_version(
    premium_gateway: RunningGateway, browser: Browser, shots: Path
) -> None:
    gateway = premium_gateway
    before = gateway.admin.get("/api/config").json()["version"]
    errors: list[str] = []
    page = _page(browser, errors)
    _sign_in(page, gateway, ADMIN_KEY, "/ui/panels/premium-review")
    page.click("[data-testid=proposals] a[data-proposal='review|claude-opus-4-7']")
    page.wait_for_url(re.compile(r"/ui/panels/premium-review/apply\?q="))
    assert "new document" in page.locator("[data-testid=live-version]").inner_text()
    assert "claude-opus-4-7" in page.locator("table[data-table='what-if-routes']").inner_text()
    page.screenshot(path=str(shots / "review-and-apply.png"), full_page=True)
    page.click("form.apply button")
    page.wait_for_url(re.compile(r"/ui/panels/premium-review/apply$"))
    assert page.locator("h1").inner_text() == f"Applied: version {before + 1}"
    page.click("[data-testid=version-diff]")
    page.wait_for_url(re.compile(rf"/ui/config/diff\?from={before}&to={before + 1}$"))
    assert "+type: gateway-load-balancing-config" in page.locator("[data-testid=diff]").inner_text()
    config = gateway.admin.get("/api/config").json()
    assert config["version"] == before + 1
    assert any(d["name"] == "claude-opus-4-7" for d in config["documents"])
    assert errors == []
