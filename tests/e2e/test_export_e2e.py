"""Export against a real `sluicegate serve` (SQLite and PostgreSQL), as a user runs it:
`sluicegate ledger export` writes whole files chunk by chunk; a 200,000-row export streams
with the server's memory bounded by a page, not by the export; a client that hangs up
stops the export."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from sluicegate.analytics.rollups import rollup_deltas
from sluicegate.db.engine import create_engine_for
from sluicegate.ledger.sql_store import SqlLedgerStore
from tests.e2e.gateway import ADMIN_KEY, RunningGateway, run_cli, run_gateway
from tests.export.support import (
    START,
    DeltaRows,
    assert_csv_row_holds,
    assert_parquet_row_holds,
    awkward_records,
    csv_rows,
    delta_rows,
    in_key_order,
)
from tests.support import fresh_postgres_database

BIG = 200_000
BIG_START = START + 30 * 86400  # after the small ledger, so its windows leave them apart
PAGE = 5_000  # the export's page (export/reader.py)


@contextmanager
def _database(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if kind == "postgres":
        with fresh_postgres_database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('export') / 'sluicegate.db'}"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningGateway, str, DeltaRows]]:
    """A gateway whose ledger holds 600 awkward records (and their rollups) and 200,000
    plain ones a month later."""
    with _database(request.param, tmp_path_factory) as url, run_gateway(url) as gateway:
        deltas = asyncio.run(_fill(url))
        yield gateway, url, deltas


async def _fill(url: str) -> DeltaRows:
    engine = create_engine_for(url)
    try:
        records = awkward_records(600)
        store = SqlLedgerStore(engine)
        await store.write_batch(records)
        await store.close()
        deltas = delta_rows(rollup_deltas(records))  # what the store added as it wrote
        async with engine.begin() as conn:
            await conn.execute(_BIG_ROWS[conn.dialect.name], {"start": BIG_START, "n": BIG})
        return deltas
    finally:
        await engine.dispose()


_COLUMNS = (
    "request_id, ts, team, project, user_id, metadata, requested_model, model, provider, "
    "status_code, error_message, input_tokens, output_tokens, cost_usd, stream, "
    "attempt_count, fallback_used, retry_used, attempts, policy_events, guardrail_events, "
    "session_killed, client_disconnected, upstream_cancelled"
)
# 200,000 ledger rows of about 1 KB each, made by the database itself (fast)
_BIG_ROWS = {
    "sqlite": text(
        f"INSERT INTO requests ({_COLUMNS}) "
        "WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < :n - 1) "
        "SELECT 'big-' || printf('%07d', n), :start + n * 0.01, 'search', 'alpha', "
        "'u' || (n % 50), json_object('customer_id', 'c' || (n % 9)), 'gpt-4o', 'gpt-4o', "
        "'openai', 200, replace(hex(zeroblob(500)), '0', 'x'), n, 7, 0.001, 0, 1, 0, 0, "
        "'[]', '[]', '[]', 0, 0, 0 FROM s"
    ),
    "postgresql": text(
        f"INSERT INTO requests ({_COLUMNS}) "
        "SELECT 'big-' || lpad(n::text, 7, '0'), :start + n * 0.01, 'search', 'alpha', "
        "'u' || (n % 50), jsonb_build_object('customer_id', 'c' || (n % 9)), 'gpt-4o', "
        "'gpt-4o', 'openai', 200, repeat('x', 1000), n, 7, 0.001, false, 1, false, false, "
        "'[]', '[]', '[]', false, false, false FROM generate_series(0, :n - 1) AS n"
    ),
}


def _cli(gateway: RunningGateway, *args: str, key: str | None = ADMIN_KEY) -> Any:
    """`sluicegate ledger export ARGS...` in a default-width terminal (its messages must
    not wrap there)."""
    return run_cli(gateway, "ledger", "export", *args, credential=key, columns=80, timeout=300)


# -- the CLI ------------------------------------------------------------------------------------


def test_cli_exports_a_window_in_chunks_into_one_csv_file(
    served: tuple[RunningGateway, str, DeltaRows], tmp_path: Path
) -> None:
    gateway, _, _ = served
    since, until = START + 3600, START + 80000
    expected = in_key_order(
        [r for r in awkward_records(600) if r.team == "search" and since <= r.ts < until]
    )
    out = tmp_path / "requests.csv"
    done = _cli(
        gateway,
        *("--since", str(since), "--until", str(until), "--filter", "team=search"),
        *("--chunk-rows", "40", "-o", str(out)),
    )
    assert done.returncode == 0, done.stderr
    assert f"requests: {len(expected):,} rows written to {out}" in done.stderr
    assert not out.with_name("requests.csv.part").exists()
    header, rows = csv_rows(out.read_bytes())  # one header row, every chunk's rows
    assert [row["request_id"] for row in rows] == [r.request_id for r in expected]
    for row, record in zip(rows, expected, strict=True):
        assert_csv_row_holds(row, record)


def test_cli_joins_parquet_chunks_into_one_file(
    served: tuple[RunningGateway, str, DeltaRows], tmp_path: Path
) -> None:
    gateway, _, _ = served
    expected = in_key_order([r for r in awkward_records(600) if r.user_id == "u1"])
    out = tmp_path / "u1.parquet"
    done = _cli(
        gateway,
        *("--format", "parquet", "--filter", "user_id=u1", "--until", str(BIG_START)),
        *("--chunk-rows", "50", "-o", str(out)),
    )
    assert done.returncode == 0, done.stderr
    parquet = pq.ParquetFile(out)
    rows = parquet.read().to_pylist()
    assert [row["request_id"] for row in rows] == [r.request_id for r in expected]
    for row, record in zip(rows, expected, strict=True):
        assert_parquet_row_holds(row, record)
    assert parquet.metadata.num_row_groups == -(-len(expected) // 50)
    assert not list(tmp_path.glob("u1.parquet.*"))  # no chunk or part left behind


class CuttingProxy:
    """A loopback TCP proxy to the gateway that drops its first connection after
    `after` bytes of answer: a transfer broken off half-way, as a flaky network does."""

    def __init__(self, target: str, after: int) -> None:
        host, port = target.removeprefix("http://").split(":")
        self._target = (host, int(port))
        self._after = after
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            limit = self._after if self.cuts == 0 else None
            self.cuts += limit is not None
            threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, limit), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while data := source.recv(65536):
                if limit is not None and sent + len(data) >= limit:
                    sink.sendall(data[: limit - sent])
                    break
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self._listener.close()


def test_cli_fetches_a_broken_off_chunk_again_and_keeps_every_row_once(
    served: tuple[RunningGateway, str, DeltaRows], tmp_path: Path
) -> None:
    gateway, _, _ = served
    expected = in_key_order(awkward_records(600))
    proxy = CuttingProxy(gateway.url, after=50_000)  # inside the second chunk of ~20 KB
    out = tmp_path / "all.csv"
    try:
        done = _cli(
            gateway,
            *("--until", str(BIG_START), "--chunk-rows", "40", "-o", str(out), "--url", proxy.url),
        )
    finally:
        proxy.close()
    assert done.returncode == 0, done.stderr
    assert proxy.cuts == 1 and "fetching this chunk again" in done.stderr
    _, rows = csv_rows(out.read_bytes())
    assert [row["request_id"] for row in rows] == [r.request_id for r in expected]


def test_cli_exports_a_rollup_and_says_what_is_wrong(
    served: tuple[RunningGateway, str, DeltaRows], tmp_path: Path
) -> None:
    gateway, _, deltas = served
    out = tmp_path / "usage.csv"
    done = _cli(gateway, "--what", "usage", "--grain", "day", "--chunk-rows", "7", "-o", str(out))
    assert done.returncode == 0, done.stderr
    _, rows = csv_rows(out.read_bytes())
    day_rows = {k: r for k, r in deltas.usage.items() if r["grain"] == "day"}
    assert sorted(row["id"] for row in rows) == sorted(day_rows)
    for row in rows:
        assert int(row["requests"]) == day_rows[row["id"]]["requests"]

    typo = _cli(gateway, "--filter", "teem=search", "-o", str(tmp_path / "x.csv"))
    assert typo.returncode == 1 and "unknown parameter 'teem'" in typo.stderr
    no_key = _cli(gateway, "-o", str(tmp_path / "y.csv"), key=None)
    assert no_key.returncode == 2 and "SLUICEGATE_ADMIN_KEY is not set" in no_key.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["usage.csv"]  # no half files


# -- a large export -----------------------------------------------------------------------------


def _worker_pid(gateway: RunningGateway) -> int:
    """The granian worker serving requests (a child of the serve process)."""
    assert gateway.proc.proc is not None
    main = gateway.proc.proc.pid
    children = Path(f"/proc/{main}/task/{main}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def _peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert match
    return int(match.group(1))


def _download(gateway: RunningGateway, **params: str) -> tuple[int, bytes, httpx.Headers]:
    """Stream an export, keeping its size and its last bytes only."""
    size, tail = 0, b""
    with httpx.stream(
        "GET",
        f"{gateway.url}/api/export/requests",
        params=params,
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        timeout=120,
    ) as response:
        assert response.status_code == 200, response.read()
        for chunk in response.iter_raw():
            size += len(chunk)
            tail = (tail + chunk)[-(1 << 20) :]
        return size, tail, response.headers


def test_a_200k_row_export_streams_with_memory_bounded_by_a_page(
    served: tuple[RunningGateway, str, DeltaRows], tmp_path: Path
) -> None:
    gateway, url, _ = served
    parquet = url.startswith("postgresql")  # CSV on SQLite, Parquet on PostgreSQL
    export_format = "parquet" if parquet else "csv"
    window = {"since": str(BIG_START), "format": export_format}
    worker = _worker_pid(gateway)
    _download(gateway, **window, limit=str(2 * PAGE))  # warm: pyarrow loaded, pages sized
    before = _peak_rss_kib(worker)
    if parquet:
        out = tmp_path / "big.parquet"
        with (
            out.open("wb") as sink,
            httpx.stream(
                "GET",
                f"{gateway.url}/api/export/requests",
                params=window,
                headers={"authorization": f"Bearer {ADMIN_KEY}"},
                timeout=120,
            ) as response,
        ):
            headers = response.headers
            for chunk in response.iter_raw():
                sink.write(chunk)
        grown = _peak_rss_kib(worker) - before
        file = pq.ParquetFile(out)
        assert file.metadata.num_rows == BIG
        assert file.metadata.num_row_groups == BIG // PAGE
        # in memory, one page of these rows is ~5 MB of Arrow data; all of them ~190 MiB
        whole = file.read(columns=["error_message"]).nbytes // 1024
        assert whole > 150 * 1024
    else:
        size, tail, headers = _download(gateway, **window)
        grown = _peak_rss_kib(worker) - before
        assert tail.endswith(b"\r\n") and b"big-0199999," in tail
        whole = size // 1024
        assert whole > 200 * 1024  # more than 200 MiB went out
    assert headers["x-sluice-export-rows"] == str(BIG)
    assert headers["x-sluice-export-complete"] == "true"
    assert grown < 64 * 1024, f"peak RSS grew {grown} KiB exporting {whole} KiB"


def _log_since(log: Path, offset: int) -> str:
    with log.open("rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


def test_a_client_that_hangs_up_stops_the_export(
    served: tuple[RunningGateway, str, DeltaRows],
) -> None:
    gateway, _, _ = served
    log = Path(gateway.proc.log.name)
    logged = log.stat().st_size  # what earlier tests' exports logged is not this
    with httpx.stream(
        "GET",
        f"{gateway.url}/api/export/requests",
        params={"since": str(BIG_START)},
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        timeout=60,
    ) as response:
        for _ in response.iter_raw():
            break  # then the connection is closed
    deadline = time.monotonic() + 20
    pattern = re.compile(r"stopped after (\d+) of (\d+) rows: the client left")
    while not (found := pattern.findall(_log_since(log, logged))):
        assert time.monotonic() < deadline, gateway.proc.output()[-3000:]
        time.sleep(0.1)
    sent, planned = map(int, found[-1])
    assert planned == BIG and sent < BIG // 4
