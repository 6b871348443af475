"""Slow and hostile clients, overload and departed clients, through a real gateway on
loopback (issue 11, items 1 and 2). Every wait is bounded: sockets have timeouts, slow
upstreams are emulator faults of a few seconds at most.

The gateway runs with small limits so that a handful of requests saturate it:
one worker, 2 model calls in flight, 1 queued for at most 1 s, headers within 1 s and
bodies within 1 s. Each test uses its own upstream model names, so the emulator's request
counts tell them apart; the ledger is checked on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.gateway import ADMIN_KEY, RunningGateway, run_gateway
from tests.e2e.routing_support import providers_yaml
from tests.support import fresh_postgres_database

LIMITS = (
    "--header-timeout",
    "1",
    "--body-timeout",
    "1",
    "--max-in-flight",
    "2",
    "--max-queued",
    "1",
    "--queue-timeout-ms",
    "1000",
)


MODELS = ("ov-slow", "ov-slow-q", "ov-hold", "ov-departed", "ov-cancel", "ov-half")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def gw(request, tmp_path_factory) -> Iterator[RunningGateway]:
    """The emulated accounts, with this module's upstream model names served by openai."""
    if request.param == "sqlite":
        db = tmp_path_factory.mktemp("overload") / "sluicegate.db"
        with run_gateway(f"sqlite:///{db}", *LIMITS) as gateway:
            yield _with_models(gateway)
    else:
        with fresh_postgres_database() as url, run_gateway(url, *LIMITS) as gateway:
            yield _with_models(gateway)


def _with_models(gateway: RunningGateway) -> RunningGateway:
    models = "".join(f"  {name}: {{provider: openai}}\n" for name in MODELS)
    gateway.apply(providers_yaml(gateway.url).replace("models:\n", "models:\n" + models))
    return gateway


@pytest.fixture(scope="module")
def key(gw) -> str:
    return gw.create_key(user_id="olive", team="ops", project="overload")["key"]


@pytest.fixture(autouse=True)
def _no_faults(gw):
    gw.clear_faults()
    _wait_admission(gw, 0)  # each test starts on an idle worker
    yield
    gw.clear_faults()


def _port(gw: RunningGateway) -> int:
    return int(gw.url.rsplit(":", 1)[1])


def _body(model: str) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()


def _head(path: str, key: str, length: int, session: str = "") -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        f"Authorization: Bearer {key}",
        "Content-Type: application/json",
        f"Content-Length: {length}",
    ]
    if session:
        lines.append(f"X-Sluice-Session-Id: {session}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_all(sock: socket.socket, limit_s: float) -> bytes:
    """Everything the gateway sends until it closes the connection (or `limit_s`)."""
    sock.settimeout(limit_s)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
            if b"\r\n\r\n" in data and _complete(data):
                break
    except TimeoutError:
        pass
    return data


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def _emulator_count(gw: RunningGateway, model: str) -> int:
    stats = httpx.get(f"{gw.url}/emulator/_emulator/stats", timeout=10).json()
    return int(stats["requests"].get(model, 0))


def _chat(gw: RunningGateway, key: str, model: str, **kw) -> httpx.Response:
    return httpx.post(
        f"{gw.url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {key}", **kw.pop("headers", {})},
        timeout=kw.pop("timeout", 15),
    )


def _in_background(fn, *args) -> threading.Thread:
    thread = threading.Thread(target=fn, args=args, daemon=True)
    thread.start()
    return thread


