"""Helpers for tests that run real servers on loopback and use the real PostgreSQL/Redis.

Under CI (`CI=true`) a missing PostgreSQL or Redis is a failure; on a laptop without them
the tests that need them skip with a message saying what is missing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager

import httpx
import pytest

POSTGRES_ADMIN_URL = os.environ.get(
    "SLUICEGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SLUICEGATE_TEST_REDIS", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unavailable(what: str, why: str):
    message = f"{what} is not reachable ({why})"
    if IN_CI:
        pytest.fail(f"{message}; under CI this is a failure, not a skip")
    pytest.skip(f"{message}; start it to run this test")


def _tcp_open(host: str, port: int) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=1):
            return None
    except OSError as exc:
        return str(exc)


def require_postgres() -> None:
    problem = _tcp_open("127.0.0.1", 5432)
    if problem:
        _unavailable("PostgreSQL on 127.0.0.1:5432", problem)


def require_redis() -> None:
    problem = _tcp_open("127.0.0.1", 6379)
    if problem:
        _unavailable("Redis on 127.0.0.1:6379", problem)


@contextmanager
def fresh_postgres_database():
    """Create an empty database for one test module and drop it afterwards; yields its URL
    in SQLAlchemy form (postgresql://...)."""
    require_postgres()
    name = f"sluice_test_{uuid.uuid4().hex[:10]}"
    subprocess.run(
        ["psql", POSTGRES_ADMIN_URL, "-qc", f"CREATE DATABASE {name}"],
        check=True,
        capture_output=True,
    )
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        subprocess.run(
            ["psql", POSTGRES_ADMIN_URL, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
            capture_output=True,
        )


class ServerProcess:
    """A server started as a child process; its output goes to a log file that is printed
    when it fails to become ready."""

    def __init__(
        self,
        args: list[str],
        ready_url: str,
        env: dict[str, str] | None = None,
        timeout: float = 30.0,
        cwd: str | None = None,
    ):
        self.args = args
        self.cwd = cwd
        self.ready_url = ready_url
        self.env = {**os.environ, **(env or {})}
        self.timeout = timeout
        self.log = tempfile.NamedTemporaryFile(prefix="sluice-server-", suffix=".log", delete=False)
        self.proc: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        self.proc = subprocess.Popen(
            self.args, stdout=self.log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd
        )
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            try:
                if httpx.get(self.ready_url, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server not ready at {self.ready_url}:\n{self.output()}")

    def output(self) -> str:
        self.log.flush()
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()[-20000:]

    def stop(self, sig_timeout: float = 10.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(sig_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
