"""A real gateway process on loopback, driven through its HTTP API like a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from contextlib import contextmanager

import httpx

from tests.support import ServerProcess, free_port

ADMIN_KEY = "test-admin-key-0123456789"


class RunningGateway:
    def __init__(self, url: str, proc: ServerProcess):
        self.url = url
        self.proc = proc
        self.admin = httpx.Client(
            base_url=url, timeout=30, headers={"authorization": f"Bearer {ADMIN_KEY}"}
        )

    def create_key(self, **fields) -> dict:
        response = self.admin.post("/api/keys", json=fields)
        response.raise_for_status()
        return response.json()

    def requests(self, **filters) -> list[dict]:
        response = self.admin.get("/api/requests", params={"limit": 1000, **filters})
        response.raise_for_status()
        return response.json()["data"]

    def request_row(self, request_id: str, timeout: float = 5.0) -> dict:
        """The ledger row of one request (streams are recorded just after they end)."""
        deadline = time.monotonic() + timeout
        while True:
            rows = [r for r in self.requests(since="1h") if r["request_id"] == request_id]
            if rows:
                return rows[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"{request_id} is not in the ledger")
            time.sleep(0.05)

    def session_rows(self, session_id: str, count: int = 1, timeout: float = 5.0) -> list[dict]:
        """Ledger rows of one session, once `count` of them have landed."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.requests(session_id=session_id)
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)

    def set_faults(self, faults: dict) -> None:
        httpx.put(
            f"{self.url}/emulator/_emulator/faults", json=faults, timeout=10
        ).raise_for_status()

    def clear_faults(self) -> None:
        httpx.delete(f"{self.url}/emulator/_emulator/faults", timeout=10).raise_for_status()

    def apply(self, yaml_text: str) -> dict:
        response = self.admin.post(
            "/api/config", content=yaml_text, headers={"content-type": "application/yaml"}
        )
        assert response.status_code == 200, response.text
        return response.json()


@contextmanager
def run_gateway(database_url: str, *extra: str, env: dict | None = None, emulator: bool = True):
    """`serve` in a child process. The e2e tests call providers through the gateway's
    mounted emulator, so it is started with `--emulator` unless `emulator=False` (what a
    production `serve` is)."""
    port = free_port()
    spool = tempfile.mkdtemp(prefix="sluice-spool-")  # not ./sluicegate-spool in the repo
    args = [
        sys.executable,
        "-m",
        "sluicegate.cli.main",
        "serve",
        "--port",
        str(port),
        "--database-url",
        database_url,
        "--spool-dir",
        spool,
        *(["--emulator"] if emulator else []),
        *extra,
    ]
    proc = ServerProcess(
        args,
        f"http://127.0.0.1:{port}/readyz",
        env={"SLUICEGATE_ADMIN_KEY": ADMIN_KEY, **(env or {})},
    )
    with proc:
        gateway = RunningGateway(f"http://127.0.0.1:{port}", proc)
        try:
            yield gateway
        finally:
            gateway.admin.close()
    shutil.rmtree(spool, ignore_errors=True)


def run_cli(
    gateway: RunningGateway,
    *args: str,
    credential: str | None = ADMIN_KEY,
    columns: int = 300,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """`sluicegate ARGS...` as a user runs it against `gateway` (its URL and credential
    from the environment, `env` on top; a wide terminal unless `columns` says otherwise).
    No `credential`: none at all, not even one the test run's own environment holds."""
    environment = {
        **os.environ,
        "SLUICEGATE_URL": gateway.url,
        "COLUMNS": str(columns),
        **(env or {}),
    }
    environment.pop("SLUICEGATE_ADMIN_KEY", None)
    if credential is not None:
        environment["SLUICEGATE_ADMIN_KEY"] = credential
    return subprocess.run(
        [sys.executable, "-m", "sluicegate.cli.main", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
