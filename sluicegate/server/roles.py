"""Who may read and change what through the admin API (principle 1: privacy is enforced).

Every admin request carries an `AdminPrincipal` (resolved by `admin_auth.AdminGate`): the
bootstrap admin key is an `admin`; an admin API token carries the role it was created
with. Roles:

- `admin`: everything, including per-user views (each such read is audited).
- `finance`: spend and budgets across the organisation; no per-user views.
- `platform`: config, routing, limits, analytics; no per-user views.
- `security`: guardrail and safety views, the audit trail; no per-user views.
- `team-lead`: team, project and workflow views of the teams it names, nothing else.
- `member`: the views of one user, itself.

No role but `admin` sees figures grouped by user, except a member's own. Which roles may
call each route is one table, `access.ACCESS`, checked by the admin gate before the
handler runs; a handler may narrow further with `require_role`, and analytics narrow what
a caller sees with `analytics_scope`. A handler that shows an admin figures of individual
people records it first with `audit_people_view`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request

from sluicegate.audit.store import AuditAction, AuditEntry
from sluicegate.errors import PermissionDenied
from sluicegate.model.admin import AdminPrincipal, Role

__all__ = [
    "AdminPrincipal",
    "AnalyticsScope",
    "AuditRecorder",
    "Role",
    "analytics_scope",
    "audit_people_view",
    "caller",
    "path_and_query",
    "record_people_view",
    "require_role",
]


@dataclass(frozen=True, slots=True)
class AnalyticsScope:
    """What a caller's analytics are narrowed to: rows of these teams only (None: every
    team), of this user only (None: every user), and whether figures may be grouped or
    filtered by user."""

    teams: tuple[str, ...] | None = None
    user_id: str | None = None
    may_see_people: bool = False


class AuditRecorder(Protocol):
    async def record(self, entry: AuditEntry) -> None: ...


def caller(request: Request) -> AdminPrincipal:
    """The principal AdminGate resolved for this request."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, AdminPrincipal):  # every /api/ route is behind the gate
        raise PermissionDenied("no admin principal on this request", code="role_forbidden")
    return principal


def forbidden(principal: AdminPrincipal, method: str, path: str, allowed: set[Role]) -> None:
    """Raise the 403 every role check answers with."""
    roles = ", ".join(sorted({Role.ADMIN, *allowed}))
    raise PermissionDenied(
        f"the {principal.role} role may not {method} {path} (roles allowed: {roles})",
        code="role_forbidden",
    )


def require_role(request: Request, *roles: Role) -> AdminPrincipal:
    """The caller, when its role is one of `roles` (admin always is); else 403."""
    principal = caller(request)
    if principal.role is not Role.ADMIN and principal.role not in roles:
        forbidden(principal, request.method, request.url.path, set(roles))
    return principal


def analytics_scope(principal: AdminPrincipal) -> AnalyticsScope:
    if principal.role is Role.ADMIN:
        return AnalyticsScope(may_see_people=True)
    if principal.role is Role.TEAM_LEAD:
        return AnalyticsScope(teams=principal.teams)
    if principal.role is Role.MEMBER:
        # a member without a user sees nothing: an impossible user id, never "everyone"
        return AnalyticsScope(user_id=principal.user_id or "\x00none", may_see_people=True)
    return AnalyticsScope()


def path_and_query(request: Request) -> str:
    query = request.url.query
    return f"{request.url.path}?{query}" if query else request.url.path


async def audit_people_view(audit: AuditRecorder, request: Request) -> AdminPrincipal:
    """Record in the audit trail that the caller is about to read figures about individual
    people (the request's path and query say which), and return the caller. Call it
    before reading: when the trail cannot be written (503), nothing is shown. A member
    reading its own figures is not a view of other people and is not recorded."""
    principal = caller(request)
    await record_people_view(audit, principal, path_and_query(request))
    return principal


async def record_people_view(audit: AuditRecorder, principal: AdminPrincipal, path: str) -> None:
    """`audit_people_view` for a caller resolved elsewhere (the web UI's session): `path`
    is what it asked, as the trail shows it."""
    if principal.role is not Role.MEMBER:
        entry = AuditEntry(
            ts=time.time(),
            principal=principal.name,
            role=principal.role.value,
            token_id=principal.token_id,
            action=AuditAction.PEOPLE_VIEW,
            path=path,
        )
        await audit.record(entry)
