"""The `sluicegate` command: serve, emulator, keys, requests, ledger, apply, config, budgets,
targets."""

from __future__ import annotations

import typer

from sluicegate.cli.config_cmd import apply_command, config_app
from sluicegate.cli.keys_cmd import keys_app
from sluicegate.cli.ledger_cmd import ledger_app
from sluicegate.cli.requests_cmd import requests_app
from sluicegate.cli.serve_cmd import emulator, serve
from sluicegate.cli.state_cmd import budgets, targets

app = typer.Typer(
    help="sluicegate: a self-hosted AI gateway and control room.",
    no_args_is_help=True,
    add_completion=False,
)
app.command()(serve)
app.command()(emulator)
app.add_typer(keys_app, name="keys")
app.add_typer(requests_app, name="requests")
app.add_typer(ledger_app, name="ledger")
app.command("apply")(apply_command)
app.add_typer(config_app, name="config")
app.command()(budgets)
app.command()(targets)

if __name__ == "__main__":
    app()
