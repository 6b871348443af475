"""`sluicegate ledger ...`: the request ledger as a whole (export; more to come)."""

from __future__ import annotations

import typer

from sluicegate.cli.export_cmd import export_command

ledger_app = typer.Typer(help="The request ledger: export it.", no_args_is_help=True)
ledger_app.command("export")(export_command)
