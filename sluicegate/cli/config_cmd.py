"""`sluicegate apply` and `sluicegate config show|history|rollback|delete`
(`apply --what-if` is `whatif_cmd`'s).

These commands talk to a running gateway's admin API through `admin_client` (`--url`,
$SLUICEGATE_URL, $SLUICEGATE_ADMIN_KEY). Exit codes: 0 done, 1 the gateway refused the
change (each problem on its own line), 2 the gateway could not be reached or refused the
admin key.

Registered by the CLI root:

    app.command("apply")(apply_command)
    app.add_typer(config_app, name="config")
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sluicegate.cli.admin_client import DEFAULT_URL, UrlOption, call, fail, problem_text
from sluicegate.cli.whatif_cmd import run_what_if
from sluicegate.config.diff import render_all
from sluicegate.config.parse import load_raw
from sluicegate.config.problems import ConfigValidationError, Problem

DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Validate and show the diff; change nothing.")
]
StrictOption = Annotated[
    bool,
    typer.Option(
        "--strict", help="Refuse the change if it has warnings (exit 1, nothing applied)."
    ),
]

config_app = typer.Typer(
    name="config", no_args_is_help=True, help="Show, list, roll back and delete config versions."
)


# --- commands -------------------------------------------------------------------------
def apply_command(
    file: Annotated[
        list[Path],
        typer.Option(
            "-f",
            "--file",
            help="A YAML or JSON file of documents; repeatable; '-' for stdin.",
            show_default=False,
        ),
    ],
    dry_run: DryRunOption = False,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace", help="Make these documents the whole config (others are deleted)."
        ),
    ] = False,
    comment: Annotated[
        str | None, typer.Option("-m", "--comment", help="Recorded in the history.")
    ] = None,
    strict: StrictOption = False,
    what_if: Annotated[
        str | None,
        typer.Option(
            "--what-if",
            metavar="WINDOW",
            help="Apply nothing: replay this much of the ledger (7d, 36h; at most 31d) "
            "under the documents and report what they would have refused, queued or "
            "redirected, and what changed routes would cost (docs/what-if.md).",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            help="With --what-if: when the replayed window ends (ISO-8601, unix seconds, or "
            "an age like 1d) [default: now].",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="With --what-if: print the report as JSON.")
    ] = False,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Apply config documents: all of them or none. Warnings (unpriced models, undefined
    alert targets, unknown providers, models that stop resolving) are printed; --strict
    refuses the change instead. --what-if replays the ledger under them instead."""
    if what_if is None and (as_json or until is not None):
        fail("error: --json and --until go with --what-if", code=2)
    content, content_type = combine_sources([(str(path), _read(path)) for path in file])
    if what_if is not None:
        run_what_if(
            url,
            content,
            content_type,
            window=what_if,
            until=until,
            replace=replace,
            strict=strict,
            as_json=as_json,
        )
        return
    params = {"dry_run": _bool(dry_run), "replace": _bool(replace), "strict": _bool(strict)}
    if comment:
        params["comment"] = comment
    payload = call(
        "POST",
        url,
        "/api/config",
        content=content.encode(),
        params=params,
        headers={"content-type": content_type},
    )
    _print_result(payload)


