"""The export cursor: where an export ended, so that the next one starts after it.

Opaque to clients (URL-safe base64 of a small JSON array): a version, the source and
grain it belongs to, and the key of the last row covered. A cursor of another source or
grain, or one that does not decode, is a 400: resuming with it would skip or repeat rows.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import orjson

from sluicegate.errors import InvalidRequest
from sluicegate.export.sources import ExportSource

_VERSION = 1
Key = tuple[Any, ...]


def encode_cursor(source: ExportSource, grain: str | None, key: Key) -> str:
    raw = orjson.dumps([_VERSION, source.name, grain, *key])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, source: ExportSource, grain: str | None) -> Key:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error, orjson.JSONDecodeError):
        raise _invalid("it does not decode") from None
    if not isinstance(value, list) or len(value) < 3 or value[0] != _VERSION:
        raise _invalid("it is not an export cursor")
    if value[1] != source.name or value[2] != grain:
        where = f"{value[1]}" + (f" ({value[2]})" if value[2] else "")
        here = source.name + (f" ({grain})" if grain else "")
        raise _invalid(f"it continues an export of {where}, not of {here}")
    key = tuple(value[3:])
    types = source.key_types()
    if len(key) != len(types) or not all(_is(v, t) for v, t in zip(key, types, strict=True)):
        raise _invalid("its key does not fit this source")
    return tuple(float(v) if t is float else v for v, t in zip(key, types, strict=True))


def _is(value: object, expected: type) -> bool:
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        try:
            return math.isfinite(value)
        except OverflowError:  # an integer past any float
            return False
    return isinstance(value, expected) and "\x00" not in str(value)


def _invalid(why: str) -> InvalidRequest:
    return InvalidRequest(
        f"invalid cursor: {why} (use the X-Sluice-Export-Cursor of an earlier export)",
        param="cursor",
    )
