"""A PostgreSQL server of a test's own, to stop and start at will.

The PostgreSQL on 127.0.0.1:5432 is shared by every test (and other people): never stop
it. A test that needs the database to go away runs this one instead: `initdb` and `pg_ctl`
from /usr/lib/postgresql/*/bin into a temporary directory, on a free port, as the
`postgres` user when the tests run as root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support import IN_CI, free_port

_TIMEOUT_S = 60


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


class OwnPostgres:
    def __init__(self) -> None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            message = "PostgreSQL server binaries (/usr/lib/postgresql/*/bin) are not installed"
            if IN_CI:
                pytest.fail(f"{message}; under CI this is a failure, not a skip")
            pytest.skip(message)
        self._bin = bin_dir
        self.port = free_port()
        # Not under pytest's tmp_path: its parents are private to root, and the server
        # runs as `postgres`.
        self.root = Path(tempfile.mkdtemp(prefix="sluice-own-pg-"))
        self.data = self.root / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self._bin / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT_S)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}):\n{done.stdout}{done.stderr}")

    def init(self) -> OwnPostgres:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        return self

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self) -> None:
        """Fast shutdown: connections are cut, as when a database host goes down."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
