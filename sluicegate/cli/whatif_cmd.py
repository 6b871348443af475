"""`sluicegate apply -f FILE --what-if 7d`: the documents replayed on the ledger through
POST /api/config/what-if, printed as tables (or `--json`). Nothing is applied.

What it prints, top to bottom: the window and how many requests were replayed (and
whether a bound stopped it), the documents and warnings as `apply` lists them, the
findings, a table of rules and budgets (what the live policy did -> what the proposal
would have done), budgets' ceilings and peaks, models routed differently with their
current and proposed cost per target, and the notes.
"""

from __future__ import annotations

from typing import Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from sluicegate.cli.admin_client import call, problem_text
from sluicegate.server.settings import WHAT_IF_DEADLINE_MAX_S
from sluicegate.whatif.findings import money

OUTCOMES = ("refused", "fallback", "queued", "audited")
# The gateway stops a what-if at its deadline (at most WHAT_IF_DEADLINE_MAX_S): wait a
# little longer than that for its answer.
TIMEOUT_S = WHAT_IF_DEADLINE_MAX_S + 30


def run_what_if(
    url: str,
    content: str,
    content_type: str,
    *,
    window: str,
    until: str | None,
    replace: bool,
    strict: bool,
    as_json: bool,
) -> None:
    params = {
        "window": window,
        "until": until,
        "replace": "true" if replace else "false",
        "strict": "true" if strict else "false",
    }
    payload = call(
        "POST",
        url,
        "/api/config/what-if",
        content=content.encode(),
        params=params,
        headers={"content-type": content_type},
        timeout=TIMEOUT_S,
    )
    if as_json:
        typer.echo(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode())
        return
    print_report(payload, Console(highlight=False, soft_wrap=True))


def print_report(report: dict[str, Any], out: Console) -> None:
    window = report.get("window") or {}
    out.print(
        f"what-if over {window.get('label')}: {_day(window.get('since'))} to "
        f"{_day(window.get('until'))}, {report.get('rows_replayed', 0):,} requests replayed "
        f"({report.get('rows_read', 0):,} read)"
    )
    if report.get("truncated"):
        stopped = report.get("replayed_until")
        out.print(f"[bold yellow]truncated[/]: the replay stopped at {stopped}")
    config = report.get("config") or {}
    for document in config.get("documents") or []:
        name = f"{document.get('type')}/{document.get('name')}"
        out.print(f"  {document.get('action', ''):<9} {name}", markup=False)
    for warning in config.get("warnings") or []:
        out.print(f"warning: {problem_text(warning)}", markup=False)
    out.print()
    out.print("[bold]findings[/]")
    for finding in report.get("findings") or []:
        out.print(f"  - {finding}", markup=False)
    rules = report.get("rules") or []
    if rules:
        out.print()
        out.print(rules_table(rules))
    budgets = [rule for rule in rules if rule.get("budget")]
    if budgets:
        out.print(budgets_table(budgets))
    routes = report.get("routes") or []
    if routes:
        out.print(routes_table(routes))
    for note in report.get("notes") or []:
        out.print(f"note: {note}", markup=False)
    out.print("what-if: nothing applied")


def rules_table(rules: list[dict[str, Any]]) -> Table:
    table = Table(title="rules and budgets: live -> proposed", title_justify="left")
    table.add_column("rule")
    table.add_column("change")
    table.add_column("matched", justify="right")
    for outcome in OUTCOMES:
        table.add_column(outcome, justify="right")
    table.add_column("first trip (proposed)")
    for rule in rules:
        live, mine = rule.get("live") or {}, rule.get("proposed") or {}
        cells = [
            _count_change(live, mine, outcome, (rule.get("difference") or {}).get(outcome, 0))
            for outcome in OUTCOMES
        ]
        table.add_row(
            f"{rule.get('id')} ({_kind(rule.get('kind'))})",
            str(rule.get("change")),
            _int(rule.get("matched_requests")),
            *cells,
            _trip(mine.get("first_trip")),
        )
    return table


def budgets_table(rules: list[dict[str, Any]]) -> Table:
    table = Table(title="budgets", title_justify="left")
    for column in ("budget", "ceiling", "before window", "peak", "ceiling reached", "alerts"):
        table.add_column(column, justify="right" if column != "budget" else "left")
    for rule in rules:
        budget = rule["budget"]
        before = budget.get("spend_before_window_usd") or {}
        reached = budget.get("ceiling_reached_day")
        table.add_row(
            str(rule.get("id")),
            _usd(budget.get("ceiling_usd")),
            ", ".join(f"{w} {_usd(v) if v is not None else '?'}" for w, v in before.items()),
            f"{_usd(budget.get('peak_spent_usd'))} ({budget.get('peak_pct', 0):g}%)",
            f"day {reached}, {_short(budget.get('ceiling_reached_at'))}" if reached else "-",
            ", ".join(f"{a['at_pct']:g}% day {a['day']}" for a in budget.get("alerts") or [])
            or "-",
        )
    return table


def routes_table(routes: list[dict[str, Any]]) -> Table:
    table = Table(title="routing: requests routed differently", title_justify="left")
    for column in ("model / target", "share", "requests", "current", "proposed", "change"):
        table.add_column(column, justify="left" if column == "model / target" else "right")
    for route in routes:
        pct = route.get("cost_change_pct")
        change = _usd(route.get("cost_change_usd")) + (f" ({pct:+.1f}%)" if pct is not None else "")
        table.add_row(
            str(route.get("model")),
            "",
            f"{route.get('requests', 0):,}",
            _usd(route.get("current_cost_usd")),
            _usd(route.get("proposed_cost_usd")),
            change,
        )
        for served in route.get("current_targets") or []:
            table.add_row(
                f"  was {served.get('target')}",
                "",
                f"{served.get('requests', 0):,}",
                _usd(served.get("cost_usd")),
                "",
                "",
            )
        for target in route.get("proposed_targets") or []:
            cost = target.get("cost_usd")
            table.add_row(
                f"  -> {target.get('target')}",
                f"{target.get('share', 0) * 100:.0f}%",
                f"{target.get('requests', 0):,.0f}",
                "",
                _usd(cost) if cost is not None else "no price",
                "",
            )
        if route.get("unroutable_requests"):
            table.add_row("  -> (no such model: 404)", "", f"{route['unroutable_requests']:,}")
    return table


def _count_change(live: dict[str, Any], mine: dict[str, Any], outcome: str, delta: int) -> str:
    before = (live.get(outcome) or {}).get("requests", 0)
    if not mine:
        return f"{before:,} -> -"
    after = (mine.get(outcome) or {}).get("requests", 0)
    if before == after == 0:
        return "0"
    return f"{before:,} -> {after:,} ({delta:+,})"


def _trip(trip: dict[str, Any] | None) -> str:
    if not trip:
        return "-"
    parts = [_short(trip.get("at")), f"day {trip.get('day')}"]
    if trip.get("nth_match"):
        parts.append(f"#{trip['nth_match']:,}")
    if trip.get("scope") and trip["scope"] != "*":
        parts.append(str(trip["scope"]))
    return ", ".join(parts)


def _kind(kind: Any) -> str:
    return {"rate_limit": "rate limit", "budget": "budget"}.get(str(kind), "not in config")


def _int(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


def _usd(value: Any) -> str:
    return money(value) if isinstance(value, int | float) else "-"


def _short(iso: Any) -> str:
    """2025-01-01T10:30:00+00:00 -> 2025-01-01 10:30"""
    return str(iso)[:16].replace("T", " ") if iso else "-"


def _day(iso: Any) -> str:
    return _short(iso) + " UTC" if iso else "?"
