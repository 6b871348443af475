"""No path answers in plain text: an unknown path, or a known one with the wrong method,
is JSON in the format of the API it is under (OpenAI's under /v1/, the admin error shape
elsewhere), through the gateway's real app."""

from __future__ import annotations

import pytest

from tests.server.inprocess import InProcessGateway


@pytest.mark.parametrize(
    "method, path, status, code",
    [
        ("GET", "/", 404, "route_not_found"),
        ("GET", "/nope", 404, "route_not_found"),
        ("POST", "/healthz", 405, "method_not_allowed"),
        ("GET", "/v1/nope", 404, "route_not_found"),
        ("GET", "/v1/chat/completions", 405, "method_not_allowed"),
        ("DELETE", "/v1/messages", 405, "method_not_allowed"),
        ("POST", "/v1/models", 405, "method_not_allowed"),
        ("GET", "/api/nope", 404, "route_not_found"),
        ("PUT", "/api/keys", 405, "method_not_allowed"),
    ],
)
async def test_an_unknown_route_answers_json(
    gw: InProcessGateway, method: str, path: str, status: int, code: str
) -> None:
    response = await gw.http.request(method, path, headers=gw.admin)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and path in error["message"]
    assert error["type"] == ("not_found_error" if status == 404 else "invalid_request_error")
    if status == 405:
        assert "POST" in response.headers["allow"] or "GET" in response.headers["allow"]
