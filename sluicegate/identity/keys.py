"""Virtual keys: issued once, stored hashed, looked up in memory on the hot path.

Keys are made and hashed as `credentials.py` says (prefix `sg-`). Every replica keeps an
index of hash -> entry and reloads it when the store's `max_updated_at` moves
(`refresh.PollLoop`), so a revocation reaches every replica within a poll interval.
"""

from __future__ import annotations

import hmac
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import msgspec

from sluicegate.errors import AuthenticationError, Conflict, InvalidRequest, NotFound
from sluicegate.identity.credentials import hash_secret, issue_secret
from sluicegate.identity.envelope import is_envelope_value
from sluicegate.identity.key_store import KeyRow, KeyStore
from sluicegate.identity.refresh import OutageLog, PollLoop
from sluicegate.model.identity import ALWAYS_PINNED, PINNABLE_FIELDS, Principal

log = logging.getLogger(__name__)

KEY_PREFIX = "sg-"
ADMIN_KEY_ID = "admin"


hash_key = hash_secret


class _Entry(msgspec.Struct, frozen=True):
    principal: Principal
    expires_at: float | None
    revoked_at: float | None
    grace_until: float | None


class KeyService:
    def __init__(
        self,
        store: KeyStore,
        *,
        admin_key: str | None,
        clock: Callable[[], float] = time.time,
        outage_log_every: float = 60.0,
    ):
        """`outage_log_every`: while the store is down, the refresh repeats its warning at
        most this often (seconds)."""
        self._store = store
        self._clock = clock
        outage = OutageLog(log, "key refresh", "the last loaded keys", outage_log_every)
        self._poller = PollLoop(self._refresh, outage, "key-refresh")
        self._admin_hash = hash_key(admin_key) if admin_key else None
        self._admin = Principal(key_id=ADMIN_KEY_ID, name="admin", is_admin=True)
        self._index: dict[str, _Entry] = {}
        self._loaded_version = -1.0

    # --- hot path -----------------------------------------------------------------
    def authenticate(self, raw: str | None) -> Principal:
        if not raw:
            raise AuthenticationError(
                "missing API key: send 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
            )
        digest = hash_key(raw)
        if self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash):
            return self._admin
        entry = self._index.get(digest)
        if entry is None:
            raise AuthenticationError("invalid API key")
        now = self._clock()
        if entry.revoked_at is not None and entry.revoked_at <= now:
            raise AuthenticationError("this API key has been revoked", code="revoked_api_key")
        if entry.expires_at is not None and entry.expires_at <= now:
            raise AuthenticationError("this API key has expired", code="expired_api_key")
        if entry.grace_until is not None and entry.grace_until <= now:
            raise AuthenticationError(
                "this API key was rotated and its grace period is over", code="rotated_api_key"
            )
        return entry.principal

    def is_admin_key(self, raw: str | None) -> bool:
        return bool(raw) and self.is_admin_key_hash(hash_key(raw or ""))

    def is_admin_key_hash(self, digest: str) -> bool:
        """Whether `digest` is the admin key's hash (a web UI session opened with the
        admin key keeps only this, and ends when the key changes)."""
        return self._admin_hash is not None and hmac.compare_digest(digest, self._admin_hash)

    # --- loading ------------------------------------------------------------------
    async def load(self) -> None:
        version = await self._store.max_updated_at()
        rows = await self._store.list()
        self._index = {row.key_hash: _entry(row) for row in rows}
        self._loaded_version = version

    async def start(self, poll_interval: float = 0.5) -> None:
        await self.load()
        self._poller.start(poll_interval)

    async def stop(self) -> None:
        await self._poller.stop()

    async def _refresh(self) -> None:
        if await self._store.max_updated_at() != self._loaded_version:
            await self.load()

    # --- admin --------------------------------------------------------------------
    async def create(
        self,
        *,
        name: str | None = None,
        user_id: str | None = None,
        team: str | None = None,
        project: str | None = None,
        workflow_tag: str | None = None,
        environment: str | None = None,
        cost_center: str | None = None,
        pinned: list[str] | None = None,
        models: list[str] | None = None,
        expires_at: float | None = None,
        metadata: dict[str, str] | None = None,
    ) -> tuple[KeyRow, str]:
        """A new key; InvalidRequest when a pin names a field the key has no valid value
        for (a pin without a value would pin nothing)."""
        envelope = {
            "user_id": user_id,
            "team": team,
            "project": project,
            "workflow_tag": workflow_tag,
            "environment": environment,
            "cost_center": cost_center,
        }
        row, raw = self._new_row(
            name=name,
            **envelope,
            pinned=checked_pins(envelope, pinned or []),
            models=list(models or []),
            expires_at=expires_at,
            metadata=dict(metadata or {}),
        )
        await self._store.insert(row)
        await self.load()
        return row, raw

    async def list(self) -> list[KeyRow]:
        return await self._store.list()

    async def rotate(self, key_id: str, grace_seconds: float) -> tuple[KeyRow, str]:
        """A replacement with the same identity, pins and limits; the old key works until
        the grace ends. Conflict (409) for a revoked or already replaced key: rotating
        must never bring back a key that was taken away."""
        old = await self._require(key_id)
        _check_rotatable(old)
        fields = {name: getattr(old, name) for name in _INHERITED}
        new, raw = self._new_row(**fields, rotated_from=old.id)
        now = self._clock()
        stored = await self._store.replace(old.id, new, grace_until=now + max(grace_seconds, 0.0))
        if stored is None:  # revoked or rotated meanwhile, by another admin or replica
            _check_rotatable(await self._require(key_id))
            raise Conflict(f"key {key_id!r} changed while rotating; try again", param="key_id")
        await self.load()
        return stored, raw

    def _new_row(self, **fields: Any) -> tuple[KeyRow, str]:
        secret = issue_secret(KEY_PREFIX)
        now = self._clock()
        row = KeyRow(
            id="key_" + uuid.uuid4().hex[:16],
            key_hash=secret.hash,
            key_prefix=secret.shown_prefix,
            created_at=now,
            updated_at=now,
            **fields,
        )
        return row, secret.raw

    async def revoke(self, key_id: str) -> KeyRow:
        await self._require(key_id)
        now = self._clock()
        await self._store.update(key_id, revoked_at=now, updated_at=now)
        await self.load()
        return await self._require(key_id)

    async def _require(self, key_id: str) -> KeyRow:
        row = await self._store.get(key_id)
        if row is None:
            raise NotFound(f"no key with id {key_id!r}", code="key_not_found")
        return row


