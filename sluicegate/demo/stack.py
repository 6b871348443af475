"""`sluicegate demo --serve` (what `make demo` runs): the gateway as a child process
(`serve --emulator`, the ledger in a SQLite file here, the admin key in a 0600 file here),
waited for with a timeout, and stopped when the demo stops (Ctrl-C included)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


class GatewayDidNotStart(RuntimeError):
    pass


@contextmanager
def serving(
    port: int, database_url: str, admin_key_file: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The running gateway's base URL and process; the process is stopped on leaving."""
    args = [
        sys.executable,
        "-m",
        "sluicegate.cli.main",
        "serve",
        "--emulator",
        "--port",
        str(port),
        "--database-url",
        database_url,
        "--admin-key-file",
        str(admin_key_file),
    ]
    proc = subprocess.Popen(args)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url)
        yield url, proc
    finally:
        stop(proc)


def _wait_ready(proc: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise GatewayDidNotStart(f"the gateway exited with status {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise GatewayDidNotStart(f"the gateway was not ready at {url} within {READY_TIMEOUT_S:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the gateway flushes its ledger), then SIGKILL if it does not exit."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)


def wait_until_stopped(proc: subprocess.Popen[bytes]) -> int:
    """Until Ctrl-C (KeyboardInterrupt) or the gateway's own exit: its status."""
    return proc.wait()
