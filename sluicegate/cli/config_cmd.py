"""`sluicegate apply` and `sluicegate config show|history|rollback|delete`.

These commands talk to a running gateway's admin API over HTTP (`--url`, default
$SLUICEGATE_URL or http://127.0.0.1:8340) with `Authorization: Bearer $SLUICEGATE_ADMIN_KEY`.
Exit codes: 0 done, 1 the gateway refused the change (each problem on its own line), 2 the
gateway could not be reached or refused the admin key.

Registered by the CLI root:

    app.command("apply")(apply_command)
    app.add_typer(config_app, name="config")
"""

from __future__ import annotations

import getpass
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sluicegate.config.diff import render_all
from sluicegate.config.parse import load_raw
from sluicegate.config.problems import ConfigValidationError, Problem

DEFAULT_URL = "http://127.0.0.1:8340"

UrlOption = Annotated[
    str,
    typer.Option(
        "--url", envvar="SLUICEGATE_URL", help="The gateway's base URL ($SLUICEGATE_URL)."
    ),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Validate and show the diff; change nothing.")
]

config_app = typer.Typer(
    name="config", no_args_is_help=True, help="Show, list, roll back and delete config versions."
)


def open_client(url: str) -> httpx.Client:
    """The admin API client (tests replace this to reach an app in process)."""
    headers = {"x-sluice-actor": _login()}
    key = os.environ.get("SLUICEGATE_ADMIN_KEY")
    if key:
        headers["authorization"] = f"Bearer {key}"
    return httpx.Client(base_url=url, headers=headers, timeout=30.0)


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
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Apply config documents: all of them or none."""
    content, content_type = combine_sources([(str(path), _read(path)) for path in file])
    params = {"dry_run": _bool(dry_run), "replace": _bool(replace)}
    if comment:
        params["comment"] = comment
    payload = _call(
        url,
        "POST",
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
    typer.echo(show_text(_call(url, "GET", path)), nl=False)


@config_app.command("history")
def history_command(
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000)] = 20,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """List config versions, newest first."""
    payload = _call(url, "GET", "/api/config/history", params={"limit": str(limit)})
    Console().print(history_table(payload.get("versions", [])))


@config_app.command("rollback")
def rollback_command(
    version: Annotated[int, typer.Argument(min=1, help="The version to restore.")],
    dry_run: DryRunOption = False,
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Restore an earlier version's documents as a new version."""
    payload = _call(
        url,
        "POST",
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
    payload = _call(
        url, "DELETE", f"/api/config/{type_name}/{name}", params={"dry_run": _bool(dry_run)}
    )
    _print_result(payload)


# --- talking to the gateway -----------------------------------------------------------
def _call(url: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    try:
        with open_client(url) as client:
            response = client.request(method, path, **kwargs)
    except httpx.ConnectError:
        _fail(
            f"cannot reach the gateway at {url}: is it running? (set --url or SLUICEGATE_URL)",
            code=2,
        )
    except httpx.TimeoutException:
        _fail(f"the gateway at {url} did not answer in time", code=2)
    except httpx.HTTPError as exc:
        _fail(f"request to {url} failed: {exc}", code=2)
    try:
        payload = response.json()
    except ValueError:
        _fail(f"the gateway answered {response.status_code} with a body that is not JSON", code=2)
    if response.status_code in (401, 403):
        _fail(
            f"the gateway refused the admin key ({error_message(payload)}); "
            "set SLUICEGATE_ADMIN_KEY",
            code=2,
        )
    if response.status_code >= 400:
        _fail("\n".join(problem_lines(payload)), code=1)
    return payload if isinstance(payload, dict) else {}


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
        _fail("\n".join(problem.format() for problem in problems), code=1)
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
def error_message(payload: Any) -> str:
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error or payload)


def problem_lines(payload: Any) -> list[str]:
    """`error: ...` then one line per problem (or the message alone)."""
    error = payload.get("error") if isinstance(payload, dict) else None
    problems = error.get("problems") if isinstance(error, dict) else None
    if not problems:
        return [f"error: {error_message(payload)}"]
    count = len(problems)
    head = f"error: config refused ({count} problem{'' if count == 1 else 's'}); nothing applied"
    return [head, *(f"  {_problem(problem)}" for problem in problems)]


def _problem(problem: dict[str, Any]) -> str:
    return Problem(
        str(problem.get("document") or "?"),
        problem.get("type"),
        str(problem.get("path") or ""),
        str(problem.get("message") or ""),
    ).format()


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
    """What a change did, one line per document, then the outcome."""
    lines = [
        f"  {d.get('action', ''):<9} {d.get('type')}/{d.get('name')}"
        for d in payload.get("documents", [])
    ]
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
        _fail(
            f"warning: version {payload.get('version')} is stored but is not live: {live_error}",
            code=1,
        )


def _fail(message: str, *, code: int) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code)


def _read(path: Path) -> str:
    if str(path) == "-":
        return sys.stdin.read()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"error: cannot read {path}: {exc}", code=1)


def _when(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return "-"
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"
