"""A client that leaves is billed for what it consumed (issue 10, item 1).

Streams: a client reads a few content chunks and closes the connection before the
provider's usage arrives. The row is 499 `client_disconnected`, with input tokens from the
request (or the provider's first event) and output tokens counted from the content relayed
(`settle.CHARS_PER_TOKEN` characters a token, usage_source `estimated`), priced, and the
budget sees that cost; `upstream_cancelled` says the provider may bill more. Whole answers:
a client that gave up before the answer is recorded 499 with the provider's usage, not 200.
Both client wires x both provider kinds, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.e2e.gateway import RunningGateway, run_gateway
from tests.e2e.policy_support import replace_config
from tests.support import fresh_postgres_database

PROMPT = "tell me a long story about rivers and mountains and the sea " * 3
CLIENTS = {
    "openai-client": "/v1/chat/completions",
    "anthropic-client": "/v1/messages",
}
MODELS = {"openai-provider": "gpt-4o-mini", "anthropic-provider": "claude-haiku-4-5"}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def gw(request, tmp_path_factory) -> Iterator[RunningGateway]:
    if request.param == "sqlite":
        db = tmp_path_factory.mktemp("left") / "sluicegate.db"
        with run_gateway(f"sqlite:///{db}") as running:
            yield running
    else:
        with fresh_postgres_database() as url, run_gateway(url) as running:
            yield running


def new_key(gw: RunningGateway, user: str) -> str:
    return gw.create_key(user_id=user, project="left-early")["key"]


def body(path: str, model: str, *, stream: bool, max_tokens: int = 200) -> dict:
    return {
        "model": model,
        "stream": stream,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": PROMPT}],
    }


def headers(path: str, key: str, session: str) -> dict[str, str]:
    auth = {"authorization": f"Bearer {key}"} if "chat" in path else {"x-api-key": key}
    return {**auth, "anthropic-version": "2023-06-01", "x-sluice-session-id": session}


def content_of(path: str, line: str) -> str | None:
    """The content one SSE data line carries to the client, if any."""
    if not line.startswith("data: ") or line == "data: [DONE]":
        return None
    event = orjson.loads(line[6:])
    if "chat" in path:
        choices = event.get("choices") or [{}]
        delta = choices[0].get("delta") or {}
        return delta.get("content") or None
    if event.get("type") == "content_block_delta":
        return event["delta"].get("text") or None
    return None


def leave_after(gw: RunningGateway, path: str, payload: dict, key: str, chunks: int) -> tuple:
    """Stream, read `chunks` content chunks, close. (response, request id, text read)."""
    session = uuid.uuid4().hex
    read = []
    with httpx.stream(
        "POST",
        gw.url + path,
        json=payload,
        headers=headers(path, key, session),
        timeout=30,
    ) as response:
        if response.status_code != 200:
            response.read()
            return response, None, ""
        for line in response.iter_lines():
            text = content_of(path, line)
            if text:
                read.append(text)
                if len(read) == chunks:
                    break
        request_id = response.headers["x-sluice-request-id"]
    return response, request_id, "".join(read)


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("provider", MODELS)
def test_a_stream_left_early_is_billed_for_what_was_relayed(gw, client, provider):
    path, model = CLIENTS[client], MODELS[provider]
    key = new_key(gw, f"leaver-{uuid.uuid4().hex[:8]}")
    gw.set_faults({model: {"inter_chunk_ms": 60}})
    try:
        response, request_id, text = leave_after(
            gw, path, body(path, model, stream=True), key, chunks=6
        )
    finally:
        gw.clear_faults()
    assert response.status_code == 200 and request_id
    row = gw.request_row(request_id, timeout=10)
    assert row["status_code"] == 499 and row["client_disconnected"] is True
    assert row["input_tokens"] > 0
    # what was read, at four characters a token; the gateway may have relayed one or two
    # more words (~2 tokens each) before it saw the client go
    delivered = math.ceil(len(text) / 4)
    assert delivered <= (row["output_tokens"] or 0) <= delivered + 6, (row, text)
    assert row["cost_usd"] > 0
    assert row["usage_source"] == "estimated"
    assert row["upstream_cancelled"] is True  # the provider may bill its whole answer


def test_a_whole_stream_keeps_the_providers_usage(gw):
    key = new_key(gw, "reader")
    path = CLIENTS["openai-client"]
    payload = body(path, "gpt-4o-mini", stream=True)
    with httpx.stream(
        "POST", gw.url + path, json=payload, headers=headers(path, key, "whole"), timeout=30
    ) as response:
        response.read()
        request_id = response.headers["x-sluice-request-id"]
    row = gw.request_row(request_id)
    assert row["status_code"] == 200 and row["cost_usd"] > 0
    assert row["usage_source"] == "provider" and row["upstream_cancelled"] is False


def test_leaving_every_stream_early_still_meets_the_budget(gw):
    """The issue's scenario: a $0.0001 budget, every stream left after a few chunks.
    Before, the OpenAI wire recorded null cost: hundreds of chunks, never refused."""
    user = f"budget-leaver-{uuid.uuid4().hex[:8]}"
    budget = f"tiny-{uuid.uuid4().hex[:8]}"
    replace_config(
        gw,
        f"""name: b-{budget}
