"""Schemathesis over every operation of the OpenAPI description a real `serve` gives at
/openapi.json: valid and invalid requests, with the admin key on /api/ and a virtual key on
/v1/. A user relies on two things here: the gateway never answers 5xx to anything a client
can send, and every refusal is JSON with an `error` object (what the SDKs and the CLI
parse), never plain text. Answers are also checked against the description (status codes,
content types, schemas), so that it stays true.

The budget is fixed and the run deterministic (`derandomize`): EXAMPLES per operation and
(positive and negative cases mixed), so the suite takes well under a minute on a 2-core machine.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sluicegate import __version__
from sluicegate.server.openapi import openapi_document
from sluicegate.wire.registry import WIRES, ClientWire
from tests.e2e.gateway import ADMIN_KEY, RunningGateway, run_gateway
from tests.fuzz.strategies import mutated_documents
from tests.fuzz.test_parsers import request_bodies
from tests.support import fresh_postgres_database

# The fixed budget `make test` runs; a longer, random hunt: SLUICEGATE_FUZZ_SCALE=20
# SLUICEGATE_FUZZ_RANDOM=1 pytest tests/fuzz
EXAMPLES = 30 * int(os.environ.get("SLUICEGATE_FUZZ_SCALE", "1"))
RANDOM = os.environ.get("SLUICEGATE_FUZZ_RANDOM") == "1"


def json_errors(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every error answer is JSON with an `error` object, in the API's own format."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith("application/json"), (
        f"{response.status_code} answered as {content_type!r}: {response.text[:200]!r}"
    )
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), (
        f"{response.status_code} without an error object: {response.text[:200]!r}"
    )
    return True


CHECKS = [
    not_a_server_error,
    json_errors,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@contextmanager
def database(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if kind == "postgres":
        with fresh_postgres_database() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'sluicegate.db'}"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def fuzzed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningGateway, str]]:
    """A real `serve` with the emulator, on SQLite and on PostgreSQL (the admin API's
    filters, ids and cursors reach the database), and a virtual key for /v1/."""
    with database(request.param, tmp_path_factory) as url, run_gateway(url) as gateway:
        key = gateway.create_key(name="fuzz", user_id="fuzzer")["key"]
        yield gateway, key


# Loaded at collection (schemathesis's lazy fixture loader does not run on this pytest);
# `test_fuzzed_description_is_the_served_one` shows it is what the gateway serves.
DESCRIPTION = openapi_document(__version__)
schema = schemathesis.openapi.from_dict(DESCRIPTION)


def test_fuzzed_description_is_the_served_one(fuzzed: tuple[RunningGateway, str]) -> None:
    gateway, _ = fuzzed
    served = httpx.get(f"{gateway.url}/openapi.json", timeout=10)  # no key needed
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/json"
    assert served.json() == DESCRIPTION


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=not RANDOM,
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_every_operation(case: Any, fuzzed: tuple[RunningGateway, str]) -> None:
    gateway, key = fuzzed
    secret = ADMIN_KEY if case.path.startswith("/api") else key
    case.call_and_validate(
        base_url=gateway.url,
        headers={"authorization": f"Bearer {secret}"},
        checks=CHECKS,
        timeout=30,
    )


@settings(
    max_examples=EXAMPLES * 3,
    derandomize=not RANDOM,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@given(wire=st.sampled_from(list(WIRES.values())), stream=st.booleans(), data=st.data())
def test_model_calls_across_apis(
    fuzzed: tuple[RunningGateway, str], wire: ClientWire, stream: bool, data: st.DataObject
) -> None:
    """Request-shaped bodies for real models of both providers, so that calls get past the
    model lookup into translation, the provider (the emulator) and the answer's
    translation back, streamed or not: 200 or a JSON 4xx, never a 5xx."""
    gateway, key = fuzzed
    path = wire.path
    payload = {**data.draw(request_bodies(wire.api)), "stream": stream}
    with httpx.stream(
        "POST",
        f"{gateway.url}{path}",
        json=payload,
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    ) as response:
        content = response.read()
    event(f"status {response.status_code}")  # --hypothesis-show-statistics: how far calls got
    if os.environ.get("SLUICEGATE_FUZZ_SHOW") and response.status_code >= 400:
        event(content[:150].decode("utf-8", "replace"))
    assert response.status_code < 500, content[:500]
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/json", content[:500]
        assert isinstance(json.loads(content).get("error"), dict), content[:500]
    elif stream and path != "/v1/embeddings":
        assert response.headers["content-type"].startswith("text/event-stream")
        assert b'"error"' not in content, content[-500:]  # no failure inside the stream


@settings(
    max_examples=EXAMPLES * 2,
    derandomize=not RANDOM,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
@given(document=mutated_documents(), dry_run=st.booleans(), as_json=st.booleans())
def test_config_documents_through_the_admin_api(
    fuzzed: tuple[RunningGateway, str], document: Any, dry_run: bool, as_json: bool
) -> None:
    """The shipped example documents with values replaced, applied (or dry-run) through
    POST /api/config: validation, the review that compiles the set, and going live all
    answer 200 or a JSON 4xx, and the gateway still answers after. Last in the module: what
    it applies (the example providers point at the real APIs) stays live."""
    gateway, _ = fuzzed
    text = json.dumps(document) if as_json else yaml.safe_dump(document)
    response = gateway.admin.post(
        "/api/config",
        params={"dry_run": str(dry_run).lower()},
        content=text,
        headers={"content-type": "application/json" if as_json else "application/yaml"},
    )
    event(f"status {response.status_code}, dry run {dry_run}")
    assert response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/json", response.text
    if response.status_code >= 400:
        assert isinstance(response.json().get("error"), dict), response.text
    ready = gateway.admin.get("/api/config")
    assert ready.status_code == 200, ready.text
    assert ready.json()["live_error"] is None, ready.text
