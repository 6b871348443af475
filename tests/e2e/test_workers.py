"""`serve --workers N` (issue 10, item 6): without Redis every worker would keep its own
counters (a limit admitting N times its value), so it is refused with a clear message;
with Redis the workers share one limit, and a fresh SQLite database is migrated once,
before the workers start, instead of by every worker at once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from tests.e2e.gateway import run_gateway
from tests.e2e.policy_support import chat, hammer, replace_config, uid, wait_for
from tests.support import REDIS_URL, free_port, require_redis

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis; its keys are deleted after."""
    require_redis()
    prefix = f"sgtest-workers-{uid()}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def test_more_than_one_worker_without_redis_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    database = tmp_path / "gw.db"
    args = [sys.executable, "-m", "sluicegate.cli.main", "serve", "--workers", "2"]
    args += ["--port", str(free_port()), "--database-url", f"sqlite:///{database}"]
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=60, env={"COLUMNS": "200", "PATH": ""}
    )
    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    assert "--workers" in message and "--redis-url" in message
    assert "own counters" in message
    assert not database.exists()  # refused before touching the database


@pytest.mark.parametrize("attempt", range(3))  # the race struck about one start in two
def test_workers_on_a_fresh_sqlite_database_start_and_share_one_limit(
    tmp_path: Path, redis_prefix: str, attempt: int
) -> None:
    database = f"sqlite:///{tmp_path}/fresh.db"  # never migrated: the race was here
    extra = ("--workers", "3", "--redis-url", REDIS_URL, "--redis-prefix", redis_prefix)
    with run_gateway(database, *extra) as gateway:
        u = uid()
        version = replace_config(
            gateway,
            f"""
name: per-minute-{u}
type: gateway-rate-limit-config
rules:
  - id: ten-{u}
    when: {{metadata: {{project: ten-{u}}}}}
    limit: {{requests: 10, window: 1m}}
""",
        )["version"]
        key = gateway.create_key(project=f"ten-{u}")["key"]

        def known() -> bool:  # to the worker that answers (each polls keys and config)
            models = httpx.get(
                gateway.url + "/v1/models", headers={"authorization": f"Bearer {key}"}
            )
            ready = httpx.get(gateway.url + "/readyz").json()["checks"]["config"]
            return models.status_code == 200 and ready["version"] >= version

        wait_for(lambda: all(known() for _ in range(20)), timeout=10)
        answers = hammer([lambda: chat(gateway, key) for _ in range(30)], workers=6)
        assert sorted(r.status_code for r in answers) == [200] * 10 + [429] * 20
        output = gateway.proc.output()
    assert "already exists" not in output and "Traceback" not in output
