"""`sluicegate ledger export`: a whole export into one file, chunk by chunk.

Each chunk is one `GET /api/export/...` of at most `--chunk-rows` rows; the next starts
at the cursor the previous one's headers gave, until the gateway says it is complete. A
chunk cut off on the way (connection dropped, gateway busy or restarting) is fetched
again from its own cursor after what it wrote is dropped, so every row lands once. The
file is written as FILE.part and renamed to FILE when whole. CSV chunks after the first
lose their header row; Parquet chunks are joined with pyarrow (only needed when there is
more than one).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import httpx
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from sluicegate.cli import admin_client
from sluicegate.cli.admin_client import DEFAULT_URL, UrlOption, check_answer, fail
from sluicegate.cli.export_sinks import SINKS, ChunkSink
from sluicegate.export.sources import SOURCES

WHATS = tuple(SOURCES)  # requests, then the rollup tables
MAX_CHUNK_ROWS = 1_000_000  # the gateway's most for one export
ATTEMPTS = 5  # per chunk
TIMEOUT = httpx.Timeout(10.0, read=300.0)  # a chunk's plan may take a while to start
_RELATIVE = re.compile(r"^(\d{1,9})([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

err = Console(stderr=True, soft_wrap=True)  # paths and cursors stay whole


class _Retry(Exception):
    """This chunk failed in a way that fetching it again may cure."""


@dataclass(frozen=True, slots=True)
class ChunkAnswer:
    cursor: str | None
    complete: bool
    rows: int


def export_command(
    output: Path = typer.Option(..., "-o", "--output", help="The file to write."),
    what: str = typer.Option(
        "requests", "--what", help=f"What to export: {', '.join(WHATS)} (the last four: rollups)"
    ),
    export_format: str = typer.Option("csv", "--format", help="csv or parquet"),
    since: str = typer.Option(None, "--since", help="ISO time, unix seconds, or an age: 7d"),
    until: str = typer.Option(None, "--until", help="ISO time, unix seconds, or an age"),
    grain: str = typer.Option(None, "--grain", help="Rollups: hour (default) or day"),
    filters: list[str] = typer.Option(
        None, "--filter", help="KEY=VALUE, repeatable: team=search, status=5xx, ..."
    ),
    cursor: str = typer.Option(None, "--cursor", help="Start after an earlier export's end"),
    chunk_rows: int = typer.Option(
        MAX_CHUNK_ROWS, "--chunk-rows", min=1, max=MAX_CHUNK_ROWS, help="Rows per request"
    ),
    url: UrlOption = DEFAULT_URL,
) -> None:
    """Export ledger rows or rollups from a running gateway into one CSV or Parquet file,
    resuming chunk after chunk until the window is done (docs/export.md)."""
    if what not in WHATS:
        raise typer.BadParameter(f"--what must be one of {', '.join(WHATS)}")
    if export_format not in SINKS:
        raise typer.BadParameter(f"--format must be one of {', '.join(SINKS)}")
    path = "/api/export/requests" if what == "requests" else f"/api/export/rollups/{what}"
    params: dict[str, str] = {
        "format": export_format,
        "limit": str(chunk_rows),
        **_filter_params(filters or []),
        **_absolute("since", since),  # once: every chunk has the same window
        **_absolute("until", until),
        **({"grain": grain} if grain else {}),
    }
    sink = SINKS[export_format](output)
    rows, last = _run(path, params, cursor, sink, url, what)
    err.print(f"{what}: {rows:,} rows written to {output}")
    if last:
        err.print(f"to export what lands after them later: --cursor {last}")


def _run(
    path: str, params: dict[str, str], cursor: str | None, sink: ChunkSink, url: str, what: str
) -> tuple[int, str | None]:
    """Chunks until the gateway says complete: (rows, the cursor after the last)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows  {task.fields[size]}"),
        TimeElapsedColumn(),
    )
    rows = 0
    try:
        with (
            Progress(*columns, console=err, transient=True) as progress,
            admin_client.open_client(url, TIMEOUT) as client,
        ):
            task = progress.add_task(f"export {what}", total=None, size="")
            while True:
                params_now = {**params, **_cursor(cursor)}
                answer = _chunk(client, path, params_now, sink, progress, task)
                rows += answer.rows
                if answer.complete:
                    break
                cursor = answer.cursor
    except BaseException:
        sink.abandon()  # a refused or interrupted export leaves no half file (unless kept)
        raise
    sink.finish()
    return rows, answer.cursor


