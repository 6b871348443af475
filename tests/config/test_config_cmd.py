from __future__ import annotations

import pytest
import typer
from rich.console import Console
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from typer.testing import CliRunner

from sluicegate.cli import admin_client
from sluicegate.cli.admin_client import problem_lines
from sluicegate.cli.config_cmd import (
    apply_command,
    config_app,
    diff_text,
    history_table,
    result_lines,
    show_text,
)
from sluicegate.config.live import LiveConfig
from sluicegate.server.admin_auth import admin_app
from sluicegate.server.admin_config import config_routes
from tests.config.documents import BOTH, BUDGET, RATE_LIMITS
from tests.support import free_port


@pytest.fixture
def cli() -> typer.Typer:
    """The registration the CLI root does."""
    app = typer.Typer()
    app.command("apply")(apply_command)
    app.add_typer(config_app, name="config")
    return app


@pytest.fixture
def gateway(monkeypatch, service, registry):
    """The admin routes in process; the CLI's client reaches them without a port."""
    live = LiveConfig(service, registry)
    app = admin_app(config_routes(lambda r: service, lambda r: live))
    monkeypatch.setattr(
        admin_client,
        "open_client",
        lambda url: TestClient(app, base_url=url, headers={"x-sluice-actor": "tester"}),
    )
    return live


def run(cli, *args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input)


def test_apply_and_no_change(cli, gateway, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(BOTH)
    result = run(cli, "apply", "-f", str(path), "-m", "first")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "  created   test-rate-limit/team-limits",
        "  created   test-budget/eng-budget",
        "applied: version 1 (was 0)",
    ]
    again = run(cli, "apply", "-f", str(path))
    assert again.exit_code == 0
    assert again.stdout.splitlines()[-1] == (
        "no changes: version 1 is already live; nothing applied"
    )


def test_dry_run_prints_the_diff(cli, gateway, tmp_path, store):
    path = tmp_path / "policy.yaml"
    path.write_text(BOTH)
    run(cli, "apply", "-f", str(path))
    path.write_text(RATE_LIMITS.replace("1m", "1h"))
    result = run(cli, "apply", "--file", str(path), "--dry-run")
    assert result.exit_code == 0
    assert "-    window: 1m\n+    window: 1h\n" in result.stdout
    assert result.stdout.splitlines()[-1] == "dry run: nothing applied"
    assert store._rows[-1].version == 1


def test_validation_errors_one_per_line_exit_1(cli, gateway, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(RATE_LIMITS.replace("1m", "fortnight") + "---\nname: b\ntype: test-budget\n")
    result = run(cli, "apply", "-f", str(path))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: config refused (2 problems); nothing applied",
        "  team-limits (test-rate-limit): rules[0].limit.window: 'fortnight' is not a window; "
        "use 1m, 1h, 1d, ...",
        "  b (test-budget): ceiling_usd: field required",
    ]


def test_several_files_and_stdin(cli, gateway, tmp_path, store):
    rate, budget = tmp_path / "rate.yaml", tmp_path / "budget.json"
    rate.write_text(RATE_LIMITS)
    budget.write_text('{"name": "eng-budget", "type": "test-budget", "ceiling_usd": 500}')
    result = run(cli, "apply", "-f", str(rate), "-f", str(budget))
    assert result.exit_code == 0, result.output
    assert len(store._rows[-1].documents) == 2
    piped = run(cli, "apply", "-f", "-", input=BUDGET.replace("500", "50"))
    assert piped.exit_code == 0 and "applied: version 2" in piped.stdout


def test_a_syntax_error_names_its_file(cli, gateway, tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(BOTH)
    bad.write_text("name: x\n  type: y\n")
    result = run(cli, "apply", "-f", str(good), "-f", str(bad))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"{bad}: YAML syntax error at line 2, column 7")


