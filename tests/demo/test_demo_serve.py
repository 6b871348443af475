"""`sluicegate demo --serve` (what `make demo` runs) as a user runs it from a fresh
directory: the gateway on $PORT with traffic in it, the UI's URL and how to sign in
printed, running until Ctrl-C, which stops both; restarted, it reuses the admin key."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.support import free_port

REPO = Path(__file__).resolve().parents[2]
READY_LINE = "The gateway keeps running; Ctrl-C stops it."


def start(folder: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sluicegate.cli.main", "demo", "--serve", "--requests", "30",
         "--no-progress", "--admin-key-file", ".sluicegate-admin-key"],
        cwd=folder,
        env={**os.environ, "PORT": str(port), "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # Ctrl-C reaches the whole group, as in a terminal
    )  # fmt: skip


def until_ready(proc: subprocess.Popen[str], timeout: float = 60.0) -> str:
    """Its output up to the line saying it keeps running, read on a thread so that a
    demo that hangs silently still fails at the deadline."""
    assert proc.stderr is not None
    lines: queue.Queue[str] = queue.Queue()
    stream = proc.stderr
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    deadline, seen = time.monotonic() + timeout, []
    while not seen or READY_LINE not in seen[-1]:
        try:
            seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            raise AssertionError("not ready in time:\n" + "".join(seen)) from None
    return "".join(seen)


def interrupt(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=30)


def test_demo_serve_runs_on_port_until_ctrl_c_and_keeps_its_admin_key(tmp_path: Path) -> None:
    port = free_port()
    first = start(tmp_path, port)
    try:
        shown = until_ready(first)
        key = (tmp_path / ".sluicegate-admin-key").read_text().strip()
        assert (tmp_path / ".sluicegate-admin-key").stat().st_mode & 0o077 == 0
        assert f"Control room: http://127.0.0.1:{port}/ui/" in shown
        assert "sign in with the admin key in .sluicegate-admin-key" in shown
        rows = httpx.get(
            f"http://127.0.0.1:{port}/api/requests",
            headers={"authorization": f"Bearer {key}"},
            params={"since": "1h", "limit": 100},
            timeout=10,
        ).json()["data"]
        assert len(rows) == 30
    finally:
        interrupt(first)
    refused = None
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except httpx.ConnectError as exc:
        refused = exc
    assert refused is not None  # Ctrl-C stopped the gateway too

    again = start(tmp_path, port)
    try:
        until_ready(again)
        assert (tmp_path / ".sluicegate-admin-key").read_text().strip() == key
        answer = httpx.get(
            f"http://127.0.0.1:{port}/api/keys",
            headers={"authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert answer.status_code == 200
        assert len(answer.json()["data"]) == 9  # the users' keys were reused, not made again
    finally:
        interrupt(again)
