"""The scale-out shape: a gateway whose ledger, keys and config live in PostgreSQL."""

from __future__ import annotations

import re

import anthropic
import openai

from tests.e2e.gateway import run_gateway
from tests.support import fresh_postgres_database


def test_gateway_on_postgres_records_and_reads_back():
    with fresh_postgres_database() as url, run_gateway(url) as gateway:
        key = gateway.create_key(user_id="alice", team="search", project="platform-search")
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key["key"], max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="claude-haiku-4-5", messages=[{"role": "user", "content": "hello"}]
        )
        usage = raw.parse().usage
        stream = anthropic.Anthropic(
            base_url=gateway.url,
            api_key=key["key"],
            max_retries=0,
            default_headers={"X-Sluice-Session-ID": "pg-stream"},
        )
        with stream.messages.stream(
            model="gpt-4o-mini", max_tokens=32, messages=[{"role": "user", "content": "hi"}]
        ) as s:
            final = s.get_final_message()

        row = gateway.request_row(raw.headers["x-sluice-request-id"])
        assert (row["input_tokens"], row["output_tokens"]) == (
            usage.prompt_tokens,
            usage.completion_tokens,
        )
        assert row["cost_usd"] > 0 and row["project"] == "platform-search"
        assert row["upstream_request_id"].startswith("req_011C")  # Anthropic's `request-id`
        streamed = gateway.session_rows("pg-stream")[0]
        assert streamed["stream"] is True
        assert streamed["output_tokens"] == final.usage.output_tokens
        assert re.fullmatch(r"req_[0-9a-f]{32}", streamed["upstream_request_id"])  # OpenAI's
        assert streamed["upstream_request_id"] != streamed["request_id"]

        # keys live in PostgreSQL too: a revoked key is refused
        gateway.admin.delete(f"/api/keys/{key['id']}").raise_for_status()
        try:
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
            )
            raise AssertionError("revoked key was accepted")
        except openai.AuthenticationError:
            pass
        page = gateway.admin.get("/api/requests", params={"limit": 2}).json()
        assert len(page["data"]) == 2 and page["next_cursor"]
        rest = gateway.admin.get(
            "/api/requests", params={"limit": 2, "cursor": page["next_cursor"]}
        ).json()["data"]
        assert {r["request_id"] for r in rest}.isdisjoint({r["request_id"] for r in page["data"]})
