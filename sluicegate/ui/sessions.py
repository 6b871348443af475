"""Signing in to the control room: an admin credential (the admin key or an admin API
token, the same ones `/api/` takes, with the same roles) opens a session whose id lives
only in an HttpOnly, SameSite=Strict cookie; the database keeps its hash
(`session_store.py`).

Every page resolves the session again: a session whose token was revoked or expired, or
opened with an admin key that has since changed, is over at once. Forms carry a CSRF
token derived from the session id (an HMAC keyed by it), so it needs no storage and only
the session's own pages can know it; the sign-in form, which has no session yet, uses a
random token that must match a cookie set with the form (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sluicegate.errors import AuthenticationError
from sluicegate.identity.admin_tokens import AdminTokenService
from sluicegate.identity.credentials import hash_secret
from sluicegate.identity.keys import KeyService
from sluicegate.model.admin import BOOTSTRAP_ADMIN, AdminPrincipal
from sluicegate.ui.session_store import SqlUiSessionStore

SESSION_COOKIE = "sluicegate_session"
SIGN_IN_COOKIE = "sluicegate_sign_in"  # the sign-in form's double-submit token
COOKIE_PATH = "/ui"
MAX_SESSION_ID = 128  # a cookie value longer than any id we issue is not looked up


class CredentialCheck(Protocol):
    def principal_of(self, raw: str | None) -> AdminPrincipal:
        """The principal; AuthenticationError (401) or PermissionDenied (403)."""
        ...


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    ttl_s: float = 12 * 3600.0  # absolute: sign in again after this
    max_per_credential: int = 20  # a 21st sign-in with one token ends its oldest session
    secure_cookies: bool = False  # Secure even over plain HTTP (TLS ended by a proxy)


class UiSessions:
    def __init__(
        self,
        store: SqlUiSessionStore,
        credentials: CredentialCheck,
        keys: KeyService,
        tokens: AdminTokenService,
        policy: SessionPolicy,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._credentials = credentials
        self._keys = keys
        self._tokens = tokens
        self.policy = policy
        self._clock = clock

    async def sign_in(self, raw_credential: str) -> tuple[str, AdminPrincipal]:
        """A new session id for this credential and who it is; AuthenticationError or
        PermissionDenied (a model-call key) when it is not an admin credential."""
        principal = self._credentials.principal_of(raw_credential or None)
        session_id = secrets.token_urlsafe(32)
        now = self._clock()
        await self._store.insert(
            hash_secret(session_id),
            hash_secret(raw_credential),
            now=now,
            expires_at=now + self.policy.ttl_s,
            max_per_credential=self.policy.max_per_credential,
        )
        return session_id, principal

    async def principal(self, session_id: str | None) -> AdminPrincipal | None:
        """Who this session is now; None when there is no such live session or its
        credential no longer works."""
        if not session_id or len(session_id) > MAX_SESSION_ID:
            return None
        credential = await self._store.credential_of(hash_secret(session_id), self._clock())
        if credential is None:
            return None
        if self._keys.is_admin_key_hash(credential):
            return BOOTSTRAP_ADMIN
        try:
            return self._tokens.authenticate_hash(credential)
        except AuthenticationError:
            return None

    async def sign_out(self, session_id: str) -> None:
        await self._store.delete(hash_secret(session_id))


def csrf_token(session_id: str) -> str:
    return hmac.new(session_id.encode(), b"sluicegate-ui-csrf", hashlib.sha256).hexdigest()


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Whether a form's token is the expected one (neither may be empty: a form without
    its cookie must not pass by sending an empty field)."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
