"""Provider errors in, our errors out, in each wire's error body, as the SDKs read them."""

import anthropic
import openai
import orjson
import pytest

from sluicegate.errors import (
    AuthenticationError,
    InvalidRequest,
    LimitExceeded,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    UpstreamHTTPError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from sluicegate.wire import anthropic_messages as am
from sluicegate.wire import openai_chat as oc
from sluicegate.wire.sse import SSEParser
from tests.wire.fixtures import anthropic_client, json_response, openai_client, sse_response

USER = [{"role": "user", "content": "hi"}]


# -- parse_error -----------------------------------------------------------------------------


def test_openai_provider_error():
    body = orjson.dumps(
        {
            "error": {
                "message": "Rate limit reached for gpt-4o",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        }
    )
    exc = oc.parse_error(429, body, {"retry-after": "20", "x-request-id": "r"})
    assert isinstance(exc, UpstreamHTTPError)
    assert exc.message == "Rate limit reached for gpt-4o"
    assert (exc.upstream_status, exc.status, exc.retry_after) == (429, 429, 20.0)
    assert exc.code == "rate_limit_exceeded"


def test_openai_retry_after_ms_wins():
    exc = oc.parse_error(429, b"{}", {"Retry-After-Ms": "1500", "Retry-After": "9"})
    assert exc.retry_after == 1.5


def test_provider_5xx_becomes_502_and_keeps_the_message():
    body = orjson.dumps(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )
    exc = am.parse_error(529, body, {})
    assert (exc.status, exc.upstream_status, exc.code, exc.message) == (
        502,
        529,
        "overloaded_error",
        "Overloaded",
    )
    assert exc.retry_after is None


def test_non_json_error_bodies():
    exc = oc.parse_error(502, b"<html>Bad gateway</html>", {})
    assert exc.message == "<html>Bad gateway</html>"
    assert am.parse_error(503, b"", {}).message == "The provider answered HTTP 503."
    assert oc.parse_error(400, b'{"error": "plain text"}', {}).message == "plain text"


def test_retry_after_as_http_date():
    exc = am.parse_error(429, b"{}", {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert exc.retry_after == 0.0


# -- render_error ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (InvalidRequest("bad", param="messages[0].role"), "invalid_request_error"),
        (AuthenticationError("no key"), "authentication_error"),
        (PermissionDenied("nope"), "permission_error"),
        (NotFound("no model"), "not_found_error"),
        (PayloadTooLarge("too big"), "request_too_large"),
        (LimitExceeded("slow down", rule_id="team-tpm"), "rate_limit_error"),
        (UpstreamUnavailable("down"), "api_error"),
        (UpstreamTimeout("slow"), "timeout_error"),
        (UpstreamHTTPError("Overloaded", upstream_status=529), "api_error"),
    ],
)
def test_anthropic_error_types_by_status(exc, kind):
    body = orjson.loads(am.render_error(exc, "req_1"))
    assert body == {
        "type": "error",
        "error": {"type": kind, "message": body["error"]["message"]},
        "request_id": "req_1",
    }


def test_limit_errors_name_their_rule():
    exc = LimitExceeded("Token budget exhausted", rule_id="team-a-daily", retry_after=30)
    openai_body = orjson.loads(oc.render_error(exc, "req_1"))
    assert openai_body == {
        "error": {
            "message": "Token budget exhausted (rule: team-a-daily)",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    anthropic_body = orjson.loads(am.render_error(exc, "req_1"))
    assert "team-a-daily" in anthropic_body["error"]["message"]


def test_openai_sdk_reads_our_error():
    exc = InvalidRequest("Invalid value for 'messages[0].role'.", param="messages[0].role")
    client = openai_client(json_response(oc.render_error(exc, "req_1"), exc.status))
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="m", messages=USER)
    assert "Invalid value for 'messages[0].role'." in caught.value.message
    assert caught.value.param == "messages[0].role"
    assert caught.value.type == "invalid_request_error"


def test_openai_sdk_reads_our_limit_error():
    exc = LimitExceeded("Too many requests", rule_id="key-rpm")
    client = openai_client(json_response(oc.render_error(exc, "req_1"), 429))
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="m", messages=USER)
    assert "key-rpm" in caught.value.message
    assert caught.value.code == "rate_limit_exceeded"


def test_anthropic_sdk_reads_our_error():
    exc = LimitExceeded("Too many requests", rule_id="key-rpm")
    client = anthropic_client(json_response(am.render_error(exc, "req_9"), 429))
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="m", max_tokens=5, messages=USER)
    assert "key-rpm" in caught.value.message
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert caught.value.body["request_id"] == "req_9"


def test_stream_error_events_reach_the_sdks():
    exc = UpstreamUnavailable("The provider dropped the stream")
    frame = am.render_stream_error(exc, "req_2")
    [event] = SSEParser().feed(frame)
    assert event.event == "error"
    client = anthropic_client(sse_response(frame))
    with pytest.raises(anthropic.APIStatusError) as caught:
        list(client.messages.create(model="m", max_tokens=5, messages=USER, stream=True))
    assert "dropped the stream" in caught.value.message
    frame = oc.render_stream_error(exc, "req_2")
    client = openai_client(sse_response(frame))
    with pytest.raises(openai.APIError) as caught:
        list(client.chat.completions.create(model="m", messages=USER, stream=True))
    assert caught.value.message == "The provider dropped the stream"
