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

No role but `admin` sees figures grouped by user, except a member's own. A route states
what it needs with `require_role`; analytics narrow what a caller sees with
`analytics_scope`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from starlette.requests import Request

from sluicegate.errors import PermissionDenied

audit_log = logging.getLogger("sluicegate.audit")


class Role(StrEnum):
    ADMIN = "admin"
    FINANCE = "finance"
    PLATFORM = "platform"
    SECURITY = "security"
    TEAM_LEAD = "team-lead"
    MEMBER = "member"


@dataclass(frozen=True, slots=True)
class AdminPrincipal:
    """Who is calling the admin API (`applied_by` in the config history reads `name`).
    `teams` scopes a team lead; `user_id` names a member's own user."""

    name: str
    role: Role = Role.ADMIN
    teams: tuple[str, ...] = ()
    user_id: str | None = None
    token_id: str | None = None  # the admin API token used, None for the admin key


@dataclass(frozen=True, slots=True)
class AnalyticsScope:
    """What a caller's analytics are narrowed to: rows of these teams only (None: every
    team), of this user only (None: every user), and whether figures may be grouped or
    filtered by user."""

    teams: tuple[str, ...] | None = None
    user_id: str | None = None
    may_see_people: bool = False


def caller(request: Request) -> AdminPrincipal:
    """The principal AdminGate resolved for this request."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, AdminPrincipal):  # every /api/ route is behind the gate
        raise PermissionDenied("no admin principal on this request", code="role_forbidden")
    return principal


def require_role(request: Request, *roles: Role) -> AdminPrincipal:
    """The caller, when its role is one of `roles` (admin always is); else 403."""
    principal = caller(request)
    if principal.role is Role.ADMIN or principal.role in roles:
        return principal
    allowed = ", ".join(sorted({Role.ADMIN, *roles}))
    raise PermissionDenied(
        f"the {principal.role} role may not {request.method} {request.url.path} "
        f"(roles allowed: {allowed})",
        code="role_forbidden",
    )


def analytics_scope(principal: AdminPrincipal) -> AnalyticsScope:
    if principal.role is Role.ADMIN:
        return AnalyticsScope(may_see_people=True)
    if principal.role is Role.TEAM_LEAD:
        return AnalyticsScope(teams=principal.teams)
    if principal.role is Role.MEMBER:
        # a member without a user sees nothing: an impossible user id, never "everyone"
        return AnalyticsScope(user_id=principal.user_id or "\x00none", may_see_people=True)
    return AnalyticsScope()


def audit_people_view(principal: AdminPrincipal, what: str) -> None:
    """Record that `principal` read figures about individual people (`what`: the path and
    query). Admins may; the trail shows that they did."""
    audit_log.info("people view by %s (%s): %s", principal.name, principal.role, what)
