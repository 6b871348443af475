"""`sluicegate requests tail`: the newest ledger rows as a table."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from sluicegate.cli.admin_client import DEFAULT_URL, UrlOption, call

requests_app = typer.Typer(help="The request ledger.", no_args_is_help=True)
out = Console()


def _num(value: object) -> str:
    return "-" if value is None else str(value)


@requests_app.command("tail")
def tail(
    limit: int = typer.Option(20, "-n", "--limit"),
    project: str = typer.Option(None),
    team: str = typer.Option(None),
    session_id: str = typer.Option(None, "--session"),
    model: str = typer.Option(None),
    status: str = typer.Option(None),
    since: str = typer.Option(None, help="e.g. 1h or ISO time"),
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Newest requests first."""
    rows = call(
        "GET",
        url,
        "/api/requests",
        params={
            "limit": limit,
            "project": project,
            "team": team,
            "session_id": session_id,
            "model": model,
            "status": status,
            "since": since,
        },
    )["data"]
    table = Table(
        "time", "request", "project", "team", "user", "model", "status", "in", "out", "cost $", "ms"
    )
    for r in rows:
        resolved = (
            f"{r['provider']}/{r['model']}" if r["provider"] else (r["requested_model"] or "")
        )
        cost = (
            "unpriced"
            if r["cost_usd"] is None and r["status_code"] == 200
            else ("-" if r["cost_usd"] is None else f"{r['cost_usd']:.6f}")
        )
        table.add_row(
            r["ts"][11:23],
            r["request_id"][-12:],
            r["project"] or "",
            r["team"] or "",
            r["user_id"] or "",
            resolved,
            str(r["status_code"]),
            _num(r["input_tokens"]),
            _num(r["output_tokens"]),
            cost,
            _num(round(r["latency_ms"]) if r["latency_ms"] is not None else None),
        )
    out.print(table)
