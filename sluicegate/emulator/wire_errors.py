"""Error bodies in each emulated API's own shape, and the exception that carries one.

OpenAI:    {"error": {"message", "type", "param", "code"}}
Anthropic: {"type": "error", "error": {"type", "message"}, "request_id"}
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import orjson
from starlette.responses import Response


class Api(Enum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


class RequestInvalid(Exception):
    """A request the real API would refuse; becomes an error response in the API's shape.

    The two APIs word validation errors differently, so a field error carries both texts.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        param: str | None = None,
        code: str | None = None,
        anthropic_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.anthropic_message = anthropic_message or message
        self.status = status
        self.param = param
        self.code = code


def missing_field(field: str) -> RequestInvalid:
    return RequestInvalid(
        f"Missing required parameter: '{field}'.",
        param=field,
        code="missing_required_parameter",
        anthropic_message=f"{field}: Field required",
    )


def wrong_type(field: str, expected: str) -> RequestInvalid:
    return RequestInvalid(
        f"Invalid type for '{field}': expected {expected}.",
        param=field,
        code="invalid_type",
        anthropic_message=f"{field}: Input should be {expected}",
    )


def invalid_value(field: str, why: str) -> RequestInvalid:
    return RequestInvalid(
        f"Invalid value for '{field}': {why}",
        param=field,
        code="invalid_value",
        anthropic_message=f"{field}: {why}",
    )


@dataclass(frozen=True)
class _OpenAIKind:
    type: str
    code: str | None


_OPENAI_KINDS: dict[int, _OpenAIKind] = {
    400: _OpenAIKind("invalid_request_error", None),
    401: _OpenAIKind("invalid_request_error", "invalid_api_key"),
    403: _OpenAIKind("invalid_request_error", "unsupported_country_region_territory"),
    404: _OpenAIKind("invalid_request_error", None),
    413: _OpenAIKind("invalid_request_error", "request_too_large"),
    429: _OpenAIKind("requests", "rate_limit_exceeded"),
}

_ANTHROPIC_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_DEFAULT_MESSAGES: dict[int, str] = {
    401: "Incorrect API key provided.",
    403: "You are not allowed to use this resource.",
    404: "The requested resource was not found.",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "Rate limit reached for requests. Please try again later.",
    500: "The server had an error while processing your request. Sorry about that!",
    502: "Bad gateway.",
    503: "The engine is currently overloaded, please try again later.",
    504: "Request timed out.",
    529: "Overloaded",
}


def default_message(status: int) -> str:
    return _DEFAULT_MESSAGES.get(status, f"Emulated error with status {status}.")


def openai_error_body(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> dict[str, object]:
    kind = _OPENAI_KINDS.get(status)
    if kind is None:  # other 4xx are request errors, everything else is the server's fault
        kind = _OpenAIKind("invalid_request_error" if status < 500 else "server_error", None)
    return {
        "error": {
            "message": message,
            "type": kind.type,
            "param": param,
            "code": code if code is not None else kind.code,
        }
    }


def anthropic_error_type(status: int) -> str:
    known = _ANTHROPIC_TYPES.get(status)
    if known is not None:
        return known
    return "invalid_request_error" if status < 500 else "api_error"


def anthropic_error_body(status: int, message: str, request_id: str) -> dict[str, object]:
    return {
        "type": "error",
        "error": {"type": anthropic_error_type(status), "message": message},
        "request_id": request_id,
    }


def invalid_request_response(
    api: Api, error: RequestInvalid, request_id: str, headers: dict[str, str] | None = None
) -> Response:
    message = error.message if api is Api.OPENAI else error.anthropic_message
    return error_response(
        api, error.status, message, request_id, param=error.param, code=error.code, headers=headers
    )


def error_response(
    api: Api,
    status: int,
    message: str,
    request_id: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if api is Api.OPENAI:
        body = openai_error_body(status, message, param, code)
    else:
        body = anthropic_error_body(status, message, request_id)
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=headers
    )
