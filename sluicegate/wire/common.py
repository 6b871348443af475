"""Pieces every wire module shares: the facts a request yields, strict body validation with
an error that names the field, the cheap token estimate, ids and error-message helpers."""

from __future__ import annotations

import email.utils
import re
import time
import uuid
from typing import Any, TypeVar

import msgspec
import orjson

from sluicegate.errors import InvalidRequest, LimitExceeded, SluiceError
from sluicegate.model.storable import first_unstorable

T = TypeVar("T")

# The estimate only feeds reservations before the call; settlement uses the provider's own
# count. Four characters a token is the usual rule of thumb for English and code.
CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 4  # role and framing tokens each provider adds per message
IMAGE_TOKENS = 800  # about one 1024px image on either provider; base64 is not text


class RequestFacts(msgspec.Struct, kw_only=True, frozen=True):
    """What the gateway needs to know about a client body before routing it."""

    model: str
    stream: bool
    max_output_tokens: int | None
    include_usage: bool  # the client wants usage in its stream (always true for Anthropic)
    estimated_input_tokens: int


def convert_body(body: object, type_: type[T]) -> T:
    """msgspec.convert into lightweight Structs, failing as a 400 that names the field."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        return msgspec.convert(body, type_)
    except msgspec.ValidationError as exc:
        message, param = _describe(str(exc))
        raise InvalidRequest(message, param=param) from None


_MISSING = re.compile(r"Object missing required field `([^`]+)`(?: - at `\$\.?(.*)`)?$")
_AT = re.compile(r"^(.*) - at `\$\.?(.*)`$")


def _describe(text: str) -> tuple[str, str | None]:
    """msgspec's "Expected `str`, got `int` - at `$.messages[0].role`" -> ours and a param."""
    missing = _MISSING.match(text)
    if missing:
        field, at = missing.group(1), missing.group(2)
        param = f"{at}.{field}" if at else field
        return f"Missing required parameter: '{param}'.", param
    located = _AT.match(text)
    if located and located.group(2):
        detail, param = located.group(1), located.group(2)
        return f"Invalid value for '{param}': {detail[0].lower()}{detail[1:]}.", param
    return f"Invalid request body: {text}.", None


def invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(f"{message[:1].upper()}{message[1:]} ('{param}').", param=param)


def check_model(model: str) -> None:
    """The client's model name is recorded in the ledger: it must be there, and storable."""
    if not model:
        raise invalid("model must not be empty", "model")
    bad = first_unstorable(model)
    if bad is not None:
        raise invalid(f"model must not contain {bad}", "model")


def estimate_tokens(chars: int, messages: int, images: int = 0) -> int:
    return chars // CHARS_PER_TOKEN + messages * MESSAGE_OVERHEAD_TOKENS + images * IMAGE_TOKENS


def json_chars(value: Any) -> int:
    """Size of a small JSON value (a tool schema, tool input) for the estimate."""
    if value is None:
        return 0
    try:
        return len(orjson.dumps(value))
    except TypeError:
        return 0


def string_marker(name: str) -> tuple[bytes, bytes]:
    """What `string_bytes` looks for: the name, colon and opening quote, compact and spaced."""
    quoted = b'"' + name.encode() + b'"'
    return quoted + b':"', quoted + b': "'


def string_bytes(data: bytes, marker: tuple[bytes, bytes]) -> int:
    """Bytes of the JSON string value `marker` (from `string_marker`) opens in raw JSON, as
    written (an escape counts its characters); 0 when absent or not a string. Streams
    relayed untouched count their content this way, per chunk: no parse, and the compact
    form every provider writes (`"text":"`) costs two `find`s."""
    compact, spaced = marker
    at = data.find(compact)
    if at >= 0:
        begin = at + len(compact)
    else:  # spaced JSON, or absent (`"type":"text"` is a value, not the name)
        at = data.find(spaced)
        if at < 0:
            return 0
        begin = at + len(spaced)
    end = data.find(b'"', begin)
    while end > 0 and data[end - 1] == 0x5C:  # a backslash before it: escaped, or escaping?
        run = end - 1
        while data[run - 1] == 0x5C:
            run -= 1
        if (end - run) % 2 == 0:  # an even run of backslashes escapes itself
            break
        end = data.find(b'"', end + 1)
    return (end if end > 0 else len(data)) - begin


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def request_object(raw: bytes) -> dict[str, Any]:
    """A client's JSON body, which must be an object; a clear 400 otherwise."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"the body is not valid JSON: {exc.msg} at position {exc.pos}", code="invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object", code="invalid_json")
    return data


def response_model(body: dict[str, Any]) -> str | None:
    """The model a provider says answered (both wires put it in `model`)."""
    model = body.get("model")
    return model if isinstance(model, str) and model else None


def load_object(body: bytes) -> dict[str, Any] | None:
    """A JSON object from bytes, or None when the bytes are not one."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def dump_arguments(value: Any) -> str:
    return orjson.dumps(value).decode()


def parse_arguments(arguments: str) -> dict[str, Any]:
    """OpenAI's arguments string as Anthropic's input object. A model can emit broken JSON;
    Anthropic's shape has no room for it, so it becomes {} rather than failing the reply."""
    if not arguments:
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def retry_after(headers: dict[str, str]) -> float | None:
    """Seconds from `retry-after-ms` (OpenAI) or `retry-after` (seconds or an HTTP date)."""
    lower = {k.lower(): v for k, v in headers.items()}
    millis = lower.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def provider_message(status: int, body: bytes, message: Any) -> str:
    """The provider's error message, else a short excerpt of what it sent."""
    if isinstance(message, str) and message:
        return message
    text = body[:500].decode("utf-8", "replace").strip()
    return text or f"The provider answered HTTP {status}."


def client_message(exc: SluiceError) -> str:
    """The message a client sees; a policy refusal always names its rule."""
    if isinstance(exc, LimitExceeded) and exc.rule_id not in exc.message:
        return f"{exc.message} (rule: {exc.rule_id})"
    return exc.message
