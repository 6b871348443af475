"""`sluicegate outcomes add|list` against a real `serve` on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from sluicegate.cli.main import app as cli
from tests.e2e.gateway import ADMIN_KEY, RunningGateway, run_gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    database = tmp_path_factory.mktemp("cli") / "sluicegate.db"
    with run_gateway(f"sqlite:///{database}") as running:
        yield running


def test_add_then_list(gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLUICEGATE_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("SLUICEGATE_URL", gateway.url)
    run = CliRunner().invoke
    args = ["outcomes", "add", "--kind", "eval_run", "--session", "s-ci-1"]
    added = run(
        cli,
        [*args, "--external-id", "run-12", "--pass-rate", "0.93", "--extra", '{"suite": "smoke"}'],
    )
    assert added.exit_code == 0, added.output
    assert "eval_run of session s-ci-1 (external id run-12" in added.output
    again = run(cli, [*args, "--external-id", "run-12", "--pass-rate", "0.5"])
    assert again.exit_code == 0, again.output
    assert added.output.split(":")[0] == again.output.split(":")[0]  # the same outcome id

    listed = run(cli, ["outcomes", "list", "--session", "s-ci-1"])
    assert listed.exit_code == 0, listed.output
    assert "run-12" in listed.output and "0.93" in listed.output

    refused = run(cli, [*args, "--external-id", "run-13"])  # an eval run needs its pass rate
    assert refused.exit_code == 1
    assert refused.output.strip() == "error: an eval_run needs pass_rate (0 to 1)"
    bad = run(cli, [*args, "--external-id", "run-14", "--pass-rate", "1", "--extra", "{"])
    assert (bad.exit_code, bad.output.strip()) == (1, "error: --extra is not JSON")
