"""The `sluicegate` command: serve, emulator, keys, tokens, audit, requests, outcomes, ledger,
apply, config, budgets, targets, report, demo."""

from __future__ import annotations

import typer

from sluicegate.cli.config_cmd import apply_command, config_app
from sluicegate.cli.demo_cmd import demo
from sluicegate.cli.keys_cmd import keys_app
from sluicegate.cli.ledger_cmd import ledger_app
from sluicegate.cli.outcomes_cmd import outcomes_app
from sluicegate.cli.report_cmd import report
from sluicegate.cli.requests_cmd import requests_app
from sluicegate.cli.serve_cmd import emulator, serve
from sluicegate.cli.state_cmd import budgets, targets
from sluicegate.cli.tokens_cmd import audit, tokens_app

app = typer.Typer(
    help="sluicegate: a self-hosted AI gateway and control room.",
    no_args_is_help=True,
    add_completion=False,
)
app.command()(serve)
app.command()(emulator)
app.add_typer(keys_app, name="keys")
app.add_typer(tokens_app, name="tokens")
app.command()(audit)
app.add_typer(requests_app, name="requests")
app.add_typer(outcomes_app, name="outcomes")
app.add_typer(ledger_app, name="ledger")
app.command("apply")(apply_command)
app.add_typer(config_app, name="config")
app.command()(budgets)
app.command()(targets)
app.command()(report)
app.command()(demo)

if __name__ == "__main__":
    app()
