"""A worker that dies is replaced (issue 11, item 4): `serve --workers 2`, one worker is
SIGKILLed (as the kernel's OOM killer would), the gateway keeps answering and a new
worker process takes the dead one's place."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.gateway import run_gateway
from tests.support import REDIS_URL, require_redis

pytestmark = [pytest.mark.redis]


def _workers(pid: int) -> set[int]:
    """The granian worker processes of the server `pid`: its children (forked, listed
    under whichever of its threads started them)."""
    workers: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            workers.update(int(c) for c in (task / "children").read_text().split())
        except FileNotFoundError:
            continue  # a thread that has just ended
    return workers


def _wait_workers(pid: int, count: int, timeout: float = 20.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = _workers(pid)
        if len(workers) == count:
            return workers
        time.sleep(0.1)
    raise AssertionError(f"expected {count} workers, found {_workers(pid)}")


def test_a_killed_worker_is_replaced_and_the_gateway_keeps_serving(tmp_path):
    require_redis()
    prefix = f"sgtest-respawn-{uuid.uuid4().hex[:8]}:"
    args = ("--workers", "2", "--redis-url", REDIS_URL, "--redis-prefix", prefix)
    try:
        with run_gateway(f"sqlite:///{tmp_path / 'sluicegate.db'}", *args) as gw:
            key = gw.create_key(user_id="rita", team="ops", project="respawn")["key"]
            assert gw.proc.proc is not None
            server = gw.proc.proc.pid
            before = _wait_workers(server, 2)
            victim = min(before)
            os.kill(victim, signal.SIGKILL)

            statuses = []
            deadline = time.monotonic() + 4
            with httpx.Client(base_url=gw.url, timeout=10) as client:
                while time.monotonic() < deadline:  # bounded: ~4 s of requests
                    response = client.post(
                        "/v1/chat/completions",
                        json={
                            "model": "gpt-4o-mini",
                            "messages": [{"role": "user", "content": "hi"}],
                        },
                        headers={"authorization": f"Bearer {key}"},
                    )
                    statuses.append(response.status_code)
                    time.sleep(0.02)
            assert statuses and set(statuses) == {200}, statuses

            after = _wait_workers(server, 2)
            assert victim not in after and after - before  # a new worker took its place
            assert gw.proc.proc.poll() is None  # the server is still up
            assert httpx.get(f"{gw.url}/healthz", timeout=5).status_code == 200
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