def test_unreadable_file(cli, tmp_path):
    result = run(cli, "apply", "-f", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1 and "cannot read" in result.stderr


def test_show_history_rollback_delete(cli, gateway, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(BOTH)
    run(cli, "apply", "-f", str(path))
    path.write_text(RATE_LIMITS.replace("1m", "1h"))
    run(cli, "apply", "-f", str(path), "-m", "hourly")

    shown = run(cli, "config", "show")
    assert shown.exit_code == 0
    assert shown.stdout.startswith("# version 2, applied ")
    assert (
        "by admin (tester): hourly\n---\ntype: test-rate-limit\nname: team-limits\n" in shown.stdout
    )
    old = run(cli, "config", "show", "--version", "1")
    assert "window: 1m" in old.stdout

    history = run(cli, "config", "history")
    assert history.exit_code == 0
    assert "hourly" in history.stdout and "admin (tester)" in history.stdout

    rolled = run(cli, "config", "rollback", "1")
    assert rolled.exit_code == 0 and "applied: version 3 (was 2)" in rolled.stdout
    missing = run(cli, "config", "rollback", "9")
    assert missing.exit_code == 1 and "there is no config version 9" in missing.stderr

    deleted = run(cli, "config", "delete", "test-budget", "eng-budget")
    assert deleted.exit_code == 0 and "deleted   test-budget/eng-budget" in deleted.stdout


def test_connection_refused_is_a_one_line_hint(cli, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(BOTH)
    url = f"http://127.0.0.1:{free_port()}"
    result = run(cli, "apply", "-f", str(path), "--url", url)
    assert result.exit_code == 2
    assert result.stderr == (
        f"cannot reach the gateway at {url}: is it running? (set --url or SLUICEGATE_URL)\n"
    )


def test_url_and_key_from_the_environment(monkeypatch):
    monkeypatch.setenv("SLUICEGATE_ADMIN_KEY", "sg-admin")
    client = admin_client.open_client("http://gw:1")
    assert client.headers["authorization"] == "Bearer sg-admin"
    assert str(client.base_url) == "http://gw:1"


def test_refused_admin_key_exit_2(cli, monkeypatch, tmp_path):
    async def refuse(request):
        return JSONResponse({"error": {"message": "invalid API key"}}, status_code=401)

    app = Starlette(routes=[Route("/api/config/history", refuse)])
    monkeypatch.setattr(admin_client, "open_client", lambda url: TestClient(app, base_url=url))
    monkeypatch.delenv("SLUICEGATE_ADMIN_KEY", raising=False)
    unset = run(cli, "config", "history")
    assert unset.exit_code == 2
    assert unset.stderr == "SLUICEGATE_ADMIN_KEY is not set (serve prints the admin key at start)\n"
    monkeypatch.setenv("SLUICEGATE_ADMIN_KEY", "sg-wrong")
    result = run(cli, "config", "history")
    assert result.exit_code == 2
    assert "refused the admin key (invalid API key); set SLUICEGATE_ADMIN_KEY" in result.stderr


# --- output formatting ----------------------------------------------------------------
def test_problem_lines():
    payload = {
        "error": {
            "message": "invalid config",
            "type": "invalid_config",
            "problems": [
                {"document": "a", "type": "t", "path": "rules[2].limit.window", "message": "bad"},
                {"document": "input", "type": None, "path": "", "message": "YAML syntax error"},
            ],
        }
    }
    assert problem_lines(payload) == [
        "error: config refused (2 problems); nothing applied",
        "  a (t): rules[2].limit.window: bad",
        "  input: YAML syntax error",
    ]
    assert problem_lines({"error": {"message": "no"}}) == ["error: no"]


def test_diff_is_coloured_on_a_terminal():
    text = diff_text("--- a\n+++ b\n@@ -1 +1 @@\n-old\n+new\n same\n")
    assert text.plain == "--- a\n+++ b\n@@ -1 +1 @@\n-old\n+new\n same\n"
    styles = {text.plain[span.start : span.end].strip(): str(span.style) for span in text.spans}
    assert styles["-old"] == "red" and styles["+new"] == "green" and styles["@@ -1 +1 @@"] == "cyan"
    console = Console(force_terminal=True, color_system="standard", width=80)
    with console.capture() as captured:
        console.print(text, end="")
    assert "\x1b[32m+new" in captured.get()


def test_result_lines_and_show_text():
    assert result_lines({"dry_run": True, "changed": False, "documents": []}) == [
        "dry run: nothing applied (no changes)"
    ]
    assert show_text({"version": 0}) == "# no config applied yet\n"
    text = show_text(
        {
            "version": 3,
            "applied_at": 0,
            "applied_by": "a",
            "comment": None,
            "documents": [{"rules": [], "type": "t", "name": "n"}],
        }
    )
    assert text.splitlines()[1:] == ["---", "type: t", "name: n", "rules: []"]


def test_history_table():
    table = history_table(
        [{"version": 2, "applied_at": 1.0, "applied_by": "a", "comment": "c", "document_count": 3}]
    )
    assert [c.header for c in table.columns] == [
        "version",
        "applied at",
        "applied by",
        "comment",
        "documents",
    ]
    assert table.row_count == 1