def _wait_admission(gw: RunningGateway, in_flight: int, queued: int = 0) -> None:
    """Until the worker reports that many calls in flight and queued (bounded: 5 s)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        stats = httpx.get(f"{gw.url}/readyz", timeout=1).json()["checks"]["admission"]
        if (stats["in_flight"], stats["queued"]) == (in_flight, queued):
            return
        time.sleep(0.02)
    raise AssertionError(f"admission never reached {in_flight} in flight, {queued} queued")


def _session_rows(gw: RunningGateway, session: str, timeout: float = 8.0) -> list[dict]:
    return gw.session_rows(session, 1, timeout=timeout)


# --- item 1: slow and half-sent requests ---------------------------------------------------
def test_slow_header_and_slow_body_clients_are_cut_off_while_others_are_served(gw, key):
    session = "ov-body-" + uuid.uuid4().hex[:8]
    slow_header = socket.create_connection(("127.0.0.1", _port(gw)), timeout=5)
    slow_header.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    slow_body = socket.create_connection(("127.0.0.1", _port(gw)), timeout=5)
    body = _body("gpt-4o-mini")
    slow_body.sendall(_head("/v1/chat/completions", key, len(body), session) + body[:10])
    slow_admin = socket.create_connection(("127.0.0.1", _port(gw)), timeout=5)
    slow_admin.sendall(_head("/api/keys", ADMIN_KEY, 200) + b'{"user_id":')
    started = time.monotonic()

    # A normal client is served meanwhile, and so are the health endpoints.
    assert _chat(gw, key, "gpt-4o-mini").status_code == 200
    assert httpx.get(f"{gw.url}/healthz", timeout=5).status_code == 200

    answer = _read_all(slow_body, 5)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    error = json.loads(answer.partition(b"\r\n\r\n")[2])["error"]  # the OpenAI format
    assert error["code"] == "request_timeout" and error["type"] == "timeout_error"
    assert 0.8 <= time.monotonic() - started < 4

    admin = _read_all(slow_admin, 5)
    assert admin.startswith(b"HTTP/1.1 408"), admin[:200]
    assert json.loads(admin.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"

    assert _read_all(slow_header, 5) == b""  # closed without a byte, within the timeout
    assert time.monotonic() - started < 4
    for sock in (slow_header, slow_body, slow_admin):
        sock.close()

    [row] = _session_rows(gw, session)
    assert (row["status_code"], row["error_type"], row["attempt_count"]) == (
        408,
        "request_timeout",
        0,
    )


# --- item 2: shed, don't queue --------------------------------------------------------------
def test_a_full_worker_answers_503_with_retry_after_at_once(gw, key):
    gw.set_faults({"ov-slow": {"delay_ms": 2500}})
    busy = [_in_background(_chat, gw, key, "ov-slow") for _ in range(3)]
    _wait_admission(gw, 2, 1)
    session = "ov-shed-" + uuid.uuid4().hex[:8]
    started = time.monotonic()
    response = _chat(gw, key, "gpt-4o-mini", headers={"x-sluice-session-id": session})
    elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert elapsed < 0.5  # refused at once (~10 ms unloaded), not after the 1 s queue wait
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["code"] == "overloaded"
    anthropic = httpx.post(
        f"{gw.url}/v1/messages",
        json={
            "model": "claude-haiku-4-5",
            "max_tokens": 8,
            "messages": [{"role": "user", "content": "hi"}],
        },
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        timeout=5,
    )
    assert anthropic.status_code == 503 and "retry-after" in anthropic.headers
    assert anthropic.json()["type"] == "error"  # the Anthropic format
    assert "overloaded" in anthropic.json()["error"]["message"]
    # The health endpoints bypass the limit.
    assert httpx.get(f"{gw.url}/healthz", timeout=1).status_code == 200
    assert httpx.get(f"{gw.url}/readyz", timeout=1).status_code == 200
    [row] = _session_rows(gw, session)
    assert (row["status_code"], row["error_type"], row["attempt_count"]) == (503, "overloaded", 0)
    for thread in busy:
        thread.join(10)


def test_a_queued_request_is_shed_when_its_wait_runs_out(gw, key):
    gw.set_faults({"ov-slow-q": {"delay_ms": 3000}})
    busy = [_in_background(_chat, gw, key, "ov-slow-q") for _ in range(2)]
    _wait_admission(gw, 2)
    started = time.monotonic()
    response = _chat(gw, key, "gpt-4o-mini")
    assert response.status_code == 503
    assert 0.95 <= time.monotonic() - started < 3.0  # the 1 s queue deadline
    for thread in busy:
        thread.join(10)


def test_a_client_that_leaves_while_queued_causes_no_upstream_call(gw, key):
    gw.set_faults({"ov-hold": {"delay_ms": 1500}})
    busy = [_in_background(_chat, gw, key, "ov-hold") for _ in range(2)]
    _wait_admission(gw, 2)
    session = "ov-left-" + uuid.uuid4().hex[:8]
    body = _body("ov-departed")
    with socket.create_connection(("127.0.0.1", _port(gw)), timeout=5) as sock:
        sock.sendall(_head("/v1/chat/completions", key, len(body), session) + body)
        _wait_admission(gw, 2, 1)  # queued behind the two slow calls; then the client leaves
    for thread in busy:
        thread.join(10)
    time.sleep(0.3)
    assert _emulator_count(gw, "ov-departed") == 0
    [row] = _session_rows(gw, session)
    assert (row["status_code"], row["error_type"], row["attempt_count"]) == (
        499,
        "client_disconnected",
        0,
    )
    assert row["client_disconnected"]


def test_a_client_that_leaves_during_the_call_cancels_it(gw, key):
    gw.set_faults({"ov-cancel": {"delay_ms": 3000}})
    session = "ov-cancel-" + uuid.uuid4().hex[:8]
    body = _body("ov-cancel")
    with socket.create_connection(("127.0.0.1", _port(gw)), timeout=5) as sock:
        sock.sendall(_head("/v1/chat/completions", key, len(body), session) + body)
        time.sleep(0.3)
    [row] = _session_rows(gw, session, timeout=2.0)  # recorded at once, not after 3 s
    assert (row["status_code"], row["error_type"]) == (499, "client_disconnected")
    assert row["latency_ms"] < 2000 and row["cost_usd"] in (None, 0)  # an unpriced model
    # the call was made and cut short: it shows, counted at its reservation, estimated
    assert row["attempt_count"] == 1 and row["upstream_cancelled"] is True
    assert row["usage_source"] == "estimated" and row["input_tokens"] > 0


def test_a_client_that_half_closes_is_taken_as_gone(gw, key):
    """A FIN after the request while still reading is legal HTTP/1.1, but granian (hyper's
    HTTP/1 with half_close off, its default; granian has no setting for it) ends the
    connection on that EOF: no answer, and the call is cancelled and recorded 499 like
    any departure. bench/overload.py's clients that close as they send look the same."""
    gw.set_faults({"ov-half": {"delay_ms": 3000}})
    session = "ov-half-" + uuid.uuid4().hex[:8]
    body = _body("ov-half")
    with socket.create_connection(("127.0.0.1", _port(gw)), timeout=5) as sock:
        sock.sendall(_head("/v1/chat/completions", key, len(body), session) + body)
        sock.shutdown(socket.SHUT_WR)
        started = time.monotonic()
        assert _read_all(sock, 5) == b""  # closed without an answer...
        assert time.monotonic() - started < 2.5  # ...at once, not after the 3 s call
    [row] = _session_rows(gw, session, timeout=2.0)
    assert (row["status_code"], row["error_type"]) == (499, "client_disconnected")
