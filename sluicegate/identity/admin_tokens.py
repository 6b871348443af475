"""Admin API tokens: credentials for the admin API that carry a role (`model/admin.py`),
and for a team lead its teams, for a member its user.

Issued and hashed like virtual keys (`credentials.py`, prefix `sga-`), so a credential
says which kind it is before any lookup. Every replica keeps an index of the live tokens
(hash -> principal) and reloads it when the table's `max_updated_at` moves
(`refresh.PollLoop`); a revocation takes effect at once on the replica that made it and
within one poll interval on the others. At most `MAX_LIVE_TOKENS` are live at once, so
the index is bounded.

When a token was last used is kept in memory (one time per live token) and written at
the next poll or listing, so a use never waits on the database.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sluicegate.audit.store import AuditAction, AuditEntry
from sluicegate.errors import AuthenticationError, Conflict, InvalidRequest, NotFound
from sluicegate.identity.admin_token_store import AdminTokenRow, SqlAdminTokenStore, TokenPage
from sluicegate.identity.credentials import hash_secret, issue_secret
from sluicegate.identity.refresh import OutageLog, PollLoop
from sluicegate.model.admin import ROLES, AdminPrincipal, Role

log = logging.getLogger(__name__)

TOKEN_PREFIX = "sga-"
MAX_LIVE_TOKENS = 10_000
MAX_TEAMS = 100
MAX_TEXT = 256


@dataclass(frozen=True, slots=True)
class TokenSpec:
    """What a new token is: checked by `token_spec`."""

    name: str
    role: Role
    teams: tuple[str, ...] = ()
    user_id: str | None = None
    expires_at: float | None = None


def token_spec(
    *,
    name: str,
    role: str,
    teams: list[str] | None = None,
    user_id: str | None = None,
    expires_at: float | None = None,
    now: float | None = None,
) -> TokenSpec:
    """A valid spec, or InvalidRequest naming the field: a known role; a team lead names
    at least one team, a member its user; no other role takes either (a scope on a role
    that ignores it would only mislead whoever reads the listing); an expiry, if any, in
    the future."""
    try:
        checked_role = Role(role)
    except ValueError:
        raise InvalidRequest(
            f"role: {role[:40]!r} is not a role; use one of {', '.join(ROLES)}", param="role"
        ) from None
    unique_teams = tuple(dict.fromkeys(_text(team, "teams") for team in teams or []))
    user = None if user_id is None else _text(user_id, "user_id")
    if len(unique_teams) > MAX_TEAMS:
        raise InvalidRequest(f"teams: at most {MAX_TEAMS} teams", param="teams")
    if checked_role is Role.TEAM_LEAD and not unique_teams:
        raise InvalidRequest("a team-lead token needs at least one team", param="teams")
    if checked_role is not Role.TEAM_LEAD and unique_teams:
        raise InvalidRequest(f"a {checked_role} token takes no teams", param="teams")
    if checked_role is Role.MEMBER and user is None:
        raise InvalidRequest("a member token needs the user_id it belongs to", param="user_id")
    if checked_role is not Role.MEMBER and user is not None:
        raise InvalidRequest(f"a {checked_role} token takes no user_id", param="user_id")
    if expires_at is not None and expires_at <= (time.time() if now is None else now):
        raise InvalidRequest("expires_at: the time is past", param="expires_at")
    return TokenSpec(_text(name, "name"), checked_role, unique_teams, user, expires_at)


def _text(value: str, param: str) -> str:
    if not 1 <= len(value) <= MAX_TEXT or not value.isprintable():
        raise InvalidRequest(
            f"{param}: each value must be 1-{MAX_TEXT} printable characters", param=param
        )
    return value


def principal_of(row: AdminTokenRow) -> AdminPrincipal:
    return AdminPrincipal(
        row.name, Role(row.role), tuple(row.teams), user_id=row.user_id, token_id=row.id
    )


def public_view(row: AdminTokenRow, now: float) -> dict[str, Any]:
    """A token as the admin API shows it at `now`: never the hash."""
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "teams": list(row.teams),
        "user_id": row.user_id,
        "token_prefix": row.token_prefix,
        "created_at": row.created_at,
        "created_by": row.created_by,
        "revoked_at": row.revoked_at,
        "last_used_at": row.last_used_at,
        "expires_at": row.expires_at,
        "state": row.state(now),
    }


class AdminTokenService:
    def __init__(
        self,
        store: SqlAdminTokenStore,
        *,
        clock: Callable[[], float] = time.time,
        outage_log_every: float = 60.0,
    ) -> None:
        self._store = store
        self._clock = clock
        outage = OutageLog(
            log, "admin token refresh", "the last loaded admin tokens", outage_log_every
        )
        self._poller = PollLoop(self._refresh, outage, "admin-token-refresh")
        # hash -> (principal, expiry), tokens live when loaded (one may expire since)
        self._index: dict[str, tuple[AdminPrincipal, float | None]] = {}
        self._loaded_version = -1.0
        self._used: dict[str, float] = {}  # token id -> last use not yet written

    # --- the admin gate -----------------------------------------------------------------
    @staticmethod
    def is_token(raw: str | None) -> bool:
        return raw is not None and raw.startswith(TOKEN_PREFIX)

    def now(self) -> float:
        return self._clock()

    def authenticate(self, raw: str) -> AdminPrincipal:
        return self.authenticate_hash(hash_secret(raw))

    def authenticate_hash(self, token_hash: str) -> AdminPrincipal:
        """`authenticate` for a token known by its hash (a web UI session keeps only the
        hash of the token it was opened with, so it ends with the token)."""
        found = self._index.get(token_hash)
        now = self._clock()
        if found is None:
            raise AuthenticationError("unknown or revoked admin token", code="invalid_admin_token")
        principal, expires_at = found
        if expires_at is not None and expires_at <= now:
            raise AuthenticationError("the admin token has expired", code="admin_token_expired")
        if principal.token_id is not None:  # always, for a token
            self._used[principal.token_id] = now
        return principal

    # --- loading ------------------------------------------------------------------------
    async def load(self) -> None:
        version = await self._store.max_updated_at()
        rows = await self._store.live(self._clock())
        self._index = {row.token_hash: (principal_of(row), row.expires_at) for row in rows}
        self._loaded_version = version

    async def start(self, poll_interval: float = 0.5) -> None:
        await self.load()
        self._poller.start(poll_interval)

    async def stop(self) -> None:
        await self._poller.stop()
        try:
            await self.write_uses()
        except Exception:  # shutting down with the database away: the times are lost
            log.warning("could not write admin tokens' last use at shutdown", exc_info=True)

    async def _refresh(self) -> None:
        await self.write_uses()
        if await self._store.max_updated_at() != self._loaded_version:
            await self.load()

    async def write_uses(self) -> None:
        """Write the last use of each token used since the last write (kept for the next
        try when the store fails)."""
        uses, self._used = self._used, {}
        if not uses:
            return
        try:
            await self._store.touch(uses)
        except Exception:
            for token_id, ts in uses.items():
                self._used[token_id] = max(ts, self._used.get(token_id, ts))
            raise

    # --- admin --------------------------------------------------------------------------
    async def create(
        self, spec: TokenSpec, by: AdminPrincipal, path: str
    ) -> tuple[AdminTokenRow, str]:
        """A new token (and its audit row, naming `by` and the request's `path`); the
        secret is returned here and never again."""
        secret = issue_secret(TOKEN_PREFIX)
        now = self._clock()
        row = AdminTokenRow(
            id="tok_" + uuid.uuid4().hex[:16],
            name=spec.name,
            role=spec.role.value,
            teams=list(spec.teams),
            user_id=spec.user_id,
            token_hash=secret.hash,
            token_prefix=secret.shown_prefix,
            created_at=now,
            created_by=by.name,
            updated_at=now,
            expires_at=spec.expires_at,
        )
        audit = _audit(by, AuditAction.TOKEN_CREATE, path, row.id, now)
        if not await self._store.insert(row, audit, max_live=MAX_LIVE_TOKENS):
            raise Conflict(
                f"{MAX_LIVE_TOKENS} admin tokens are live already; revoke some first",
                code="too_many_tokens",
            )
        self._index[row.token_hash] = (principal_of(row), row.expires_at)  # usable at once here
        await self._reload_after_change()
        return row, secret.raw

    async def list(self, limit: int, cursor: str | None, *, state: str | None) -> TokenPage:
        await self.write_uses()  # read-your-uses: the caller's own token shows as used
        return await self._store.page(limit, cursor, state=state, now=self._clock())

    async def revoke(self, token_id: str, by: AdminPrincipal, path: str) -> AdminTokenRow:
        """Revoke a token (idempotent: a revoked one is returned as it is). It stops
        working here at once, on other replicas at their next poll."""
        now = self._clock()
        audit = _audit(by, AuditAction.TOKEN_REVOKE, path, token_id, now)
        row, revoked = await self._store.revoke(token_id, now, audit)
        if row is None:
            raise NotFound(f"no admin token with id {token_id!r}", code="token_not_found")
        if revoked:
            self._index.pop(row.token_hash, None)
            await self._reload_after_change()
        return row

    async def _reload_after_change(self) -> None:
        """Reload now, so that no load begun before the change brings back what it
        changed; the change is written, so a failure here only waits for the poller."""
        try:
            await self.load()
        except Exception as exc:
            log.warning("admin tokens changed but not reloaded here yet: %s", exc)


def _audit(
    by: AdminPrincipal, action: AuditAction, path: str, target: str, now: float
) -> AuditEntry:
    return AuditEntry(
        ts=now,
        principal=by.name,
        role=by.role.value,
        token_id=by.token_id,
        action=action,
        path=path,
        target=target,
    )
