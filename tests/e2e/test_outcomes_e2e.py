"""Outcomes through a real `serve` on loopback: the webhook secrets come from the
environment and the helpdesk's session field from its flag; a session's model calls and
the PR and ticket it produced share the session id, so the ledger and the outcomes join."""

from __future__ import annotations

import json

import httpx
import openai

from tests.e2e.gateway import run_gateway
from tests.outcomes.payloads import (
    GITHUB_SECRET,
    HELPDESK_SECRET,
    github_delivery,
    pull_request_event,
    ticket_event,
)


def test_a_sessions_calls_and_its_outcomes_join_by_session_id(tmp_path) -> None:
    env = {
        "SLUICEGATE_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
        "SLUICEGATE_HELPDESK_WEBHOOK_SECRET": HELPDESK_SECRET,
    }
    database = f"sqlite:///{tmp_path}/sluicegate.db"
    with run_gateway(database, "--helpdesk-session-field", "agent_session", env=env) as gateway:
        key = gateway.create_key(user_id="ann", team="search", name="ann-agent")["key"]
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)
        for _ in range(2):
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "fix the ranking bug"}],
                extra_headers={"X-Sluice-Session-ID": "sess-e2e-7"},
            )

        body, headers = github_delivery(
            pull_request_event(body="Ranking fix.\n\nSluice-Session: sess-e2e-7\n")
        )
        merged = httpx.post(
            f"{gateway.url}/api/outcomes/github", content=body, headers=headers, timeout=10
        )
        assert merged.status_code == 201, merged.text
        ticket = ticket_event(session="sess-e2e-7")  # its field named, not numbered
        ticket["ticket"]["custom_fields"][-1]["name"] = "agent_session"
        solved = httpx.post(
            f"{gateway.url}/api/outcomes/helpdesk",
            content=json.dumps(ticket),
            headers={"x-sluice-webhook-secret": HELPDESK_SECRET},
            timeout=10,
        )
        assert solved.status_code == 201, solved.text
        unsigned = httpx.post(
            f"{gateway.url}/api/outcomes/github",
            content=body,
            headers={k: v for k, v in headers.items() if k != "x-hub-signature-256"},
            timeout=10,
        )
        assert unsigned.status_code == 401
        assert unsigned.json()["error"]["code"] == "signature_missing"

        calls = gateway.session_rows("sess-e2e-7", count=2)
        assert len(calls) == 2 and {c["team"] for c in calls} == {"search"}
        listed = gateway.admin.get("/api/outcomes", params={"session_id": "sess-e2e-7"})
        assert listed.status_code == 200, listed.text
        assert sorted(o["kind"] for o in listed.json()["data"]) == ["pr_merged", "ticket_closed"]
        assert "outcome webhooks: github" in gateway.proc.output()  # the banner says so
