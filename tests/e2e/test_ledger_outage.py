"""No ledger row is lost to a database outage followed by a shutdown (issue 10, item 5).

A gateway on a PostgreSQL of the test's own: the database stops, traffic goes on, the
gateway gets SIGTERM, the database comes back and a new gateway starts from the same
directory. With no spool flag at all (the default), every request answered is in the
ledger: the rows waited on disk in ./sluicegate-spool/ and were replayed at start.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.e2e.gateway import ADMIN_KEY, RunningGateway
from tests.e2e.policy_support import chat, hammer, wait_for
from tests.own_postgres import OwnPostgres
from tests.support import ServerProcess, free_port

pytestmark = pytest.mark.postgres


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    server = OwnPostgres().init()
    server.start()
    try:
        yield server
    finally:
        server.close()


@contextmanager
def gateway_in(workdir: Path, database_url: str) -> Iterator[RunningGateway]:
    """`serve` started from `workdir`, with no spool flag: the default spool is there."""
    port = free_port()
    args = [sys.executable, "-m", "sluicegate.cli.main", "serve", "--emulator"]
    args += ["--port", str(port), "--database-url", database_url]
    proc = ServerProcess(
        args,
        f"http://127.0.0.1:{port}/healthz",
        env={"SLUICEGATE_ADMIN_KEY": ADMIN_KEY},
        cwd=str(workdir),
    )
    with proc:
        gateway = RunningGateway(f"http://127.0.0.1:{port}", proc)
        try:
            yield gateway
        finally:
            gateway.admin.close()


def ledger_checks(gateway: RunningGateway) -> dict:
    return httpx.get(gateway.url + "/readyz", timeout=5).json()["checks"]["ledger"]


def test_rows_taken_while_postgres_is_down_survive_sigterm_and_a_restart(
    own_postgres: OwnPostgres, tmp_path: Path
) -> None:
    answered: list[str] = []
    with gateway_in(tmp_path, own_postgres.url) as gateway:
        key = gateway.create_key(user_id="alice", project="durable")["key"]
        for _ in range(10):
            answered.append(chat(gateway, key).headers["x-sluice-request-id"])
        wait_for(lambda: len(gateway.requests()) == 10)

        own_postgres.stop()
        during = hammer([lambda: chat(gateway, key) for _ in range(300)], workers=8)
        assert [r.status_code for r in during] == [200] * 300
        answered += [r.headers["x-sluice-request-id"] for r in during]
        spool = wait_for(lambda: (c := ledger_checks(gateway))["spooled"] == 300 and c)
        assert spool["ok"] is False and spool["dropped"] == 0
        assert spool["spool"]["durable"] is True
        assert spool["spool"]["path"].startswith(str(tmp_path / "sluicegate-spool"))

        assert gateway.proc.proc is not None
        gateway.proc.proc.send_signal(signal.SIGTERM)
        assert gateway.proc.proc.wait(30) == 0
        assert "LOST" not in gateway.proc.output()

    own_postgres.start()
    with gateway_in(tmp_path, own_postgres.url) as restarted:
        wait_for(lambda: ledger_checks(restarted)["pending"] == 0, timeout=15)
        stored = {row["request_id"] for row in restarted.requests(project="durable")}
        assert stored == set(answered)
        assert ledger_checks(restarted)["dropped"] == 0
