"""`sluicegate report [PANEL]`: a control-room panel from a running gateway, as a table
and the actions it proposes (`--json`: the API's answer as it is). Without PANEL, the
panels there are."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table
from rich.text import Text

from sluicegate.analytics.cells import shown as cell
from sluicegate.cli.admin_client import DEFAULT_URL, UrlOption, call, fail

out = Console()

PanelArgument = typer.Argument(
    None, help="adoption, burn-rate, latency, tags, ... (omit to list the panels)"
)
FilterOption = typer.Option(
    [],
    "--filter",
    "-f",
    help="KEY=VALUE, once per dimension: team=search, metadata.customer_id=acme",
)


def report(
    panel: str | None = PanelArgument,
    since: str | None = typer.Option(None, help="unix seconds, ISO 8601 or an age (7d)"),
    until: str | None = typer.Option(None, help="unix seconds, ISO 8601 or an age"),
    group_by: str | None = typer.Option(
        None, "--group-by", "-g", help="dimensions or metadata.KEY, comma-separated"
    ),
    filters: list[str] = FilterOption,
    limit: int | None = typer.Option(None, "--limit", "-n", help="rows before 'other'"),
    as_json: bool = typer.Option(False, "--json", help="print the answer as JSON"),
    sessions: bool = typer.Option(
        False,
        "--sessions",
        help="list the sessions behind the figures instead (admins; outcomes, leverage): "
        "--filter narrows them, -n is the page size",
    ),
    traced: bool | None = typer.Option(
        None, "--traced/--untraced", help="with --sessions: only sessions with / without outcome"
    ),
    cursor: str | None = typer.Option(None, help="with --sessions: the page after this cursor"),
    url: UrlOption = DEFAULT_URL,
) -> None:
    """A control-room panel: figures, and what to do next."""
    if panel is None:
        _print_panels(call("GET", url, "/api/analytics")["data"], as_json)
        return
    params: dict[str, Any] = {
        "since": since,
        "until": until,
        "group_by": group_by,
        "limit": limit,
        **_filters(filters),
    }
    if sessions:
        page = {"traced": None if traced is None else str(traced).lower(), "cursor": cursor}
        listing = call("GET", url, f"/api/analytics/{panel}/sessions", params={**params, **page})
        if as_json:
            typer.echo(orjson.dumps(listing, option=orjson.OPT_INDENT_2).decode())
        else:
            print_sessions(listing)
        return
    answer = call("GET", url, f"/api/analytics/{panel}", params=params)
    if as_json:
        typer.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
        return
    print_answer(answer)


def _filters(pairs: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            fail(f"error: --filter {pair!r} is not KEY=VALUE (e.g. team=search)", code=1)
        if key.strip() in found:
            fail(f"error: --filter {key.strip()} is given twice (one value per dimension)", code=1)
        found[key.strip()] = value
    return found


def _print_panels(panels: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        typer.echo(orjson.dumps(panels, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table("panel", "layer", "title", "question")
    for p in panels:
        table.add_row(*(Text(str(p[k])) for k in ("name", "layer", "title", "question")))
    out.print(table)


def print_answer(answer: dict[str, Any]) -> None:
    window = answer["window"]
    out.print(
        f"[bold]{escape(answer['title'])}[/bold] ({answer['layer']}): {escape(answer['question'])}"
    )
    where = [f"{window['since']} .. {window['until']}", f"from {answer['source']}"]
    if answer["filters"]:
        where.append(", ".join(f"{k}={v}" for k, v in answer["filters"].items()))
    scope = {k: v for k, v in answer["scope"].items() if v is not None}
    if scope:
        where.append("scope " + ", ".join(f"{k}={v}" for k, v in scope.items()))
    out.print(Text("  ".join(where)))
    columns = answer["columns"]
    table = Table()
    for number, column in enumerate(columns):
        table.add_column(column["title"], justify="left" if number == 0 else "right")
    for row in answer["rows"]:
        table.add_row(*(Text(cell(row, c["key"])) for c in columns))
    table.add_section()
    table.add_row(*(Text(cell(answer["totals"], c["key"])) for c in columns), style="bold")
    out.print(table)
    for breakdown in answer.get("breakdowns") or []:
        if breakdown.get("columns"):
            _print_breakdown_table(breakdown)
            continue
        parts = [
            f"{r.get('value') or '(no value)'} {cell(r, 'requests')} ({cell(r, 'share')})"
            for r in breakdown["rows"]
        ]
        out.print(Text(f"{breakdown['title']}: " + ("; ".join(parts) or "none")))
    for note in answer.get("notes") or []:
        out.print(Text(f"note: {note}", style="dim"))
    actions = answer.get("actions") or []
    out.print("[bold]Actions[/bold]" if actions else "No action proposed.")
    for number, action in enumerate(actions, 1):
        control = action["control"]
        place = action.get("where") or {}
        at = f"{place.get('type')}" + (f" {place['name']}" if place.get("name") else "")
        concerns = f"[{control['kind']}: {control['name']}; {at}]"
        out.print(Text(f"{number}. {action['message']}  {concerns}"))


SESSION_COLUMNS = (  # (title, key in the session's figures)
    ("session", "session_id"),
    ("last seen", "last_ts"),
    ("team", "team"),
    ("project", "project"),
    ("workflow", "workflow_tag"),
    ("tool", "client_tool"),
    ("requests", "requests"),
    ("cost $", "cost_usd"),
    ("outcomes", "outcomes"),
)


def print_sessions(listing: dict[str, Any]) -> None:
    """A page of a panel's sessions: who-less figures, the panel's own per-session figures
    (e.g. the leverage score), and how to get the next page."""
    window = listing["window"]
    filters = ", ".join(f"{k}={v}" for k, v in listing["filters"].items())
    out.print(
        Text(
            f"{listing['sessions']:,} sessions behind {listing['panel']}, "
            f"{window['since']} .. {window['until']}" + (f", {filters}" if filters else "")
        )
    )
    items = listing["data"]
    # a panel lists the session's figures, or wraps them beside figures of its own
    wrapped = bool(items) and "session" in items[0]
    extra = [k for k in items[0] if k != "session" and not _nested(items, k)] if wrapped else []
    table = Table(*(Column(t, no_wrap=k == "session_id") for t, k in SESSION_COLUMNS), *extra)
    for item in items:
        figures = item["session"] if wrapped else item
        shown = [_session_cell(figures, key) for _, key in SESSION_COLUMNS]
        table.add_row(*(Text(c) for c in shown), *(Text(cell(item, k)) for k in extra))
    out.print(table)
    if listing["next_cursor"]:
        out.print(Text(f"more: --cursor {listing['next_cursor']}"))


def _nested(items: list[dict[str, Any]], key: str) -> bool:
    return isinstance(items[0].get(key), dict | list)


def _session_cell(figures: dict[str, Any], key: str) -> str:
    if key == "last_ts":
        return datetime.fromtimestamp(figures[key], UTC).strftime("%Y-%m-%d %H:%M")
    return cell(figures, key)


def _print_breakdown_table(breakdown: dict[str, Any]) -> None:
    """A breakdown that names its own columns, as a table (or one line when empty)."""
    if not breakdown["rows"]:
        out.print(Text(f"{breakdown['title']}: none"))
        return
    columns = breakdown["columns"]
    table = Table(title=breakdown["title"], title_justify="left")
    for number, column in enumerate(columns):
        table.add_column(column["title"], justify="left" if number == 0 else "right")
    for row in breakdown["rows"]:
        table.add_row(*(Text(cell(row, c["key"])) for c in columns))
    out.print(table)
    for row in breakdown["rows"]:  # a config document a row proposes, ready to apply
        if isinstance(row.get("yaml"), str):
            out.print(Text(f"# {cell(row, columns[0]['key'])}\n{row['yaml']}"), soft_wrap=True)
