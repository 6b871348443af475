"""`sluicegate keys create | list | rotate | revoke`."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console

from sluicegate.cli.admin_client import DEFAULT_URL, UrlOption, call
from sluicegate.cli.tables import table as shown_table

keys_app = typer.Typer(
    help="Virtual keys: create, list, rotate with a grace period, revoke.", no_args_is_help=True
)
out = Console()

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    match = _DURATION.match(text.strip())
    if not match:
        raise typer.BadParameter(f"{text!r} is not a duration; use e.g. 90s, 15m, 1h, 7d")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@keys_app.command("create")
def create(
    user: str = typer.Option(None, "--user", help="User the key belongs to (pinned)"),
    team: str = typer.Option(None, "--team", help="Team (pinned)"),
    project: str = typer.Option(None, "--project", help="Project (a default unless pinned)"),
    workflow_tag: str = typer.Option(None, "--workflow-tag", help="Workflow tag (default)"),
    environment: str = typer.Option(None, "--environment", help="Environment (default)"),
    cost_center: str = typer.Option(None, "--cost-center", help="Cost center (default)"),
    pin: list[str] = typer.Option(
        None,
        "--pin",
        help="A field headers may not change (repeatable): project, workflow_tag, "
        "environment, cost_center (user and team are always pinned)",
    ),
    name: str = typer.Option(None, "--name", help="A label, e.g. alice-laptop"),
    model: list[str] = typer.Option(
        None, "--model", help="Allowed model (repeatable; default all)"
    ),
    expires_in: str = typer.Option(None, "--expires-in", help="e.g. 30d"),
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Create a key. The key is shown this once; store it now. A request whose header
    contradicts a pinned field is refused (403)."""
    body: dict[str, Any] = {
        "user_id": user,
        "team": team,
        "project": project,
        "workflow_tag": workflow_tag,
        "environment": environment,
        "cost_center": cost_center,
        "pinned": [field.replace("-", "_") for field in pin or []],
        "name": name,
        "models": list(model or []),
    }
    if expires_in:
        body["expires_at"] = datetime.now(UTC).timestamp() + parse_duration(expires_in)
    created = call("POST", url, "/api/keys", json=body)
    out.print(f"id:  {created['id']}")
    out.print(f"key: [bold]{created['key']}[/]   (shown once)")


@keys_app.command("list")
def list_keys(url: UrlOption = DEFAULT_URL) -> None:
    """List keys (never the secrets)."""
    rows = call("GET", url, "/api/keys")["data"]
    headers = ("id", "name", "prefix", "user", "team", "project", "pinned", "state", "created")
    table = shown_table(
        (*headers, "expires"),
        (
            (
                r["id"],
                r["name"] or "",
                r["key_prefix"] + "…",
                r["user_id"] or "",
                r["team"] or "",
                r["project"] or "",
                ",".join(r.get("pinned") or []),
                r["state"],
                _when(r["created_at"]),
                _when(r["expires_at"]),
            )
            for r in rows
        ),
        whole=("id", "prefix"),
    )
    out.print(table)


@keys_app.command("rotate")
def rotate(
    key_id: str,
    grace: str = typer.Option("1h", "--grace", help="How long the old key keeps working"),
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Issue a replacement key; the old one works until the grace period ends. A revoked
    or already rotated key cannot be rotated (the gateway answers 409)."""
    rotated = call(
        "POST", url, f"/api/keys/{key_id}/rotate", json={"grace_seconds": parse_duration(grace)}
    )
    out.print(f"new id:  {rotated['id']}")
    out.print(f"new key: [bold]{rotated['key']}[/]   (shown once)")
    out.print(f"{key_id} keeps working for {grace}")


@keys_app.command("revoke")
def revoke(key_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """Revoke a key now, on every replica."""
    call("DELETE", url, f"/api/keys/{key_id}")
    out.print(f"revoked {key_id}")
