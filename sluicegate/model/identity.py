"""Who is calling: the key's principal and the request's identity envelope."""

from __future__ import annotations

import msgspec

UNTAGGED = "UNTAGGED"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """What a virtual key pins. Header values may add to it, never override it."""

    key_id: str
    name: str | None = None
    user_id: str | None = None
    team: str | None = None
    project: str | None = None
    models: tuple[str, ...] = ()  # empty: every model
    is_admin: bool = False

    def may_use(self, model: str) -> bool:
        return not self.models or model in self.models


class Envelope(msgspec.Struct, kw_only=True):
    """The identity envelope attached to one request (key defaults merged with headers)."""

    key_id: str | None = None
    user_id: str | None = None
    team: str | None = None
    project: str = UNTAGGED
    session_id: str | None = None
    workflow_tag: str | None = None
    environment: str | None = None
    cost_center: str | None = None
    metadata: dict[str, str] = msgspec.field(default_factory=dict)

    def field(self, name: str) -> str | None:
        """An envelope field or free metadata key by name (used by policy `when`/`scope`)."""
        if name in ENVELOPE_FIELDS:
            return getattr(self, name)
        return self.metadata.get(name)


ENVELOPE_FIELDS = (
    "key_id",
    "user_id",
    "team",
    "project",
    "session_id",
    "workflow_tag",
    "environment",
    "cost_center",
)
