"""`sluicegate tokens create | list | revoke` (admin API tokens with a role) and
`sluicegate audit` (the admin audit trail)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from sluicegate.cli.admin_client import DEFAULT_URL, UrlOption, call
from sluicegate.cli.keys_cmd import parse_duration
from sluicegate.cli.tables import table as shown_table
from sluicegate.model.admin import ROLES

tokens_app = typer.Typer(
    help="Admin API tokens with a role: create, list, revoke.", no_args_is_help=True
)
out = Console()

PAGE = 1000
MAX_ROWS = 100_000  # what `list` prints at most, however many tokens were ever made


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@tokens_app.command("create")
def create(
    role: str = typer.Option(..., "--role", help=f"One of: {', '.join(ROLES)}"),
    name: str = typer.Option(..., "--name", help="Who or what holds it, e.g. finance-bot"),
    team: list[str] = typer.Option(
        None, "--team", help="A team a team-lead token sees (repeatable; at least one)"
    ),
    user: str = typer.Option(None, "--user", help="The user a member token belongs to"),
    expires_in: str = typer.Option(
        None, "--expires-in", help="e.g. 90d: the token stops working then (default: never)"
    ),
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Create an admin API token. The token is shown this once; store it now. Use it as
    SLUICEGATE_ADMIN_KEY (or a bearer token) to call the admin API with its role."""
    body: dict[str, Any] = {"role": role, "name": name, "teams": list(team or [])}
    if user is not None:
        body["user_id"] = user
    if expires_in:
        body["expires_at"] = datetime.now(UTC).timestamp() + parse_duration(expires_in)
    created = call("POST", url, "/api/tokens", json=body)
    out.print(f"id:    {created['id']}")
    out.print(f"role:  {created['role']}{_scope(created)}")
    if created.get("expires_at"):
        out.print(f"expires: {_when(created['expires_at'])}")
    out.print(f"token: [bold]{created['token']}[/]   (shown once)")


def _scope(row: dict[str, Any]) -> str:
    if row.get("teams"):
        return f" (teams: {', '.join(row['teams'])})"
    if row.get("user_id"):
        return f" (user: {row['user_id']})"
    return ""


@tokens_app.command("list")
def list_tokens(
    state: str = typer.Option("all", "--state", help="active, expired, revoked or all"),
    url: UrlOption = DEFAULT_URL,
) -> None:
    """List admin API tokens, oldest first (never the secrets)."""
    headers = ("id", "name", "role", "scope", "prefix", "state", "created", "by", "last used")
    table = shown_table(
        (*headers, "expires"),
        (
            (
                r["id"],
                r["name"],
                r["role"],
                ",".join(r["teams"]) if r["teams"] else (r["user_id"] or ""),
                r["token_prefix"] + "…",
                r["state"],
                _when(r["created_at"]),
                r["created_by"],
                _when(r["last_used_at"]),
                _when(r.get("expires_at")),
            )
            for r in _all_tokens(url, state)
        ),
        whole=("id", "prefix"),
    )
    out.print(table)


def _all_tokens(url: str, state: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while len(rows) < MAX_ROWS:
        params = {"state": state, "limit": PAGE, "cursor": cursor}
        page = call("GET", url, "/api/tokens", params=params)
        rows.extend(page["data"])
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return rows


@tokens_app.command("revoke")
def revoke(token_id: str, url: UrlOption = DEFAULT_URL) -> None:
    """Revoke a token: refused at once by this gateway, by every replica within a second."""
    call("DELETE", url, f"/api/tokens/{token_id}")
    out.print(f"revoked {token_id}")


def audit(
    action: str = typer.Option(None, "--action", help="people.view, token.create, token.revoke"),
    principal: str = typer.Option(None, "--principal", help="A token name, or admin"),
    since: str = typer.Option(None, "--since", help="e.g. 1h, 7d or an ISO time"),
    limit: int = typer.Option(50, "-n", "--limit", help="Rows, newest first (at most 1000)"),
    url: UrlOption = DEFAULT_URL,
) -> None:
    """The admin audit trail, newest first: who viewed people's figures (ledger rows,
    per-user groupings) and who created or revoked admin tokens."""
    params = {"action": action, "principal": principal, "since": since, "limit": limit}
    rows = call("GET", url, "/api/audit", params=params)["data"]
    table = Table("time", "principal", "role", "token", "action", "target", "path")
    for r in rows:
        table.add_row(
            r["ts"][:19].replace("T", " "),
            r["principal"],
            r["role"],
            r["token_id"] or "",
            r["action"],
            r["target"] or "",
            r["path"],
        )
    out.print(table)
