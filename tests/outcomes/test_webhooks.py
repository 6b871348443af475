"""The outcome webhooks through the whole gateway in process, with real deliveries:
GitHub's `pull_request` payload signed with HMAC-SHA256 over the bytes posted, and a
Zendesk-shaped ticket webhook with its shared secret. The webhooks need no admin key (the
sender authenticates); a bad or missing signature is a 401 in the admin error shape."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.outcomes.conftest import outcome_gateway
from tests.outcomes.payloads import (
    GITHUB_SECRET,
    HELPDESK_SECRET,
    github_delivery,
    ping_event,
    pull_request_event,
    sign,
    ticket_event,
)
from tests.outcomes.test_api import error_of
from tests.server.conftest import settings_for
from tests.server.inprocess import InProcessGateway, serving

GITHUB = "/api/outcomes/github"
HELPDESK = "/api/outcomes/helpdesk"


async def deliver(gw: InProcessGateway, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await gw.http.post(GITHUB, content=body, headers=headers)  # no admin key


async def outcomes(gw: InProcessGateway) -> list[dict[str, Any]]:
    response = await gw.http.get("/api/outcomes", headers=gw.admin)
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def test_a_signed_merged_pull_request_is_a_pr_merged_outcome_stored_once(
    gw: InProcessGateway,
) -> None:
    body, headers = github_delivery(pull_request_event(), delivery="72d3162e-cc78-11e3-81ab")
    first = await deliver(gw, body, headers)
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "recorded"
    row = first.json()["outcome"]
    assert {k: row[k] for k in ("source", "external_id", "kind", "session_id", "url")} == {
        "source": "github",
        "external_id": "acme/search#42",
        "kind": "pr_merged",
        "session_id": "sess-abc-123",
        "url": "https://github.com/acme/search/pull/42",
    }
    assert row["ts"] == "2026-05-04T15:21:18.000Z"  # merged_at
    assert row["extra"] == {
        "repo": "acme/search",
        "number": 42,
        "base": "main",
        "merge_commit_sha": "c4295bd74fb0f4fda03689c3df3f2803b658fd85",
        "delivery": "72d3162e-cc78-11e3-81ab",
    }
    # GitHub redelivers (same delivery id), or sends the event again (a new one)
    again = await deliver(gw, body, headers)
    other = await deliver(gw, *github_delivery(pull_request_event()))
    for response in (again, other):
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "already_recorded", "outcome": row}
    assert await outcomes(gw) == [row]


async def test_bad_or_missing_signatures_are_401s(gw_sqlite: InProcessGateway) -> None:
    body, headers = github_delivery(pull_request_event())
    forged = {**headers, "x-hub-signature-256": sign(body, "not the secret")}
    tampered_body = body.replace(b"sess-abc-123", b"sess-evil-99")
    cases = {
        "signature_invalid": [
            (body, forged),
            (tampered_body, headers),
            (body, {**headers, "x-hub-signature-256": "sha256=zz"}),
            (body, {**headers, "x-hub-signature-256": headers["x-hub-signature"]}),  # sha1
            (body, {**headers, "x-hub-signature-256": sign(body)[7:]}),  # no sha256= prefix
        ],
        "signature_missing": [
            (body, {k: v for k, v in headers.items() if k != "x-hub-signature-256"})
        ],
    }
    for code, deliveries in cases.items():
        for sent, sent_headers in deliveries:
            error = error_of(await deliver(gw_sqlite, sent, sent_headers), 401)
            assert (error["code"], error["type"]) == (code, "authentication_error")
    # an upper-case hex digest is the same signature
    upper = {**headers, "x-hub-signature-256": "sha256=" + sign(body)[7:].upper()}
    assert (await deliver(gw_sqlite, body, upper)).status_code == 201
    assert [o["session_id"] for o in await outcomes(gw_sqlite)] == ["sess-abc-123"]


@pytest.mark.parametrize(
    ("payload", "event", "reason"),
    [
        (pull_request_event(action="opened", merged=False), "pull_request", "pull_request opened"),
        (pull_request_event(action="synchronize"), "pull_request", "only a merge"),
        (pull_request_event(merged=False), "pull_request", "closed without merging"),
        (pull_request_event(body="No trailer here.", labels=()), "pull_request", "no session"),
        (pull_request_event(body=None), "pull_request", "no session"),
        (
            pull_request_event(body="Sluice-Session: " + "x" * 200),
            "pull_request",
            "not one a request can carry",
        ),
        ({"ref": "refs/heads/main", "commits": []}, "push", "push events are not outcomes"),
        ({"action": "created"}, "issue_comment", "issue_comment events are not outcomes"),
    ],
)
async def test_deliveries_that_are_not_outcomes_are_202_with_the_reason(
    gw_sqlite: InProcessGateway, payload: dict[str, Any], event: str, reason: str
) -> None:
    response = await deliver(gw_sqlite, *github_delivery(payload, event=event))
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "ignored"
    assert reason in response.json()["reason"]
    assert await outcomes(gw_sqlite) == []


async def test_a_ping_answers_200(gw_sqlite: InProcessGateway) -> None:
    response = await deliver(gw_sqlite, *github_delivery(ping_event(), event="ping"))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ping"


@pytest.mark.parametrize(
    ("body", "labels", "session", "workflow"),
    [
        ("Fixes ranking.\r\n\r\nSluice-Session: s-crlf\r\n", (), "s-crlf", None),
        ("sluice-session:s-lower\nSluice-Workflow: code-review", (), "s-lower", "code-review"),
        ("x\n  Sluice-Session:   s-indented  \n", (), "s-indented", None),
        (
            "Sluice-Session: s-body",
            ("sluice-session:s-label", "sluice-workflow:triage"),
            "s-body",
            "triage",
        ),
        ("No trailer.", ("bug", "sluice-session: s-label"), "s-label", None),
        ("Mentions Sluice-Session: inline only", ("sluice-session:s-2",), "s-2", None),
    ],
)
async def test_the_session_comes_from_a_trailer_or_a_label(
    gw_sqlite: InProcessGateway,
    body: str,
    labels: tuple[str, ...],
    session: str,
    workflow: str | None,
) -> None:
    payload = pull_request_event(body=body, labels=labels)
    response = await deliver(gw_sqlite, *github_delivery(payload))
    assert response.status_code == 201, response.text
    row = response.json()["outcome"]
    assert (row["session_id"], row["workflow_tag"]) == (session, workflow)


async def test_a_commit_message_trailer_is_read_when_the_payload_has_commits(
    gw_sqlite: InProcessGateway,
) -> None:
    payload = pull_request_event(body="Nothing here.", labels=())
    payload["commits"] = [
        {"id": "ec26c3e5", "message": "Add scorer"},
        {"id": "f95f852b", "message": "Tune weights\n\nSluice-Session: s-commit\n"},
    ]
    response = await deliver(gw_sqlite, *github_delivery(payload))
    assert response.status_code == 201, response.text
    assert response.json()["outcome"]["session_id"] == "s-commit"


async def test_a_form_encoded_delivery_is_read(gw_sqlite: InProcessGateway) -> None:
    """The hook's content type `application/x-www-form-urlencoded`: JSON in `payload`,
    the signature over the form body as sent."""
    payload = json.dumps(pull_request_event(number=7))
    body = urlencode({"payload": payload}).encode()
    _, headers = github_delivery({})
    headers.update(
        {
            "content-type": "application/x-www-form-urlencoded",
            "x-hub-signature-256": sign(body),
        }
    )
    response = await deliver(gw_sqlite, body, headers)
    assert response.status_code == 201, response.text
    assert response.json()["outcome"]["external_id"] == "acme/search#7"


@pytest.mark.parametrize(
    ("body", "headers", "param"),
    [
        (b"{not json", {}, None),
        (b'{"action": "closed"}', {}, "pull_request"),
        (json.dumps({**pull_request_event(), "action": 5}).encode(), {}, "action"),
        (b"payload=1&payload=2", {"content-type": "application/x-www-form-urlencoded"}, "payload"),
        (b'{"zen": "x"}', {"x-github-event": ""}, "X-GitHub-Event"),
    ],
)
async def test_a_signed_body_that_is_not_a_github_payload_is_a_400(
    gw_sqlite: InProcessGateway, body: bytes, headers: dict[str, str], param: str | None
) -> None:
    _, sent = github_delivery({})
    sent.update({**headers, "x-hub-signature-256": sign(body)})
    assert error_of(await deliver(gw_sqlite, body, sent), 400)["param"] == param


async def test_the_webhook_path_alone_skips_the_admin_key(gw_sqlite: InProcessGateway) -> None:
    http = gw_sqlite.http
    # other outcome paths and methods still ask for the admin key
    assert error_of(await http.get("/api/outcomes"), 401)["code"] == "invalid_api_key"
    assert error_of(await http.post(GITHUB + "/"), 401)["code"] == "invalid_api_key"
    error = error_of(await http.get(GITHUB), 405)  # it is a POST-only webhook
    assert error["code"] == "method_not_allowed"
    # an admin key is not a signature
    body, headers = github_delivery(pull_request_event())
    del headers["x-hub-signature-256"]
    error = error_of(await deliver(gw_sqlite, body, {**headers, **gw_sqlite.admin}), 401)
    assert error["code"] == "signature_missing"


async def test_webhook_bodies_are_bounded(tmp_path: Path) -> None:
    gateway = outcome_gateway(tmp_path, f"sqlite:///{tmp_path}/g.db", max_body_bytes=64 * 1024)
    async with serving(gateway) as gw:
        payload = pull_request_event(body="x" * 70_000 + "\nSluice-Session: s1")
        error = error_of(await deliver(gw, *github_delivery(payload)), 413)
        assert error["type"] == "request_too_large"


async def test_unconfigured_webhooks_are_404s_saying_so(tmp_path: Path) -> None:
    from sluicegate.server.app import Gateway
    from tests.server.inprocess import emulator_upstream

    gateway = Gateway(settings_for(tmp_path), upstream=emulator_upstream())
    async with serving(gateway) as gw:
        response = await deliver(gw, *github_delivery(pull_request_event()))
        error = error_of(response, 404)
        assert error["code"] == "webhook_not_configured"
        assert "SLUICEGATE_GITHUB_WEBHOOK_SECRET" in error["message"]
        response = await gw.http.post(HELPDESK, json=ticket_event())
        assert "SLUICEGATE_HELPDESK_WEBHOOK_SECRET" in error_of(response, 404)["message"]


# --- the helpdesk -------------------------------------------------------------------------


async def send_ticket(
    gw: InProcessGateway, payload: Any, secret: str | bytes | None = HELPDESK_SECRET
) -> httpx.Response:
    headers: dict[str, str | bytes] = {"user-agent": "Zendesk Webhook"}
    if secret is not None:
        headers["x-sluice-webhook-secret"] = secret
    return await gw.http.post(HELPDESK, json=payload, headers=headers)


async def test_a_solved_ticket_is_a_ticket_closed_outcome_stored_once(
    gw: InProcessGateway,
) -> None:
    first = await send_ticket(gw, ticket_event())
    assert first.status_code == 201, first.text
    row = first.json()["outcome"]
    assert {k: row[k] for k in ("source", "external_id", "kind", "session_id", "url")} == {
        "source": "helpdesk",
        "external_id": "35436",
        "kind": "ticket_closed",
        "session_id": "sess-abc-123",
        "url": "https://acme.zendesk.com/agent/tickets/35436",
    }
    assert row["ts"] == "2026-05-04T16:00:00.000Z"
    # reopened and closed again (Zendesk placeholders send ids and statuses as text)
    again = await send_ticket(gw, ticket_event(ticket_id="35436", status="Closed"))
    assert again.status_code == 200, again.text
    assert again.json() == {"status": "already_recorded", "outcome": row}
    assert await outcomes(gw) == [row]


async def test_the_helpdesk_secret_is_checked(gw_sqlite: InProcessGateway) -> None:
    missing = error_of(await send_ticket(gw_sqlite, ticket_event(), secret=None), 401)
    assert missing["code"] == "secret_missing"
    for wrong in ("nope", HELPDESK_SECRET + "x", HELPDESK_SECRET[:-1], "é".encode()):
        error = error_of(await send_ticket(gw_sqlite, ticket_event(), secret=wrong), 401)
        assert error["code"] == "secret_invalid"
    assert error_of(await send_ticket(gw_sqlite, ticket_event(), GITHUB_SECRET), 401)
    assert await outcomes(gw_sqlite) == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (ticket_event(status="open"), "only solved or closed"),
        (ticket_event(status="pending"), "only solved or closed"),
        (ticket_event(session=None), "no session"),
        (ticket_event(session="  "), "no session"),
        (ticket_event(field_id=1), "no session"),  # the session in another field
        (ticket_event(session="bad session id"), "not one a request can carry"),
    ],
)
async def test_tickets_that_are_not_outcomes_are_202_with_the_reason(
    gw_sqlite: InProcessGateway, payload: dict[str, Any], reason: str
) -> None:
    response = await send_ticket(gw_sqlite, payload)
    assert response.status_code == 202, response.text
    assert reason in response.json()["reason"]


async def test_the_session_field_may_be_named(gw_sqlite: InProcessGateway) -> None:
    payload = ticket_event(session=None)
    payload["ticket"]["custom_fields"].append({"id": 360001234, "name": "x", "value": 9001})
    response = await send_ticket(gw_sqlite, payload)
    assert response.status_code == 201, response.text
    assert response.json()["outcome"]["session_id"] == "9001"  # a numeric field, as text


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"id": 1, "status": "solved"}, "ticket"),
        ({"ticket": {"status": "solved"}}, "ticket.id"),
        ({"ticket": {"id": 1}}, "ticket.status"),
        ({"ticket": {"id": [1], "status": "solved"}}, "ticket.id"),
        ({"ticket": {"id": "", "status": "solved"}}, "ticket.id"),
        ({"ticket": {"id": 1, "status": "solved", "custom_fields": {}}}, "ticket.custom_fields"),
        (
            {"ticket": {"id": 1, "status": "solved", "custom_fields": [{"value": "s"}]}},
            "ticket.custom_fields[0].id",
        ),
    ],
)
async def test_a_body_that_is_not_a_ticket_is_a_400(
    gw_sqlite: InProcessGateway, payload: dict[str, Any], param: str
) -> None:
    assert error_of(await send_ticket(gw_sqlite, payload), 400)["param"] == param


async def test_a_half_sent_webhook_body_is_cut_off_with_408(tmp_path: Path) -> None:
    """The admin gate reads a webhook's body as any other: bounded in time too."""
    gateway = outcome_gateway(tmp_path, f"sqlite:///{tmp_path}/g.db", body_timeout_s=0.2)
    app = gateway.asgi()  # the gate answers before any route or database is reached
    sent: list[dict[str, Any]] = []
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b'{"action": "clo', "more_body": True}
        await asyncio.Event().wait()  # the rest never comes
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": GITHUB,
        "raw_path": GITHUB.encode(),
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"x-github-event", b"ping")],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("gw", 80),
        "client": ("127.0.0.1", 5000),
        "root_path": "",
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=5)
    assert sent[0]["status"] == 408
    assert json.loads(sent[1]["body"])["error"]["code"] == "request_timeout"