def _chunk(
    client: httpx.Client,
    path: str,
    params: dict[str, str],
    sink: ChunkSink,
    progress: Progress,
    task: TaskID,
) -> ChunkAnswer:
    """One chunk, fetched again (from the same cursor) when it fails on the way."""
    done = int(progress.tasks[task].completed)
    for attempt in range(1, ATTEMPTS + 1):
        sink.start_chunk()
        try:
            answer = _download(client, path, params, sink, progress, task, done)
        except _Retry as exc:
            sink.discard_chunk()
            progress.update(task, completed=done)
            if attempt == ATTEMPTS:
                _give_up(params, sink, str(exc))
            wait = min(2.0 ** (attempt - 1), 30.0)
            err.print(f"{exc}; fetching this chunk again in {wait:.0f} s")
            time.sleep(wait)
            continue
        sink.end_chunk(answer.complete)
        progress.update(task, completed=done + answer.rows)
        return answer
    raise AssertionError("unreachable")


def _download(
    client: httpx.Client,
    path: str,
    params: dict[str, str],
    sink: ChunkSink,
    progress: Progress,
    task: TaskID,
    done: int,
) -> ChunkAnswer:
    try:
        with client.stream("GET", path, params=params) as response:
            if response.status_code >= 400:
                _refused(response)
            answer = ChunkAnswer(
                cursor=response.headers.get("x-sluice-export-cursor"),
                complete=response.headers.get("x-sluice-export-complete") == "true",
                rows=int(response.headers.get("x-sluice-export-rows", "0")),
            )
            # the whole is known once a chunk says it is the last
            progress.update(task, total=done + answer.rows if answer.complete else None)
            for data in response.iter_bytes():
                sink.write(data)
                seen = min(sink.rows_in_chunk, answer.rows)
                progress.update(task, completed=done + seen, size=_size(sink.written_bytes))
    except httpx.ConnectError as exc:
        if done == 0 and sink.written_bytes == 0:  # never reached: say so at once
            fail(f"cannot reach the gateway at {client.base_url}: is it running?", code=2)
        raise _Retry(f"the gateway went away ({exc})") from exc  # restarting, perhaps
    except httpx.TransportError as exc:  # cut off, timed out: fetch the chunk again
        raise _Retry(f"the transfer broke off ({type(exc).__name__}: {exc})") from exc
    return answer


def _size(count: int) -> str:
    return f"{count / 1e6:,.1f} MB"


def _refused(response: httpx.Response) -> NoReturn:
    response.read()
    status = response.status_code
    if status in (502, 503, 504):
        raise _Retry(f"the gateway answered {status}")
    try:
        payload = response.json()
    except ValueError:
        fail(f"the gateway answered {status} with a body that is not JSON", code=2)
    check_answer(status, payload)
    fail(f"the gateway answered {status}", code=1)


def _give_up(params: dict[str, str], sink: ChunkSink, why: str) -> None:
    kept = sink.keep_partial()
    start = params.get("cursor")
    resume = f"--cursor {start}" if start else "the same command"
    fail(f"export failed: {why}; {kept}. Resume with {resume}", code=2)


def _filter_params(filters: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in filters:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"--filter {item!r}: use KEY=VALUE, e.g. team=search")
        params[name] = value
    return params


def _absolute(name: str, value: str | None) -> dict[str, str]:
    """An age (7d) as unix seconds now, so that the window stays put across chunks."""
    if not value:
        return {}
    match = _RELATIVE.match(value)
    if match:
        return {name: repr(time.time() - int(match.group(1)) * _UNIT_SECONDS[match.group(2)])}
    return {name: value}


def _cursor(cursor: str | None) -> dict[str, str]:
    return {"cursor": cursor} if cursor else {}
