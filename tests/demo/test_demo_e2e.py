"""`sluicegate demo` against a real `serve --emulator` (SQLite and PostgreSQL): a short
bounded run with a week of backfill, then every panel read through the API has something
true to show."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from sluicegate.analytics.window import DAY, HOUR, iso
from sluicegate.demo.plan import plan
from tests.e2e.gateway import ADMIN_KEY, RunningGateway, run_gateway
from tests.support import fresh_postgres_database

SEED, REQUESTS = 11, 160
GITHUB_SECRET = "demo-github-secret-0123456789"
LIVE = {"since": "1h"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('demo-db') / 'sluicegate.db'}"
    else:
        with fresh_postgres_database() as url:
            yield url


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Any:
    folder = tmp_path_factory.mktemp("demo")
    env = {"SLUICEGATE_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET}
    with run_gateway(database_url, env=env) as gateway:
        bounded = f"--seed {SEED} --requests {REQUESTS} --duration 40 --concurrency 8"
        history = f"--backfill-days 8 --backfill-requests-per-day 120 --database-url {database_url}"
        ran = subprocess.run(
            [sys.executable, "-m", "sluicegate.cli.main", "demo", "--url", gateway.url,
             *bounded.split(), *history.split(), "--no-progress",
             "--keys-file", str(folder / "keys.json")],
            env={**os.environ, "SLUICEGATE_ADMIN_KEY": ADMIN_KEY, **env},
            capture_output=True,
            text=True,
            timeout=90,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        yield gateway, ran.stderr, folder


def panel(gateway: RunningGateway, name: str, **params: str) -> dict[str, Any]:
    response = gateway.admin.get(f"/api/analytics/{name}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_run_reports_what_it_did(demo: Any) -> None:
    _, output, folder = demo
    assert "traffic done:" in output and "backfill: 960 requests over 8 past days" in output
    assert (folder / "keys.json").stat().st_mode & 0o077 == 0  # the users' keys: 0600


def test_adoption_shows_the_tools_by_their_user_agents(demo: Any) -> None:
    gateway, _, _ = demo
    rows = panel(gateway, "adoption", **LIVE)["rows"]
    active = {r["group"]["client_tool"] for r in rows if r["requests"]}
    assert active >= {"claude-code", "cursor", "codex", "openai-python"}


def test_burn_rate_leads_with_untagged_spend_and_shows_budgets(demo: Any) -> None:
    gateway, _, _ = demo
    answer = panel(gateway, "burn-rate", since="7d")
    rows = answer["rows"]
    assert rows[0]["label"] == "UNTAGGED" and rows[0]["cost_usd"] > 0
    search = next(r for r in rows if r["label"] == "platform-search")
    assert any(c["id"] == "platform-search-monthly" for c in search["controls"])


def test_premium_review_queues_the_frontier_workflow(demo: Any) -> None:
    gateway, _, _ = demo
    rows = panel(gateway, "premium-review", **LIVE)["rows"]
    assert [r["label"] for r in rows][0] == "code-review"


def test_latency_shows_errors_and_rate_limit_refusals(demo: Any) -> None:
    gateway, _, _ = demo
    rows = gateway.requests(since="1h")
    statuses = {r["status_code"] for r in rows}
    assert {200, 429, 502} <= statuses
    latency = panel(gateway, "latency", **LIVE)["rows"]
    assert latency and sum(r["requests"] for r in latency) == len(rows)


def test_the_looping_session_is_stopped_by_its_rate_limit(demo: Any) -> None:
    gateway, _, _ = demo
    loop = gateway.requests(session_id=f"demo-{SEED}-loop")
    answered = [r for r in loop if r["status_code"] == 200]
    refused = [r for r in loop if r["status_code"] == 429]
    assert len(answered) == 25 and refused
    assert {r["workflow_tag"] for r in loop} == {"refactor-agent"}
    listed = gateway.admin.get(
        "/api/analytics/leverage/sessions",
        params={**LIVE, "workflow_tag": "refactor-agent", "limit": "100"},
    ).json()["data"]
    flagged = {item["session"]["session_id"] for item in listed if item["loop"]}
    assert flagged == {f"demo-{SEED}-loop"}  # against the backfilled week's baseline


def test_outcomes_join_some_sessions_and_leave_others_untraced(demo: Any) -> None:
    gateway, _, _ = demo
    rows = panel(gateway, "outcomes", **LIVE)["rows"]
    assert sum(r["traced_sessions"] for r in rows) > 0
    assert sum(r["untraced_sessions"] for r in rows) > 0
    listed = gateway.admin.get("/api/outcomes", params={"limit": 500}).json()["data"]
    assert {"api", "github"} <= {o["source"] for o in listed}


def test_leverage_and_tags_have_rows(demo: Any) -> None:
    gateway, _, _ = demo
    leverage = panel(gateway, "leverage", **LIVE)["rows"]
    assert {r["label"] for r in leverage} >= {"code-review", "refactor-agent"}
    tags = panel(gateway, "tags", group_by="metadata.customer_id", **LIVE)["rows"]
    assert {r["label"] for r in tags} >= {"acme", "globex", "initech", "umbrella"}


def test_the_same_seed_sent_the_planned_sessions(demo: Any) -> None:
    gateway, _, _ = demo
    landed = {r["session_id"] for r in gateway.requests(since="1h")}
    assert landed == {s.session_id for s in plan(SEED, REQUESTS).sessions}


def test_the_backfilled_days_are_in_a_seven_day_window(demo: Any) -> None:
    gateway, _, _ = demo
    now = time.time()
    answer = panel(gateway, "burn-rate", since=iso(now - 7 * DAY), until=iso(now + HOUR))
    days = {point["start"][:10] for point in answer["series"] if point["cost_usd"]}
    assert len(days) >= 7
