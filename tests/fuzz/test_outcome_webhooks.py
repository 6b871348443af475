"""The outcome receivers under fuzzing, through a real `serve` (SQLite and PostgreSQL)
with both webhooks configured: GitHub `pull_request` deliveries and helpdesk tickets that
start valid and have values changed, then are signed (or carry the secret) as the real
sender would, so that they get past authentication into parsing and the store; and
`POST /api/outcomes` bodies changed the same way. Every answer is < 500, and every refusal
is JSON with an `error` object."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.e2e.gateway import RunningGateway, run_gateway
from tests.fuzz.strategies import mutated
from tests.fuzz.test_api_fuzz import EXAMPLES, RANDOM, database
from tests.outcomes.payloads import (
    GITHUB_SECRET,
    HELPDESK_SECRET,
    github_delivery,
    pull_request_event,
    ticket_event,
)

# mostly valid, so that most deliveries get as far as the store
_session = st.sampled_from(["sess-1", "s-2", "a:b/c", "", "x" * 130, "bad id", "é"])
_valid_session = st.text("abc-_:", min_size=1, max_size=12)
_body = st.one_of(
    st.none(),
    st.text(max_size=40),
    _session.map(lambda s: f"Fixes it.\n\nSluice-Session: {s}\nSluice-Workflow: review"),
    _valid_session.map(lambda s: f"Fixes it.\n\nSluice-Session: {s}"),
    _valid_session.map(lambda s: f"Fixes it.\n\nSluice-Session: {s}"),
)
pull_requests = mutated(
    st.builds(
        pull_request_event,
        action=st.sampled_from(["closed", "closed", "closed", "opened", "edited"]),
        merged=st.sampled_from([True, True, True, False]),
        number=st.integers(1, 10**6),
        body=_body,
        labels=st.lists(_session.map(lambda s: f"sluice-session:{s}"), max_size=2).map(tuple),
    ),
    most=3,
)
tickets = mutated(
    st.builds(
        ticket_event,
        ticket_id=st.integers(1, 10**9) | st.text(min_size=1, max_size=10),
        status=st.sampled_from(["solved", "Solved", "closed", "solved", "open", "pending"]),
        session=st.none() | _session | _valid_session | _valid_session,
        field_id=st.sampled_from([360001234, "360001234", 7]),
    ),
    most=3,
)
api_outcomes = mutated(
    st.fixed_dictionaries(
        {
            "external_id": st.text(min_size=1, max_size=20),
            "kind": st.sampled_from(["pr_merged", "ticket_closed", "incident_resolved"]),
            "session_id": _session | _valid_session | _valid_session,
        },
        optional={
            "workflow_tag": _session,
            "url": st.just("https://example.com/1"),
            "value": st.floats(-1e6, 1e6),
            "ts": st.integers(0, 2_000_000_000),
            "extra": st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
        },
    ),
    most=2,
)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def receiving(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    env = {
        "SLUICEGATE_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
        "SLUICEGATE_HELPDESK_WEBHOOK_SECRET": HELPDESK_SECRET,
    }
    with (
        database(request.param, tmp_path_factory) as url,
        run_gateway(url, "--helpdesk-session-field", "360001234", env=env) as gateway,
    ):
        yield gateway


def check(response: httpx.Response) -> None:
    event(f"status {response.status_code}")
    assert response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/json", response.text
    if response.status_code >= 400:
        assert isinstance(response.json().get("error"), dict), response.text


FUZZ = settings(
    max_examples=EXAMPLES * 2,
    derandomize=not RANDOM,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@FUZZ
@given(payload=pull_requests)
def test_signed_github_deliveries(receiving: RunningGateway, payload: Any) -> None:
    body, headers = github_delivery(payload)
    check(httpx.post(f"{receiving.url}/api/outcomes/github", content=body, headers=headers))


@FUZZ
@given(payload=tickets)
def test_helpdesk_tickets(receiving: RunningGateway, payload: Any) -> None:
    response = httpx.post(
        f"{receiving.url}/api/outcomes/helpdesk",
        content=json.dumps(payload),
        headers={"x-sluice-webhook-secret": HELPDESK_SECRET, "content-type": "application/json"},
    )
    check(response)


@FUZZ
@given(payload=api_outcomes)
def test_outcomes_through_the_admin_api(receiving: RunningGateway, payload: Any) -> None:
    check(receiving.admin.post("/api/outcomes", json=payload))
