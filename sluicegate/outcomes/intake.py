"""`POST /api/outcomes` bodies: decoded and validated with msgspec into a `NewOutcome`,
every bad field a 400 naming it (`param`).

The session id and workflow tag follow the identity envelope's rule for header values
(what `X-Sluice-Session-ID` can carry), or an outcome could never join a ledger row.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import orjson

from sluicegate.errors import InvalidRequest
from sluicegate.identity.envelope import is_envelope_value
from sluicegate.model.storable import first_unstorable
from sluicegate.outcomes.model import NewOutcome, OutcomeKind, OutcomeSource

MAX_BODY_BYTES = 64 * 1024  # one outcome; the admin gate's cap is for config documents
MAX_EXTRA_BYTES = 4096  # the extra object, as JSON: a repo, a PR number, a ticket id
MAX_ID = 256  # external_id
MAX_URL = 2048
MAX_VALUE = 1e15  # |value|: dollars or story points, never this large
FUTURE_SLACK_S = 86400.0  # a sender's clock may run ahead; an outcome a day ahead is a bug
MAX_TIME = 253402300799.0  # 9999-12-31T23:59:59Z

_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID)]
_Url = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_URL)]
_Value = Annotated[float, msgspec.Meta(ge=-MAX_VALUE, le=MAX_VALUE)]
_Rate = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
_Seconds = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_TIME)]


class OutcomeBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What a client sends. `ts` is unix seconds or ISO-8601 (default: when received)."""

    external_id: _Text
    kind: OutcomeKind
    session_id: str
    workflow_tag: str | None = None
    url: _Url | None = None
    value: _Value | None = None
    pass_rate: _Rate | None = None
    ts: _Seconds | str | None = None
    extra: msgspec.Raw = msgspec.Raw(b"{}")


_AT_PATH = re.compile(r" - at `\$\.?([^`]*)`$")
_NAMED = re.compile(r"(?:missing required|unknown) field `([^`]+)`")


def decode_outcome(raw: bytes, *, now: float | None = None) -> NewOutcome:
    """The outcome a `POST /api/outcomes` body describes (source `api`); InvalidRequest
    naming the field otherwise."""
    body = decode_json(raw, OutcomeBody)
    now = time.time() if now is None else now
    return NewOutcome(
        source=OutcomeSource.API,
        external_id=checked_text(body.external_id, "external_id"),
        kind=body.kind,
        session_id=checked_id(body.session_id, "session_id"),
        workflow_tag=None
        if body.workflow_tag is None
        else checked_id(body.workflow_tag, "workflow_tag"),
        url=None if body.url is None else checked_url(body.url, "url"),
        value=body.value,
        pass_rate=_pass_rate(body.kind, body.pass_rate),
        ts=None if body.ts is None else outcome_time(body.ts, "ts", now),
        extra=_extra(body.extra),
    )


def decode_json(raw: bytes, type_: type[Any]) -> Any:
    """`raw` decoded as `type_`; every failure an InvalidRequest naming the field."""
    try:
        return msgspec.json.decode(raw, type=type_)
    except msgspec.ValidationError as exc:
        message = str(exc)  # may quote what was sent: keep the error small
        raise InvalidRequest(_clipped(message), param=error_param(message)) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}", code="invalid_json") from None
    except RecursionError:  # msgspec's depth limit, on nesting no outcome needs
        raise InvalidRequest("the body nests too deeply", code="invalid_json") from None


def _clipped(message: str, limit: int = 400) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


def error_param(message: str) -> str | None:
    """The field a msgspec validation message names: `$.a.b` or `$.a[0]` -> `a.b`,
    `a[0]`; a missing or unknown field at the top -> its name."""
    at = _AT_PATH.search(message)
    named = _NAMED.search(message)
    if named is not None:
        prefix = at.group(1) + "." if at is not None and at.group(1) else ""
        return prefix + named.group(1)
    if at is not None and at.group(1):
        return at.group(1)
    return None


def checked_id(value: str, param: str) -> str:
    """A session id or workflow tag: what an identity header can carry."""
    if not is_envelope_value(value):
        raise InvalidRequest(
            f"{param} must be 1-128 characters of letters, digits and . _ - : @ / + = # ~ "
            "(what an X-Sluice-* header carries)",
            param=param,
        )
    return value


def checked_text(value: str, param: str) -> str:
    bad = first_unstorable(value)
    if bad is not None:
        raise InvalidRequest(f"{param} contains {bad}, which cannot be stored", param=param)
    return value


def checked_url(value: str, param: str) -> str:
    if not value.startswith(("https://", "http://")) or len(value) > MAX_URL:
        raise InvalidRequest(
            f"{param} must be an http(s) URL of at most {MAX_URL} characters", param=param
        )
    return checked_text(value, param)


def outcome_time(value: float | str, param: str, now: float) -> float:
    """Unix seconds or ISO-8601, between 1970 and a day from now."""
    seconds = value if isinstance(value, float | int) else _text_seconds(value, param)
    if not (math.isfinite(seconds) and 0.0 <= seconds <= now + FUTURE_SLACK_S):
        raise InvalidRequest(
            f"{param} must be a time from 1970 to a day from now (unix seconds or ISO-8601)",
            param=param,
        )
    return float(seconds)


def _text_seconds(value: str, param: str) -> float:
    try:
        return float(value)  # unix seconds sent as a string
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)  # a time without a zone is UTC, as GitHub's
        return moment.timestamp()
    except (ValueError, OverflowError, OSError):
        raise InvalidRequest(
            f"{param}: {value[:64]!r} is not a time (unix seconds or ISO-8601)", param=param
        ) from None


def _pass_rate(kind: OutcomeKind, pass_rate: float | None) -> float | None:
    if kind is OutcomeKind.EVAL_RUN and pass_rate is None:
        raise InvalidRequest("an eval_run needs pass_rate (0 to 1)", param="pass_rate")
    if kind is not OutcomeKind.EVAL_RUN and pass_rate is not None:
        raise InvalidRequest(
            f"pass_rate is for eval_run outcomes only, not {kind.value}", param="pass_rate"
        )
    return pass_rate


def _extra(raw: msgspec.Raw) -> dict[str, Any]:
    """A small JSON object of the sender's references (repo, PR number, ticket id)."""
    if len(raw) > MAX_EXTRA_BYTES:
        raise InvalidRequest(
            f"extra must be at most {MAX_EXTRA_BYTES} bytes of JSON", param="extra"
        )
    try:
        value = orjson.loads(bytes(raw))
    except orjson.JSONDecodeError:  # valid JSON to msgspec; orjson refuses deeper nesting
        raise InvalidRequest("extra nests too deeply", param="extra") from None
    if not isinstance(value, dict):
        raise InvalidRequest("extra must be a JSON object", param="extra")
    if _holds_nul(value):  # JSON decoders refuse lone surrogates already
        raise InvalidRequest(
            "extra contains a NUL character (U+0000), which cannot be stored", param="extra"
        )
    return value


def _holds_nul(value: Any) -> bool:
    """Whether any string (key or value) in decoded JSON holds a NUL; iterative, as the
    nesting may be deeper than Python's recursion limit."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
