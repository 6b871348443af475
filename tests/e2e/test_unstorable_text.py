"""Text a database cannot store never costs a ledger row (issue 10, item 4).

PostgreSQL refuses NUL in text and JSONB. What a client sends is checked at the edge: a
NUL in metadata or in the model name is a 400 in the client's own error format, naming
the header or field (and that refusal is itself recorded). Text from elsewhere (here a
provider's error message) is made storable by the ledger writer: the row lands, on SQLite
and on PostgreSQL alike, visible in /api/requests.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.gateway import RunningGateway, run_gateway
from tests.support import fresh_postgres_database


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def gateway(backend: str, tmp_path_factory) -> Iterator[RunningGateway]:
    if backend == "sqlite":
        db = tmp_path_factory.mktemp("nul") / "gw.db"
        with run_gateway(f"sqlite:///{db}") as running:
            yield running
    else:
        with fresh_postgres_database() as url, run_gateway(url) as running:
            yield running


@pytest.fixture(scope="module")
def key(gateway: RunningGateway) -> str:
    return str(gateway.create_key(user_id="nul-tester", project="nul")["key"])


def openai_call(gateway, key, *, model="gpt-4o-mini", headers=None) -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {key}", **(headers or {})},
        timeout=30,
    )


def anthropic_call(gateway, key, *, model="claude-haiku-4-5", headers=None) -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/messages",
        json={"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": key, "anthropic-version": "2023-06-01", **(headers or {})},
        timeout=30,
    )


NUL_VALUE = {"X-Sluice-Metadata": '{"ticket": "T-1\\u0000"}'}
NUL_KEY = {"X-Sluice-Metadata": '{"tic\\u0000ket": "T-1"}'}


@pytest.mark.parametrize("headers", [NUL_VALUE, NUL_KEY], ids=["value", "key"])
def test_a_nul_in_metadata_is_a_400_naming_the_header_in_each_api_format(
    gateway: RunningGateway, key: str, headers: dict[str, str]
) -> None:
    openai = openai_call(gateway, key, headers=headers)
    assert openai.status_code == 400, openai.text
    error = openai.json()["error"]
    assert error["param"].lower() == "x-sluice-metadata"
    assert "x-sluice-metadata" in error["message"].lower() and "NUL" in error["message"]

    anthropic = anthropic_call(gateway, key, headers=headers)
    assert anthropic.status_code == 400, anthropic.text
    body = anthropic.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "x-sluice-metadata" in body["error"]["message"].lower()

    for refused in (openai, anthropic):  # the refusal is recorded like any request
        row = gateway.request_row(refused.headers["x-sluice-request-id"])
        assert (row["status_code"], row["metadata"]) == (400, {})


def test_a_nul_in_the_model_name_is_a_400_naming_the_field(
    gateway: RunningGateway, key: str
) -> None:
    openai = openai_call(gateway, key, model="gpt-4o-mini\x00")
    assert openai.status_code == 400, openai.text
    assert openai.json()["error"]["param"] == "model"
    assert "NUL" in openai.json()["error"]["message"]

    anthropic = anthropic_call(gateway, key, model="claude\x00haiku")
    assert anthropic.status_code == 400, anthropic.text
    assert "'model'" in anthropic.json()["error"]["message"]
    for refused in (openai, anthropic):
        assert gateway.request_row(refused.headers["x-sluice-request-id"])["status_code"] == 400


def test_clean_metadata_is_recorded_as_sent(gateway: RunningGateway, key: str) -> None:
    sent = openai_call(gateway, key, headers={"X-Sluice-Metadata": '{"ticket": "T-\\u00e9"}'})
    assert sent.status_code == 200
    row = gateway.request_row(sent.headers["x-sluice-request-id"])
    assert row["metadata"] == {"ticket": "T-\u00e9"}


def test_a_provider_error_holding_a_nul_still_lands_in_the_ledger(
    gateway: RunningGateway, key: str, backend: str
) -> None:
    gateway.set_faults({"gpt-4o": {"status": 400, "error_message": "bad\u0000request"}})
    try:
        failed = openai_call(gateway, key, model="gpt-4o")
    finally:
        gateway.clear_faults()
    assert failed.status_code == 400
    row = gateway.request_row(failed.headers["x-sluice-request-id"])
    assert row["status_code"] == 400 and row["model"] == "gpt-4o"
    # SQLite stores the NUL; PostgreSQL cannot, so the writer replaces it (U+FFFD)
    stored = "bad\x00request" if backend == "sqlite" else "bad\ufffdrequest"
    assert row["error_message"] == stored
    ready = gateway.admin.get("/readyz").json()["checks"]["ledger"]
    assert (ready["set_aside"], ready["dropped"]) == (0, 0)
