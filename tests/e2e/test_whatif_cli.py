"""`sluicegate apply -f FILE --what-if WINDOW` end to end: traffic through a real `serve`
(SQLite, the mounted emulator), then the CLI replays it under a proposed limit and prints
what it would have refused, as a table and as JSON, applying nothing."""

from __future__ import annotations

import json

import pytest

from tests.e2e.gateway import run_gateway
from tests.e2e.policy_support import chat, cli, rows_for

FIVE_AN_HOUR = """
name: team-limits
type: gateway-rate-limit-config
rules:
  - id: five-an-hour
    limit: {requests: 5, window: 1h, scope: team}
"""


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    db = tmp_path_factory.mktemp("whatif") / "sluicegate.db"
    with run_gateway(f"sqlite:///{db}") as running:
        key = running.create_key(name="search-bot", team="search", user_id="bot")["key"]
        answers = [chat(running, key) for _ in range(8)]
        assert all(answer.status_code == 200 for answer in answers)
        rows_for(running, answers)  # landed in the ledger
        yield running


def test_what_if_prints_what_a_proposed_limit_would_have_refused(gw, tmp_path):
    proposal = tmp_path / "limits.yaml"
    proposal.write_text(FIVE_AN_HOUR)

    table = cli(gw, "apply", "-f", str(proposal), "--what-if", "1h")
    assert table.returncode == 0, table.stderr
    out = table.stdout
    assert "8 requests replayed (8 read)" in out
    assert "  created   gateway-rate-limit-config/team-limits" in out
    assert "rule five-an-hour would have refused 3 requests of team=search" in out
    row = next(line for line in out.splitlines() if "five-an-hour (rate limit)" in line)
    assert "0 -> 3 (+3)" in row and "#6, team=search" in row
    assert out.splitlines()[-1] == "what-if: nothing applied"

    as_json = cli(gw, "apply", "-f", str(proposal), "--what-if", "1h", "--json")
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    (limit,) = report["rules"]
    assert limit["proposed"]["refused"]["requests"] == 3
    assert limit["difference"]["refused"] == 3
    assert report["rows_replayed"] == 8

    assert gw.admin.get("/api/config").json()["version"] == 0  # nothing applied


def test_what_if_refuses_an_invalid_proposal_as_apply_does(gw, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(FIVE_AN_HOUR.replace("window: 1h", "window: fortnightly"))
    result = cli(gw, "apply", "-f", str(bad), "--what-if", "7d")
    assert result.returncode == 1
    assert result.stderr.startswith("error: config refused (1 problem); nothing applied")
    assert "rules[0].limit.window" in result.stderr


def test_what_if_options_and_bad_windows(gw, tmp_path):
    proposal = tmp_path / "limits.yaml"
    proposal.write_text(FIVE_AN_HOUR)
    lone = cli(gw, "apply", "-f", str(proposal), "--json")
    assert lone.returncode == 2 and "--json and --until go with --what-if" in lone.stderr
    too_long = cli(gw, "apply", "-f", str(proposal), "--what-if", "60d")
    assert too_long.returncode == 1
    assert "longer than the 31 days a what-if replays" in too_long.stderr