type: gateway-budget-config
budgets:
  - id: {budget}
    scope: {{subjects: ["user:{user}"]}}
    ceiling_usd: 0.0001
    window: daily
    on_exceed: hard_block
""",
    )
    key = new_key(gw, user)
    path, model = CLIENTS["openai-client"], "gpt-4o-mini"
    gw.set_faults({model: {"inter_chunk_ms": 20}})
    delivered, refused = 0, None
    try:
        for _ in range(60):
            response, request_id, text = leave_after(
                gw, path, body(path, model, stream=True, max_tokens=60), key, chunks=8
            )
            if response.status_code != 200:
                refused = response
                break
            delivered += 8
            gw.request_row(request_id, timeout=10)  # settled before the next one asks
    finally:
        gw.clear_faults()
    assert refused is not None, f"{delivered} chunks delivered and never refused"
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["rule_id"] == budget
    rows = [r for r in gw.requests(user_id=user) if r["status_code"] == 499]
    spent = sum(r["cost_usd"] for r in rows)
    assert all(r["usage_source"] == "estimated" and r["cost_usd"] > 0 for r in rows)
    # refused once what was consumed reached the ceiling, within one request's worst case
    assert 0.0001 - max(r["cost_usd"] for r in rows) * 4 < spent <= 0.0001 + 0.00005
    assert delivered < 100


def test_a_client_that_leaves_before_the_whole_answer_is_recorded_499(gw):
    """Before, the row was written before the answer was sent: 200, as if delivered. Now
    the provider call is cancelled when the client leaves (issue 11), and since the
    provider may still bill all of it, it is counted at what was reserved for it: the
    request's input and its max_tokens, marked estimated and cancelled."""
    path, model = CLIENTS["openai-client"], "gpt-4o-mini"
    key = new_key(gw, "impatient")
    payload = body(path, model, stream=False)
    row = give_up_before_the_first_byte(gw, path, payload, key, {"delay_ms": 700})
    assert row["status_code"] == 499 and row["client_disconnected"] is True
    assert row["error_type"] == "client_disconnected"
    assert row["usage_source"] == "estimated" and row["upstream_cancelled"] is True
    assert row["input_tokens"] > 0 and row["output_tokens"] == payload["max_tokens"]
    assert row["cost_usd"] > 0


def test_a_stream_whose_client_left_before_its_first_byte_is_recorded_499(gw):
    """Before, the stream was relayed to nobody and recorded 200 with the whole usage."""
    path, model = CLIENTS["openai-client"], "gpt-4o-mini"
    key = new_key(gw, "impatient-streamer")
    payload = body(path, model, stream=True)
    row = give_up_before_the_first_byte(gw, path, payload, key, {"ttft_ms": 700})
    assert row["status_code"] == 499 and row["client_disconnected"] is True
    assert row["upstream_cancelled"] is True  # closed once its first content came
    # what the gateway had received by then (one read may hold the whole short answer)
    assert row["usage_source"] == "estimated" and row["input_tokens"] > 0
    assert row["output_tokens"] > 0 and row["cost_usd"] > 0


def give_up_before_the_first_byte(
    gw: RunningGateway, path: str, payload: dict, key: str, fault: dict
) -> dict:
    """Send, give up after 0.3 s while the provider is slower; the one ledger row."""
    session = uuid.uuid4().hex
    gw.set_faults({payload["model"]: fault})
    try:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                gw.url + path, json=payload, headers=headers(path, key, session), timeout=0.3
            )
        rows = gw.session_rows(session, timeout=10)
    finally:
        gw.clear_faults()
    time.sleep(0.3)
    assert len(gw.session_rows(session)) == len(rows) == 1  # one row, whatever happened
    return rows[0]