# What a rotation copies from the old key to its replacement.
_INHERITED = (
    "name",
    *PINNABLE_FIELDS,
    "pinned",
    "models",
    "expires_at",
    "metadata",
)


def checked_pins(envelope: dict[str, str | None], pinned: list[str]) -> list[str]:
    """The pinned fields in their canonical order, or InvalidRequest naming what is wrong:
    a field that cannot be pinned, a pin without a value, a value no header could carry
    (so a header repeating it could never match)."""
    unknown = sorted(set(pinned) - set(PINNABLE_FIELDS))
    if unknown:
        raise InvalidRequest(
            f"pinned: {unknown[0]!r} cannot be pinned; pin any of {', '.join(PINNABLE_FIELDS)}",
            param="pinned",
        )
    for field in PINNABLE_FIELDS:
        value = envelope.get(field)
        if field in pinned and value is None:
            raise InvalidRequest(
                f"pinned: {field} has no value on this key; give the key a {field} to pin it",
                param="pinned",
            )
        checked = field in pinned or field in _NEW_FIELDS
        if checked and value is not None and not is_envelope_value(value):
            raise InvalidRequest(
                f"{field}: {value!r} must be 1-128 characters of letters, digits and "
                ". _ - : @ / + = # ~ (what a header can carry)",
                param=field,
            )
    return [field for field in PINNABLE_FIELDS if field in pinned]


# Fields keys gained with pins: checked always (user, team and project were taken as any
# string before, so they are checked only when pinned, and old scripts keep working).
_NEW_FIELDS = ("workflow_tag", "environment", "cost_center")


def pinned_fields(row: KeyRow) -> list[str]:
    """Every field a header may not change for this key: its user and team when it has
    them (always pinned), then the fields it pins."""
    return [
        field
        for field in PINNABLE_FIELDS
        if field in row.pinned or (field in ALWAYS_PINNED and getattr(row, field) is not None)
    ]


def _check_rotatable(row: KeyRow) -> None:
    if row.revoked_at is not None:
        raise Conflict(
            f"key {row.id!r} was revoked; a revoked key cannot be rotated (create a new key)",
            param="key_id",
            code="key_revoked",
        )
    if row.replaced_by is not None:
        raise Conflict(
            f"key {row.id!r} was already rotated and replaced by {row.replaced_by!r}; "
            "rotate that key instead",
            param="key_id",
            code="key_replaced",
        )


def _entry(row: KeyRow) -> _Entry:
    principal = Principal(
        key_id=row.id,
        name=row.name,
        user_id=row.user_id,
        team=row.team,
        project=row.project,
        workflow_tag=row.workflow_tag,
        environment=row.environment,
        cost_center=row.cost_center,
        pinned=tuple(row.pinned),
        models=tuple(row.models or ()),
        is_admin=bool(row.is_admin),
    )
    return _Entry(principal, row.expires_at, row.revoked_at, row.grace_until)


def public_view(row: KeyRow, now: float) -> dict[str, Any]:
    """A key as the admin API shows it: never the hash."""
    state = "active"
    if row.revoked_at is not None and row.revoked_at <= now:
        state = "revoked"
    elif row.expires_at is not None and row.expires_at <= now:
        state = "expired"
    elif row.grace_until is not None:
        state = "rotating" if row.grace_until > now else "rotated"
    return {
        "id": row.id,
        "name": row.name,
        "key_prefix": row.key_prefix,
        "user_id": row.user_id,
        "team": row.team,
        "project": row.project,
        "workflow_tag": row.workflow_tag,
        "environment": row.environment,
        "cost_center": row.cost_center,
        "pinned": pinned_fields(row),
        "models": list(row.models or []),
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
        "grace_until": row.grace_until,
        "rotated_from": row.rotated_from,
        "replaced_by": row.replaced_by,
        "state": state,
        "metadata": row.metadata or {},
    }
