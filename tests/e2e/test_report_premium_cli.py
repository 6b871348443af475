"""`sluicegate report premium-review` against a real `sluicegate serve`: frontier traffic
by workflow with its cheaper target and month figures, the actions, and the documents
that make the move printed ready for `sluicegate apply`; `--json` equal to the API's
answer."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest
import yaml

from sluicegate.db.engine import create_engine_for
from tests.analytics.landing import land
from tests.analytics.premium_traffic import CONFIG, premium_traffic
from tests.e2e.gateway import RunningGateway, run_cli, run_gateway

NOW = time.time()
RECORDS = premium_traffic(300, start=NOW - 2 * 86400, span_s=2 * 86400 - 600)


@pytest.fixture(scope="module")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('premium') / 'sluicegate.db'}"


@pytest.fixture(scope="module")
def gateway(database_url: str) -> Iterator[RunningGateway]:
    with run_gateway(database_url) as running:
        yield running


@pytest.fixture(scope="module")
async def landed(gateway: RunningGateway, database_url: str) -> RunningGateway:
    engine = create_engine_for(database_url)
    try:
        await land(engine, RECORDS)
    finally:
        await engine.dispose()
    gateway.apply(CONFIG)
    return gateway


def report(gateway: RunningGateway, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(gateway, "report", *args)


def test_premium_review_table_actions_and_documents(landed: RunningGateway) -> None:
    shown = report(landed, "premium-review")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("Premium-model review queue (activity): Which workflows")
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in lines if "│" in line]
    review = [r for r in rows if r[:2] == ["review", "claude-opus-4-7"]]
    assert review and "claude-sonnet-4-6" in review[0]
    expected = sum(
        1 for r in RECORDS if r.workflow_tag == "review" and r.model == "claude-opus-4-7"
    )
    assert review[0][2] == f"{expected:,}"
    assert "Actions" in lines
    moves = [line for line in lines if line.startswith("1. review workflow_tag ")]
    assert moves and "sluicegate apply -f premium-review.yaml --what-if 7d" in shown.stdout
    # the changes breakdown's documents follow its table, each ready to apply
    assert "# code-review" in lines
    start = lines.index("# code-review") + 1
    end = next(i for i in range(start, len(lines)) if not lines[i] or lines[i].startswith("#"))
    document = yaml.safe_load("\n".join(lines[start:end]))
    assert document["type"] == "gateway-load-balancing-config"
    assert document["routes"][-1]["id"] == "default"


def test_premium_review_json_is_the_apis_answer(landed: RunningGateway) -> None:
    shown = report(landed, "premium-review", "-g", "team", "--json")
    assert shown.returncode == 0, shown.stderr
    answer = json.loads(shown.stdout)
    api = landed.admin.get("/api/analytics/premium-review", params={"group_by": "team"})
    assert api.status_code == 200
    assert answer["rows"] == api.json()["rows"] and answer["group_by"] == ["team"]
    refused = report(landed, "premium-review", "-g", "model")
    assert refused.returncode == 1 and "group_by: premium-review already splits" in refused.stderr
