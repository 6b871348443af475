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

from tests.e2e.gateway import RunningGateway, run_gateway
from tests.support import REDIS_URL, fresh_postgres_database, require_redis

# Several workers share their stores as replicas do: Redis and PostgreSQL (SQLite has no
# lock around the start-up migration that two workers run at once).
pytestmark = [pytest.mark.redis, pytest.mark.postgres]


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


def _wait_started(gw: RunningGateway, count: int, timeout: float = 30.0) -> None:
    """Until `count` workers have finished starting (each logs its live config version):
    a process that exists is not yet one that serves."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gw.proc.output().count("config version 0 is live") >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} workers started:\n{gw.proc.output()}")


def _wait_gone(pid: int, timeout: float = 5.0) -> None:
    """Until `pid` has died (gone, or a zombie its parent has not reaped yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.02)
    raise AssertionError(f"worker {pid} survived SIGKILL")


def _chat(client: httpx.Client, key: str) -> int:
    """The status of one chat call; 0 when the gateway could not be reached."""
    try:
        return client.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {key}"},
        ).status_code
    except httpx.TransportError:
        return 0


def test_a_killed_worker_is_replaced_and_the_gateway_keeps_serving():
    require_redis()
    prefix = f"sgtest-respawn-{uuid.uuid4().hex[:8]}:"
    args = ("--workers", "2", "--redis-url", REDIS_URL, "--redis-prefix", prefix)
    try:
        with fresh_postgres_database() as database_url, run_gateway(database_url, *args) as gw:
            key = gw.create_key(user_id="rita", team="ops", project="respawn")["key"]
            assert gw.proc.proc is not None
            server = gw.proc.proc.pid
            _wait_started(gw, 2)
            time.sleep(1.5)  # each worker reloads keys every 0.5 s: both know the new one
            before = _wait_workers(server, 2)
            victim = min(before)
            os.kill(victim, signal.SIGKILL)
            _wait_gone(victim)  # a request racing the kill itself is lost with the worker

            statuses = []
            deadline = time.monotonic() + 4
            with httpx.Client(base_url=gw.url, timeout=10) as client:
                while time.monotonic() < deadline:  # bounded: ~4 s of requests
                    statuses.append(_chat(client, key))
                    time.sleep(0.02)
            assert statuses and set(statuses) == {200}, (statuses, gw.proc.output()[-3000:])

            _wait_started(gw, 3)  # the replacement has started
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
