"""The provider's own request id reaches the ledger and `/api/requests`, for answers sent
whole and streamed, from both provider kinds (the emulator sends the header each real API
sends: OpenAI `x-request-id`, Anthropic `request-id`). PostgreSQL: test_postgres_gateway."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.e2e.gateway import RunningGateway

HI = [{"role": "user", "content": "hi"}]
OPENAI_ID = re.compile(r"^req_[0-9a-f]{32}$")
ANTHROPIC_ID = re.compile(r"^req_011C[A-Za-z0-9]{20}$")


def upstream_id(gateway: RunningGateway, key: str, model: str, *, stream: bool) -> str | None:
    """Ask for `model` over the OpenAI API; the ledger row's upstream_request_id."""
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={"model": model, "messages": HI, "stream": stream},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    ) as response:
        response.read()
        assert response.status_code == 200, response.text
        request_id = response.headers["x-sluice-request-id"]
    row = gateway.request_row(request_id)
    assert row["upstream_request_id"] != request_id  # the provider's id, not ours
    return row["upstream_request_id"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize(
    ("model", "shape"),
    [("gpt-4o-mini", OPENAI_ID), ("claude-haiku-4-5", ANTHROPIC_ID)],
    ids=["openai", "anthropic"],
)
def test_the_provider_request_id_is_in_the_ledger(gateway, key, model, shape, stream):
    first = upstream_id(gateway, key["key"], model, stream=stream)
    second = upstream_id(gateway, key["key"], model, stream=stream)
    assert first is not None and shape.match(first), first
    assert second is not None and second != first  # one id per upstream call
