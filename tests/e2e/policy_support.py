"""Helpers for the policy end-to-end tests: config documents applied over HTTP or with the
CLI, chat calls with identity headers, ledger and budget reads, and a small notification
receiver (Slack / PagerDuty / webhook stand-in) on loopback that fails on cue."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.gateway import ADMIN_KEY, RunningGateway, run_cli

FIXTURES = Path(__file__).parent.parent / "policy" / "fixtures"
SEED_FILES = ("rate-limit-config.yaml", "budget-config.yaml", "ratelimiting-config.yaml")
CLI_USER = "policy-tester"
# Keeps a document set non-empty when a test replaces the whole config.
PLACEHOLDER = "name: placeholder\ntype: gateway-notification-targets\ntargets: {}\n"


def uid() -> str:
    return uuid.uuid4().hex[:8]


def seed_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def replace_config(gateway: RunningGateway, *documents: str) -> dict:
    """Make these documents the whole config (a new version); returns the apply result."""
    body = "\n---\n".join([PLACEHOLDER, *documents])
    response = gateway.admin.post(
        "/api/config",
        content=body,
        params={"replace": "true"},
        headers={"content-type": "application/yaml"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["live_error"] is None, response.json()
    return response.json()


def cli(
    gateway: RunningGateway, *args: str, columns: int = 250
) -> subprocess.CompletedProcess[str]:
    """The CLI run by CLI_USER (the name a config version records as who applied it)."""
    return run_cli(gateway, *args, columns=columns, env={"USER": CLI_USER, "LOGNAME": CLI_USER})


# One pooled client for every call (thread-safe): building a client per call costs more
# than the gateway takes to answer, and would slow the concurrent tests down.
_HTTP = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=100))


def chat(
    gateway: RunningGateway | str,
    key: str,
    *,
    model: str = "gpt-4o-mini",
    max_tokens: int = 16,
    content: str = "hi",
    timeout: float = 30,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    url = gateway if isinstance(gateway, str) else gateway.url
    return _HTTP.post(
        url + "/v1/chat/completions",
        timeout=timeout,
        json={
            "model": model,
            "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": content}],
        },
        headers={"authorization": f"Bearer {key}", **(headers or {})},
    )


def hammer(calls: list[Callable[[], httpx.Response]], workers: int = 32) -> list[httpx.Response]:
    """Run the calls concurrently (threads, one request each); responses in call order."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda call: call(), calls))


def budget_rows(gateway: RunningGateway | str, budget_id: str) -> dict[str, dict]:
    """GET /api/budgets for one budget: window label -> row."""
    url = gateway if isinstance(gateway, str) else gateway.url
    response = _HTTP.get(
        url + "/api/budgets", timeout=10, headers={"authorization": f"Bearer {ADMIN_KEY}"}
    )
    response.raise_for_status()
    return {r["window"]: r for r in response.json()["data"] if r["id"] == budget_id}


def rows_for(
    gateway: RunningGateway, responses: list[httpx.Response], timeout: float = 5.0
) -> list[dict]:
    """The ledger rows of these responses (every one must be there)."""
    wanted = {r.headers["x-sluice-request-id"] for r in responses}
    deadline = time.monotonic() + timeout
    while True:
        found = {
            r["request_id"]: r for r in gateway.requests(since="1h") if r["request_id"] in wanted
        }
        if len(found) == len(wanted):
            return [found[r.headers["x-sluice-request-id"]] for r in responses]
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(wanted) - len(found)} of {len(wanted)} requests are missing from the ledger"
            )
        time.sleep(0.05)


def events(row: dict) -> list[tuple[str, str]]:
    return [(e["rule_id"], e["action"]) for e in row["policy_events"]]


def wait_for(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def prices_doc(name: str, **models: tuple[float, float]) -> str:
    """A `gateway-providers` document with price overrides only (the default catalog
    stays): model -> (USD per million input tokens, per million output tokens)."""
    lines = [f"name: {name}", "type: gateway-providers", "prices:"]
    lines += [
        f"  {model}: {{input_mtok: {i}, output_mtok: {o}}}" for model, (i, o) in models.items()
    ]
    return "\n".join(lines) + "\n"


class Receiver:
    """A real HTTP endpoint on loopback standing in for Slack, PagerDuty and a webhook.
    The first `fail_first` posts to each path answer 500 (after `first_delay_s`)."""

    def __init__(self, fail_first: int = 1, first_delay_s: float = 0.0):
        self.fail_first = fail_first
        self.first_delay_s = first_delay_s
        self.hits: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    seen = sum(1 for h in receiver.hits if h["path"] == self.path)
                    receiver.hits.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": json.loads(body or b"null"),
                            "at": time.time(),
                        }
                    )
                failing = seen < receiver.fail_first
                if failing and receiver.first_delay_s:
                    time.sleep(receiver.first_delay_s)
                self.send_response(500 if failing else 202)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": false}' if failing else b'{"ok": true}')

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def bodies(self, path: str) -> list[Any]:
        with self._lock:
            return [h["body"] for h in self.hits if h["path"] == path]

    def __enter__(self) -> Receiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- replicas: several gateways on one database (and one Redis) -----------------------
def live_version(gateway: RunningGateway) -> int:
    """The config version a replica serves (its /readyz)."""
    ready = _HTTP.get(gateway.url + "/readyz", timeout=5).json()
    return int(ready["checks"]["config"]["version"] or 0)


def apply_everywhere(replicas: list[RunningGateway], *documents: str, timeout: float = 5) -> None:
    """Apply on the first replica; return once every replica serves that version."""
    version = replace_config(replicas[0], *documents)["version"]
    for gateway in replicas:
        wait_for(lambda g=gateway: live_version(g) >= version, timeout=timeout)


def known_everywhere(replicas: list[RunningGateway], key: str, timeout: float = 5) -> str:
    """Wait until every replica accepts a key just created on one of them."""
    for gateway in replicas:
        wait_for(
            lambda g=gateway: (
                _HTTP.get(
                    g.url + "/v1/models", timeout=5, headers={"authorization": f"Bearer {key}"}
                ).status_code
                == 200
            ),
            timeout=timeout,
        )
    return key


def project_rows(gateway: RunningGateway, project: str) -> list[dict]:
    """Every ledger row of a project in the last hour, page by page."""
    rows: list[dict] = []
    cursor = None
    while True:
        params = {"project": project, "since": "1h", "limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = gateway.admin.get("/api/requests", params=params)
        page.raise_for_status()
        rows += page.json()["data"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return rows