@config_app.command("show")
def show_command(
    version: Annotated[int | None, typer.Option("--version", help="An older version.")] = None,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Print the live documents as YAML, under a version header."""
    path = "/api/config" if version is None else f"/api/config/versions/{version}"
    typer.echo(show_text(call("GET", url, path)), nl=False)


@config_app.command("history")
def history_command(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 20,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """List config versions, newest first."""
    payload = call("GET", url, "/api/config/history", params={"limit": str(limit)})
    Console().print(history_table(payload.get("versions", [])))


@config_app.command("rollback")
def rollback_command(
    version: Annotated[int, typer.Argument(min=1, help="The version to restore.")],
    dry_run: DryRunOption = False,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Restore an earlier version's documents as a new version."""
    payload = call(
        "POST",
        url,
        "/api/config/rollback",
        json={"version": version},
        params={"dry_run": _bool(dry_run)},
    )
    _print_result(payload)


@config_app.command("delete")
def delete_command(
    type_name: Annotated[str, typer.Argument(metavar="TYPE")],
    name: Annotated[str, typer.Argument(metavar="NAME")],
    dry_run: DryRunOption = False,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Remove one document (a new version without it)."""
    payload = call(
        "DELETE", url, f"/api/config/{type_name}/{name}", params={"dry_run": _bool(dry_run)}
    )
    _print_result(payload)


def combine_sources(sources: list[tuple[str, str]]) -> tuple[str, str]:
    """One request body from several files, after a local syntax check of each (so that
    a syntax error names its file, line and column). Returns (body, content type)."""
    problems: list[Problem] = []
    loaded: list[tuple[str, str, list[object]]] = []
    for name, text in sources:
        try:
            loaded.append((name, text, load_raw(text, source_name=name)))
        except ConfigValidationError as exc:
            problems.extend(exc.problem_list)
    if problems:
        fail("\n".join(problem.format() for problem in problems), code=1)
    if len(loaded) == 1:
        name, text, _ = loaded[0]
        is_json = text.lstrip()[:1] in ("{", "[") and name.lower().endswith(".json")
        return text, "application/json" if is_json else "application/yaml"
    parts = [f"# file: {name}\n{_as_yaml(text, raws)}" for name, text, raws in loaded]
    return "\n---\n".join(parts), "application/yaml"


def _as_yaml(text: str, raws: list[object]) -> str:
    if text.lstrip()[:1] not in ("{", "["):
        return text
    return render_all([raw for raw in raws if isinstance(raw, dict)])


# --- output ---------------------------------------------------------------------------
def diff_text(diff: str) -> Text:
    """The unified diff, styled (rich drops the styles when output is not a terminal)."""
    text = Text()
    for line in diff.splitlines(keepends=True):
        if line.startswith(("+++", "---")):
            style = "bold"
        elif line.startswith("@@"):
            style = "cyan"
        elif line.startswith("+"):
            style = "green"
        elif line.startswith("-"):
            style = "red"
        else:
            style = ""
        text.append(line, style=style)
    return text


def result_lines(payload: dict[str, Any]) -> list[str]:
    """What a change did, one line per document, its warnings, then the outcome."""
    lines = [
        f"  {d.get('action', ''):<9} {d.get('type')}/{d.get('name')}"
        for d in payload.get("documents", [])
    ]
    lines += [f"warning: {problem_text(w)}" for w in payload.get("warnings") or []]
    if payload.get("dry_run"):
        lines.append(
            "dry run: nothing applied" + ("" if payload.get("changed") else " (no changes)")
        )
    elif not payload.get("changed"):
        lines.append(
            f"no changes: version {payload.get('version')} is already live; nothing applied"
        )
    else:
        lines.append(
            f"applied: version {payload.get('version')} (was {payload.get('previous_version')})"
        )
    return lines


def show_text(payload: dict[str, Any]) -> str:
    version = payload.get("version", 0)
    if not version:
        return "# no config applied yet\n"
    header = (
        f"# version {version}, applied {_when(payload.get('applied_at'))} "
        f"by {payload.get('applied_by')}"
    )
    if payload.get("comment"):
        header += f": {payload['comment']}"
    return f"{header}\n{render_all(payload.get('documents') or [])}"


def history_table(versions: list[dict[str, Any]]) -> Table:
    table = Table(title="config history", title_justify="left")
    for column in ("version", "applied at", "applied by", "comment", "documents"):
        table.add_column(column, justify="right" if column in ("version", "documents") else "left")
    for row in versions:
        count = row.get("document_count", len(row.get("documents") or []))
        table.add_row(
            str(row.get("version")),
            _when(row.get("applied_at")),
            str(row.get("applied_by") or ""),
            str(row.get("comment") or ""),
            str(count),
        )
    return table


def _print_result(payload: dict[str, Any]) -> None:
    if payload.get("dry_run") and payload.get("changed"):
        Console(highlight=False, soft_wrap=True).print(diff_text(payload.get("diff", "")), end="")
    for line in result_lines(payload):
        typer.echo(line)
    live_error = payload.get("live_error")
    if payload.get("applied") and live_error:
        fail(
            f"warning: version {payload.get('version')} is stored but is not live: {live_error}",
            code=1,
        )


def _read(path: Path) -> str:
    if str(path) == "-":
        return sys.stdin.read()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"error: cannot read {path}: {exc}", code=1)


def _when(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return "-"
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def _bool(value: bool) -> str:
    return "true" if value else "false"
