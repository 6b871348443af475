"""Who is calling: the key's principal and the request's identity envelope."""

from __future__ import annotations

import msgspec

UNTAGGED = "UNTAGGED"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """What a virtual key carries into the envelope. Its user and team are always pinned
    (a header may repeat them, never change them); its other fields are defaults a header
    may change unless they are named in `pinned`."""

    key_id: str
    name: str | None = None
    user_id: str | None = None
    team: str | None = None
    project: str | None = None
    workflow_tag: str | None = None
    environment: str | None = None
    cost_center: str | None = None
    pinned: tuple[str, ...] = ()  # envelope fields beyond user and team; each has a value
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


# What a key may pin: every envelope field but the key itself and the session (a session
# names one conversation, not who may spend).
PINNABLE_FIELDS = ("user_id", "team", "project", "workflow_tag", "environment", "cost_center")
ALWAYS_PINNED = ("user_id", "team")  # when the key has them, as keys always did

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
