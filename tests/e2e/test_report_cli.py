"""`sluicegate report` against a real `sluicegate serve`: the panels listed, a panel as a
table with its actions, `--json` equal to the API's answer, and failures as one line and
an exit code."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from sluicegate.analytics.window import DAY, HOUR, iso
from sluicegate.db.engine import create_engine_for
from tests.analytics.landing import land
from tests.analytics.traffic import traffic
from tests.e2e.gateway import RunningGateway, run_cli, run_gateway

NOW = time.time()
SINCE, UNTIL = iso(NOW - 4 * DAY), iso(NOW + HOUR)
ANALYTICS = "name: analytics\ntype: gateway-analytics-config\nrollup_metadata_keys: [customer_id]\n"


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('report') / 'sluicegate.db'}"


@pytest.fixture(scope="module")
def reporting(database_url: str) -> Iterator[RunningGateway]:
    with run_gateway(database_url) as gateway:
        gateway.apply(ANALYTICS)
        yield gateway


@pytest.fixture(scope="module")
async def landed(reporting: RunningGateway, database_url: str) -> int:
    """Ledger rows written into the running gateway's database, with their rollups."""
    engine = create_engine_for(database_url)
    records = traffic(400, start=NOW - 3 * DAY, span_s=2 * DAY, slow="azure")
    try:
        await land(engine, records, ("customer_id",))
    finally:
        await engine.dispose()
    return len(records)


def report(gateway: RunningGateway, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(gateway, "report", *args)


def test_report_lists_the_panels(reporting: RunningGateway) -> None:
    listed = report(reporting)
    assert listed.returncode == 0, listed.stderr
    assert "latency" in listed.stdout and "tags" in listed.stdout and "activity" in listed.stdout


def test_report_prints_a_panel_and_its_actions(reporting: RunningGateway, landed: int) -> None:
    shown = report(reporting, "latency", "--since", "7d", "--group-by", "provider")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("Latency and errors (control): Which models")
    assert "from rollup_cuboids:status" in lines[1]
    assert any(line.split("│")[1].strip() == "azure" for line in lines if "│" in line)
    total = [line for line in lines if "│" in line and line.split("│")[1].strip() == "total"]
    assert total and total[0].split("│")[2].strip() == f"{landed:,}"
    assert "Actions" in lines
    slow = [line for line in lines if line.startswith("1. provider azure p99 latency")]
    assert slow and slow[0].endswith("[route: azure; gateway-load-balancing-config]")


def test_report_json_is_the_apis_answer(reporting: RunningGateway, landed: int) -> None:
    args = ("--since", SINCE, "--until", UNTIL, "-g", "metadata.customer_id", "-n", "3")
    shown = report(reporting, "tags", *args, "--filter", "team=search", "--json")
    assert shown.returncode == 0, shown.stderr
    answer = json.loads(shown.stdout)
    params = {
        "since": SINCE,
        "until": UNTIL,
        "group_by": "metadata.customer_id",
        "limit": "3",
        "team": "search",
    }
    api = reporting.admin.get("/api/analytics/tags", params=params)
    assert api.status_code == 200 and answer == api.json()
    assert answer["source"] == "rollup_metadata" and answer["filters"] == {"team": "search"}
    assert [row["kind"] for row in answer["rows"]] == ["group"] * 3 + ["other", "no_value"]
    table = report(reporting, "tags", *args)
    assert table.returncode == 0 and "(no value)" in table.stdout and "other" in table.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("nope",), "error: no analytics panel 'nope'; panels: latency, tags"),
        (("tags", "--group-by", "colour"), "error: group_by: unknown dimension 'colour'"),
        (("tags", "--filter", "team"), "error: --filter 'team' is not KEY=VALUE"),
        (("tags", "-f", "team=a", "-f", "team=b"), "error: --filter team is given twice"),
    ],
)
def test_report_failures_are_one_line_and_exit_1(
    reporting: RunningGateway, args: tuple[str, ...], says: str
) -> None:
    failed = report(reporting, *args)
    assert failed.returncode == 1
    assert failed.stderr.startswith(says), failed.stderr
