"""The identity envelope: key defaults merged with `X-Sluice-*` headers.

Header names are read under every configured prefix (`X-Sluice-` by default, plus
compatibility prefixes such as `X-TFY-` so clients written for another gateway are
attributed the same). A key always pins its user and team, and pins whichever of its
other fields (project, workflow tag, environment, cost center) it names in `pinned`: a
header naming another value is refused with 403. The key's unpinned fields are defaults.

The prefix table and the header -> field mapping here are the only ones: policy `when` /
`scope` names and router conditions resolve through `envelope_field`, so a name means the
same field wherever it is written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import orjson

from sluicegate.errors import InvalidRequest, PermissionDenied
from sluicegate.model.identity import (
    ALWAYS_PINNED,
    ENVELOPE_FIELDS,
    UNTAGGED,
    Envelope,
    Principal,
)
from sluicegate.model.storable import first_unstorable

DEFAULT_PREFIXES = ("x-sluice-", "x-tfy-")

# header suffix -> envelope field
_SUFFIX_FIELDS = {
    "project": "project",
    "team": "team",
    "user-id": "user_id",
    "session-id": "session_id",
    "workflow-tag": "workflow_tag",
    "environment": "environment",
    "cost-center": "cost_center",
    "metadata": "metadata",
}
_VALUE = re.compile(r"^[\w.:@/+=#~\-]{1,128}$", re.ASCII)
MAX_METADATA_BYTES = 4096
MAX_METADATA_KEYS = 32


def header_field(name: str, prefixes: Sequence[str] = DEFAULT_PREFIXES) -> str | None:
    """The envelope field an identity header names (`X-TFY-Workflow-Tag` -> workflow_tag),
    under any of `prefixes`; names and prefixes compare case-insensitively, and `_` is
    taken for `-` (`X-Sluice-User_Id`), as config authors write both."""
    lower = name.lower()
    for prefix in prefixes:
        if lower.startswith(prefix.lower()):
            return _SUFFIX_FIELDS.get(lower[len(prefix) :].replace("_", "-"))
    return None


def envelope_field(name: str, prefixes: Sequence[str] = DEFAULT_PREFIXES) -> str | None:
    """The envelope field a name in config refers to: the field itself (`environment`) or
    its header (`X-TFY-Environment`); None for a free key of the metadata header."""
    lower = name.lower()
    if lower in ENVELOPE_FIELDS:
        return lower
    field = header_field(name, prefixes)
    return field if field in ENVELOPE_FIELDS else None  # `metadata` is a map, not a field


class EnvelopeReader:
    def __init__(self, prefixes: Sequence[str] = DEFAULT_PREFIXES):
        prefixes = tuple(prefix.lower() for prefix in prefixes)  # ASGI names are lower-case
        self._fields: dict[bytes, str] = {
            f"{prefix}{suffix}".encode(): field
            for prefix in prefixes
            for suffix, field in _SUFFIX_FIELDS.items()
        }
        self._prefixes = tuple(p.encode() for p in prefixes)

    def read(self, principal: Principal, raw_headers: list[tuple[bytes, bytes]]) -> Envelope:
        """Build the envelope from ASGI raw headers (lower-case names)."""
        values: dict[str, str] = {}
        metadata: dict[str, str] = {}
        for name, raw in raw_headers:
            if not name.startswith(self._prefixes):
                continue
            field = self._fields.get(name)
            if field is None:
                continue
            header = name.decode("latin-1")
            if field == "metadata":
                metadata.update(_parse_metadata(header, raw))
            else:
                values[field] = _checked(header, raw)
        return _merge(principal, values, metadata)


def _checked(header: str, raw: bytes) -> str:
    value = raw.decode("latin-1").strip()
    if not _VALUE.match(value):
        raise InvalidRequest(
            f"header {header}: value must be 1-128 characters of letters, digits and "
            ". _ - : @ / + = # ~",
            param=header,
        )
    return value


def _parse_metadata(header: str, raw: bytes) -> dict[str, str]:
    if len(raw) > MAX_METADATA_BYTES:
        raise InvalidRequest(
            f"header {header}: larger than {MAX_METADATA_BYTES} bytes", param=header
        )
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest(f"header {header}: not valid JSON", param=header) from None
    if not isinstance(data, dict):
        raise InvalidRequest(f"header {header}: must be a JSON object of strings", param=header)
    if len(data) > MAX_METADATA_KEYS:
        raise InvalidRequest(f"header {header}: more than {MAX_METADATA_KEYS} keys", param=header)
    for key, value in data.items():
        if not isinstance(value, str) or len(key) > 64 or len(value) > 256:
            raise InvalidRequest(
                f"header {header}: key {key!r} must map to a string (keys up to 64 "
                "characters, values up to 256)",
                param=header,
            )
        _check_storable(header, key, value)
    return data


def is_envelope_value(value: str) -> bool:
    """True when a header could carry `value`: what a key stores as a default or pin must
    be, or no header could ever match the pin."""
    return bool(_VALUE.match(value))


def _check_storable(header: str, key: str, value: str) -> None:
    """Metadata lands in the ledger: refuse what a database would refuse to store."""
    for what, text in (("key", key), ("value", value)):
        bad = first_unstorable(text)
        if bad is not None:
            raise InvalidRequest(
                f"header {header}: {what} {text!r} contains {bad}, which cannot be recorded",
                param=header,
            )


def _merge(principal: Principal, values: dict[str, str], metadata: dict[str, str]) -> Envelope:
    if values:
        _refuse_conflicts(principal, values)
    return Envelope(
        key_id=principal.key_id,
        user_id=principal.user_id or values.get("user_id"),
        team=principal.team or values.get("team"),
        project=values.get("project") or principal.project or UNTAGGED,
        session_id=values.get("session_id"),
        workflow_tag=values.get("workflow_tag") or principal.workflow_tag,
        environment=values.get("environment") or principal.environment,
        cost_center=values.get("cost_center") or principal.cost_center,
        metadata=metadata,
    )


def _refuse_conflicts(principal: Principal, values: dict[str, str]) -> None:
    """A header may repeat what the key pins, never change it. Refused (403) rather than
    ignored: a caller who asked for another project must learn it was not theirs to ask,
    and a budget scoped to the pinned value keeps binding every request of the key."""
    for fields in (ALWAYS_PINNED, principal.pinned):
        for field in fields:
            sent = values.get(field)
            pinned = getattr(principal, field) if sent is not None else None
            if pinned is not None and sent != pinned:
                raise PermissionDenied(
                    f"this key is pinned to {field}={pinned!r}; the header asked for {sent!r}",
                    param=field,
                    code="envelope_conflict",
                )
