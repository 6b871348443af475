"""`sluicegate outcomes add|list`: record an outcome (a CI job's eval run, an incident
tool's resolution) and read them back, through the admin API."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from sluicegate.cli.admin_client import DEFAULT_URL, UrlOption, call, fail

outcomes_app = typer.Typer(help="Outcomes: what sessions produced.", no_args_is_help=True)
out = Console(soft_wrap=True)  # an id or URL is for copying: never break its line

KINDS = "pr_merged | ticket_closed | incident_resolved | eval_run"


@outcomes_app.command("add")
def add(
    kind: str = typer.Option(..., "--kind", help=KINDS),
    session_id: str = typer.Option(..., "--session", help="The session id it joins"),
    external_id: str = typer.Option(
        ..., "--external-id", help="Its id where it comes from; sending it again is a no-op"
    ),
    workflow_tag: str = typer.Option(None, "--workflow"),
    url_of: str = typer.Option(None, "--link", help="Where it can be seen (http(s) URL)"),
    value: float = typer.Option(None, "--value", help="e.g. dollars or story points"),
    pass_rate: float = typer.Option(None, "--pass-rate", help="0 to 1; eval_run only"),
    ts: str = typer.Option(None, "--ts", help="When it happened (unix seconds or ISO-8601)"),
    extra: str = typer.Option(None, "--extra", help='A small JSON object, e.g. {"repo": "x"}'),
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Record one outcome and print it: its id, and when the gateway received it (an
    earlier time when the same external id was sent before: it is stored once)."""
    body: dict[str, Any] = {"kind": kind, "session_id": session_id, "external_id": external_id}
    optional = {
        "workflow_tag": workflow_tag,
        "url": url_of,
        "value": value,
        "pass_rate": pass_rate,
        "ts": ts,
    }
    body.update({name: v for name, v in optional.items() if v is not None})
    if extra is not None:
        try:
            body["extra"] = json.loads(extra)
        except ValueError:
            fail("error: --extra is not JSON", code=1)
    row = call("POST", url, "/api/outcomes", json=body)
    out.print(
        f"outcome {row['id']}: {row['kind']} of session {row['session_id']} "
        f"(external id {row['external_id']}, received {row['received_at']})"
    )


@outcomes_app.command("list")
def list_outcomes(
    limit: int = typer.Option(20, "-n", "--limit"),
    kind: str = typer.Option(None, help=KINDS),
    source: str = typer.Option(None, help="api | github | helpdesk"),
    session_id: str = typer.Option(None, "--session"),
    workflow_tag: str = typer.Option(None, "--workflow"),
    since: str = typer.Option(None, help="e.g. 7d or ISO time"),
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Newest outcomes first."""
    params = {
        "limit": limit,
        "kind": kind,
        "source": source,
        "session_id": session_id,
        "workflow_tag": workflow_tag,
        "since": since,
    }
    rows = call("GET", url, "/api/outcomes", params=params)["data"]
    table = Table("time", "kind", "source", "external id", "session", "workflow", "value")
    for r in rows:
        value = r["pass_rate"] if r["kind"] == "eval_run" else r["value"]
        table.add_row(
            r["ts"][:19].replace("T", " "),
            r["kind"],
            r["source"],
            r["external_id"],
            r["session_id"],
            r["workflow_tag"] or "",
            "" if value is None else f"{value:g}",
        )
    out.print(table)
