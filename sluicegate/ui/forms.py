"""Reading a UI form post: the body bounded in size and time, URL-encoded fields only (the
UI's forms send nothing else), parsed by the standard library."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl

from starlette.requests import Request

from sluicegate.errors import InvalidRequest, PayloadTooLarge

MAX_FORM_BYTES = 16 * 1024  # a sign-in token, a CSRF token and a few fields
FORM_TIMEOUT_S = 10.0
URLENCODED = "application/x-www-form-urlencoded"


async def read_form(request: Request) -> dict[str, str]:
    """The posted fields (the last value of a repeated one); 400 for another content
    type, 413 past MAX_FORM_BYTES, 408-like 400 when the body is not sent in time."""
    if request.headers.get("content-type", "").split(";")[0].strip() != URLENCODED:
        raise InvalidRequest(f"a form is sent as {URLENCODED}", code="form_expected")
    body = bytearray()
    try:
        async with asyncio.timeout(FORM_TIMEOUT_S):
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_FORM_BYTES:
                    raise PayloadTooLarge(f"a form is at most {MAX_FORM_BYTES} bytes")
    except TimeoutError:
        raise InvalidRequest("the form was not sent in time", code="form_timeout") from None
    text = body.decode("utf-8", errors="replace")
    try:
        return dict(parse_qsl(text, keep_blank_values=True, max_num_fields=32))
    except ValueError:  # more fields than any UI form has
        raise InvalidRequest("a form has at most 32 fields", code="form_too_many") from None
