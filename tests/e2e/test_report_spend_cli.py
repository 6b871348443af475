"""`sluicegate report burn-rate` and `report adoption` against a real `sluicegate serve`:
the rows as a table with the UNTAGGED row first and the rules beside each row, the budget
breakdown as its own table, the actions; `--json` equal to the API's answer."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest

from sluicegate.analytics.panels.projection import month_bounds
from sluicegate.analytics.window import DAY, iso
from sluicegate.db.engine import create_engine_for
from sluicegate.model.record import LedgerRecord
from tests.analytics.landing import land
from tests.e2e.gateway import RunningGateway, run_cli, run_gateway

NOW = time.time()
START = max(month_bounds(NOW)[0], NOW - 3600)
BUDGETS = """
name: budgets
type: gateway-budget-config
budgets:
  - {id: alpha-monthly, scope: {metadata: {project: [alpha]}}, ceiling_usd: 1, window: monthly}
---
name: limits
type: gateway-rate-limit-config
rules:
  - id: per-user
    limit: {requests: 100, window: 1m, scope: user}
"""
RECORDS = [
    LedgerRecord(
        request_id=f"cli-{i}",
        ts=START + (NOW - START) * i / 30,
        user_id=f"u{i % 6}",
        team="search",
        project=("alpha", None)[i % 2],
        client_tool=("cursor", "claude-code", None)[i % 3],
        status_code=200,
        input_tokens=100,
        output_tokens=10,
        cost_usd=0.1,
        attempt_count=1,
    )
    for i in range(30)
]


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('spend') / 'sluicegate.db'}"


@pytest.fixture(scope="module")
def reporting(database_url: str) -> Iterator[RunningGateway]:
    with run_gateway(database_url) as gateway:
        yield gateway


@pytest.fixture(scope="module")
async def landed(reporting: RunningGateway, database_url: str) -> RunningGateway:
    engine = create_engine_for(database_url)
    try:
        await land(engine, RECORDS)
    finally:
        await engine.dispose()
    reporting.apply(BUDGETS)  # the gateway seeds the new budget from the ledger
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = reporting.admin.get("/api/budgets").json()["data"]
        if rows and rows[0]["spent_usd"] > 0:
            return reporting
        time.sleep(0.1)
    raise AssertionError(f"the budget was not seeded from the ledger: {rows}")


def report(gateway: RunningGateway, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(gateway, "report", *args)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.split("│")[1:-1]]


def test_burn_rate_table_with_rules_beside_rows_and_budget_table(landed: RunningGateway) -> None:
    shown = report(landed, "burn-rate")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("Burn rate (activity): Where does the money go")
    rows = [_cells(line) for line in lines if "│" in line]
    labels = [row[0] for row in rows]
    assert labels.index("UNTAGGED") < labels.index("alpha")  # untagged first
    alpha = rows[labels.index("alpha")]
    assert alpha[1] == "15" and alpha[3] == "1.5000"  # requests, cost $
    assert "alpha-monthly $1.00/monthly" in alpha[-1] and "OVER" in alpha[-1]
    assert "per-user 100 requests/1m per user" in alpha[-1]
    assert "budgets beside these rows" in shown.stdout
    budget = [row for row in rows if row[0] == "alpha-monthly"]
    assert budget and budget[0][1] == "monthly" and budget[0][-1] == "true"
    actions = [line for line in lines if line[:3] in ("1. ", "2. ", "3. ")]
    assert any("is UNTAGGED" in line and "X-Sluice-Project" in line for line in actions)
    assert any(line.startswith(("1. budget alpha-monthly", "2. budget alpha-monthly"))
               for line in actions)  # fmt: skip


def test_adoption_json_is_the_apis_answer(landed: RunningGateway) -> None:
    # One window for both calls: a default one ends "now", which moves between them.
    window = {"since": iso(time.time() - 7 * DAY), "until": iso(time.time() + 3600)}
    args = ("--since", window["since"], "--until", window["until"])
    shown = report(landed, "adoption", "--group-by", "team,client_tool", *args, "--json")
    assert shown.returncode == 0, shown.stderr
    answer = json.loads(shown.stdout)
    params = {"group_by": "team,client_tool", **window}
    api = landed.admin.get("/api/analytics/adoption", params=params)
    assert api.status_code == 200 and answer == api.json()
    rows = {(r["group"]["team"], r["group"]["client_tool"]): r for r in answer["rows"]}
    assert rows[("search", "cursor")]["active_users"] == 2  # every sixth request: u0, u3
    table = report(landed, "adoption")
    assert table.returncode == 0 and "each tool across the teams" in table.stdout
    refused = report(landed, "adoption", "--group-by", "model")
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: group_by: the adoption panel groups by")
