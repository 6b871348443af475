"""`sluicegate report outcomes` and `report leverage` against a real `sluicegate serve`:
the table with its untraced workflow and the action naming the join to instrument,
`--json` equal to the API's answer, and the sessions behind a row listed over HTTP."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from sluicegate.analytics.window import DAY, HOUR, iso
from sluicegate.db.engine import create_engine_for
from tests.analytics.session_traffic import land_sessions, session_traffic
from tests.e2e.gateway import RunningGateway, run_cli, run_gateway

NOW = time.time()
SINCE, UNTIL = iso(NOW - 3 * DAY), iso(NOW + HOUR)


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('sessions') / 'sluicegate.db'}"


@pytest.fixture(scope="module")
def serving(database_url: str) -> RunningGateway:
    with run_gateway(database_url) as gateway:
        yield gateway


@pytest.fixture(scope="module")
async def landed(serving: RunningGateway, database_url: str) -> RunningGateway:
    """Sessions and their outcomes written into the running gateway's database."""
    engine = create_engine_for(database_url)
    week = session_traffic(200, start=NOW - 10 * DAY, span_s=6 * DAY, seed=31, prefix="w")
    now = session_traffic(120, start=NOW - 2 * DAY, span_s=DAY, seed=32, prefix="n")
    try:
        await land_sessions(engine, week, now)
    finally:
        await engine.dispose()
    return serving


def report(gateway: RunningGateway, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(gateway, "report", *args)


def test_report_outcomes_shows_the_untraced_workflow_and_its_action(
    landed: RunningGateway,
) -> None:
    shown = report(landed, "outcomes", "--since", SINCE, "--until", UNTIL)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("Outcome join (outcome): What does each workflow")
    assert "from rollup_session_groups" in lines[1]
    cells = {line.split("│")[1].strip(): line for line in lines if "│" in line}
    assert {"review", "triage", "sandbox", "(no value)", "total"} <= set(cells)
    api = landed.admin.get("/api/analytics/outcomes", params={"since": SINCE, "until": UNTIL})
    sandbox = next(r for r in api.json()["rows"] if r["label"] == "sandbox")
    assert cells["sandbox"].split("│")[2].strip() == f"{sandbox['sessions']:,}"
    text = " ".join(shown.stdout.split())  # an action's line wraps at the terminal's width
    action = text[text.index("2. instrument the outcome join for workflow sandbox") :]
    assert action.index("[config: outcome join: workflow sandbox; trailer Sluice-Session]") > 0


def test_report_leverage_json_is_the_api_answer_and_its_sessions_are_listed(
    landed: RunningGateway,
) -> None:
    shown = report(landed, "leverage", "--since", SINCE, "--until", UNTIL, "--json")
    assert shown.returncode == 0, shown.stderr
    answer = json.loads(shown.stdout)
    api = landed.admin.get("/api/analytics/leverage", params={"since": SINCE, "until": UNTIL})
    assert api.status_code == 200 and answer == api.json()
    triage = next(r for r in answer["rows"] if r["label"] == "triage")
    listed = landed.admin.get(
        "/api/analytics/leverage/sessions",
        params={"since": SINCE, "until": UNTIL, "workflow_tag": "triage", "limit": "1000"},
    ).json()
    assert listed["sessions"] == triage["sessions"] == len(listed["data"])
    assert listed["next_cursor"] is None
    assert all("user_id" not in item["session"] for item in listed["data"])
    refused = report(landed, "leverage", "--group-by", "team")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: group_by: the leverage panel groups sessions by")


def test_report_sessions_lists_the_sessions_behind_a_row_a_page_at_a_time(
    landed: RunningGateway,
) -> None:
    window = ("--since", SINCE, "--until", UNTIL)
    params = {"since": SINCE, "until": UNTIL, "workflow_tag": "triage", "limit": "1000"}
    listed = landed.admin.get("/api/analytics/leverage/sessions", params=params).json()
    ids = [item["session"]["session_id"] for item in listed["data"]]
    assert len(ids) > 3

    every = report(landed, "leverage", "--sessions", *window, "-f", "workflow_tag=triage")
    assert every.returncode == 0, every.stderr
    assert every.stdout.startswith(f"{len(ids):,} sessions behind leverage")
    assert all(session in every.stdout for session in ids) and "score" in every.stdout
    assert "more: --cursor" not in every.stdout

    pages, cursor = [], None
    while True:  # two at a time, by the printed cursor, gives every session once
        args = ("--sessions", *window, "-f", "workflow_tag=triage", "-n", "2", "--json")
        shown = report(landed, "leverage", *args, *(("--cursor", cursor) if cursor else ()))
        assert shown.returncode == 0, shown.stderr
        page = json.loads(shown.stdout)
        pages.append([item["session"]["session_id"] for item in page["data"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [s for page in pages for s in page] == ids and max(map(len, pages)) == 2

    untraced = report(landed, "outcomes", "--sessions", *window, "--untraced", "--json")
    assert untraced.returncode == 0, untraced.stderr
    none = json.loads(untraced.stdout)["data"]
    assert none and all(item["outcomes"] == 0 for item in none)
    table = report(landed, "outcomes", "--sessions", *window, "--untraced", "-n", "5")
    assert table.returncode == 0 and none[0]["session_id"] in table.stdout
