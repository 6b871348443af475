"""`sluicegate ledger ...`: the request ledger as a whole. `rebuild-rollups` recomputes the
rollup tables from the ledger; `export` streams rows out (cli/export_cmd.py).

The rebuild runs against the database directly (not through a gateway), and is safe while gateways
write to it: see sluicegate/analytics/rebuild.py and docs/analytics.md ("Rollups").
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from sluicegate.analytics.rebuild import RebuildReport, RollupRebuild
from sluicegate.cli.export_cmd import export_command
from sluicegate.db.engine import async_url, create_engine_for, is_memory_sqlite
from sluicegate.db.migrate import current_revision, head_revision
from sluicegate.errors import SluiceError

ledger_app = typer.Typer(
    help="The request ledger: export it, rebuild its rollups.", no_args_is_help=True
)
ledger_app.command("export")(export_command)
out = Console(stderr=True)

PHASES = {"rows": "hour and day rows", "sessions": "sessions"}


class RateColumn(ProgressColumn):
    """Items a second, as measured over the last seconds."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-/s" if speed is None else f"{speed:,.0f}/s", style="progress.data.speed")


def parse_day(value: str) -> float:
    """A UTC day (YYYY-MM-DD), an ISO 8601 time or unix seconds, as unix seconds (the
    rebuild starts at the UTC midnight on or before it)."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a day (YYYY-MM-DD), an ISO 8601 time or unix seconds"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@ledger_app.command("rebuild-rollups")
def rebuild_rollups(
    database_url: str = typer.Option(
        "sqlite:///./sluicegate.db",
        "--database-url",
        envvar="SLUICEGATE_DATABASE_URL",
        help="sqlite:///PATH or postgresql://... (the gateway's database)",
    ),
    since: str = typer.Option(
        None,
        "--since",
        help="Rebuild hour and day rows from this UTC day on (YYYY-MM-DD), and the "
        "sessions with a request since; default: everything",
    ),
) -> None:
    """Recompute every rollup table from the ledger (safe while gateways write)."""
    start = parse_day(since) if since is not None else None
    try:
        if is_memory_sqlite(async_url(database_url)):
            _fail("an in-memory SQLite database has no ledger to rebuild from")
        report = asyncio.run(_rebuild(database_url, start))
    except SluiceError as exc:  # unreachable database, bad URL, a piece that never got its lock
        _fail(exc.message)
    _summary(report)


async def _rebuild(database_url: str, since: float | None) -> RebuildReport:
    engine = create_engine_for(database_url)
    try:
        revision, head = await current_revision(engine), head_revision()
        if revision != head:
            where = "has no sluicegate schema" if revision is None else f"is at {revision}"
            _fail(
                f"the database {where}; this sluicegate needs revision {head}: "
                "start `sluicegate serve` on it once (it migrates), then run this again"
            )
        with Progress(
            TextColumn("{task.description:<18}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=out,
        ) as progress:
            tasks = {
                phase: progress.add_task(label, total=None, start=False)
                for phase, label in PHASES.items()
            }

            def advance(phase: str, done: int, total: int) -> None:
                task = tasks[phase]
                progress.start_task(task)
                progress.update(task, completed=done, total=max(total, done))

            return await RollupRebuild(engine, progress=advance).run(since)
    finally:
        await engine.dispose()


def _summary(report: RebuildReport) -> None:
    scope = (
        "everything"
        if report.since is None
        else f"from {datetime.fromtimestamp(report.since, tz=UTC):%Y-%m-%d} (UTC)"
    )
    keys = ", ".join(report.metadata_keys) or "none configured"
    out.print(
        f"rebuilt rollups ({scope}): {report.rows:,} ledger rows, {report.sessions:,} "
        f"sessions, in {report.seconds:.1f} s; metadata keys: {keys}",
        soft_wrap=True,
    )
    for note in report.notes:
        out.print(f"[bold yellow]note:[/] {note}", soft_wrap=True)


def _fail(message: str) -> NoReturn:
    out.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(1)
