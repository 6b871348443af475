"""Who is calling the admin API: a role, and for scoped roles the teams or the user.

Plain data shared by the admin token service (`identity/admin_tokens.py`), which makes
principals, and the admin API (`server/roles.py`, `server/access.py`), which checks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    FINANCE = "finance"
    PLATFORM = "platform"
    SECURITY = "security"
    TEAM_LEAD = "team-lead"
    MEMBER = "member"


ROLES: tuple[Role, ...] = tuple(Role)


@dataclass(frozen=True, slots=True)
class AdminPrincipal:
    """Who is calling the admin API (`applied_by` in the config history reads `name`).
    `teams` scopes a team lead; `user_id` names a member's own user."""

    name: str
    role: Role = Role.ADMIN
    teams: tuple[str, ...] = ()
    user_id: str | None = None
    token_id: str | None = None  # the admin API token used, None for the admin key


BOOTSTRAP_ADMIN = AdminPrincipal("admin", Role.ADMIN)  # the admin key's principal
