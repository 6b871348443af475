"""Which roles may call each admin route: one table, `ACCESS`, checked by the admin gate
(`admin_auth.AdminGate`) after authentication and before any handler runs.

A rule names the roles besides `admin` (always allowed) that may call the route with that
method. What a handler then shows is narrowed by the caller's scope where the rule says
so (a member's own ledger rows, a team lead's teams' budgets); `docs/roles.md` explains
each rule. A route with no rule is refused to every role but admin, and
`tests/server/test_access.py` fails until it has one, so a new route cannot be open by
omission.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from sluicegate.model.admin import AdminPrincipal, Role
from sluicegate.server.roles import forbidden

Rule = frozenset[Role]

ADMIN_ONLY: Rule = frozenset()
CONFIG_READERS: Rule = frozenset({Role.PLATFORM, Role.SECURITY, Role.FINANCE})
CONFIG_WRITERS: Rule = frozenset({Role.PLATFORM})
OPERATORS: Rule = frozenset({Role.PLATFORM, Role.SECURITY})
SELF_AUTHENTICATED: Rule = frozenset(Role)

# (method, route path as registered) -> the roles besides admin that may call it
ACCESS: Mapping[tuple[str, str], Rule] = {
    # virtual keys carry user ids and mint spend: admin only
    ("POST", "/api/keys"): ADMIN_ONLY,
    ("GET", "/api/keys"): ADMIN_ONLY,
    ("POST", "/api/keys/{key_id}/rotate"): ADMIN_ONLY,
    ("DELETE", "/api/keys/{key_id}"): ADMIN_ONLY,
    # ledger rows name users: an admin (each listing audited), or a member for its own
    ("GET", "/api/requests"): frozenset({Role.MEMBER}),
    # config as code
    ("POST", "/api/config"): CONFIG_WRITERS,
    ("GET", "/api/config"): CONFIG_READERS,
    ("GET", "/api/config/history"): CONFIG_READERS,
    ("GET", "/api/config/versions/{version:int}"): CONFIG_READERS,
    ("POST", "/api/config/rollback"): CONFIG_WRITERS,
    ("POST", "/api/config/what-if"): CONFIG_WRITERS,  # reads the ledger, changes nothing
    ("DELETE", "/api/config/{type}/{name}"): CONFIG_WRITERS,
    # live state; a team lead sees only budgets confined to its teams
    ("GET", "/api/budgets"): frozenset({Role.FINANCE, Role.PLATFORM, Role.TEAM_LEAD}),
    ("GET", "/api/alerts"): OPERATORS,
    ("GET", "/api/targets"): OPERATORS,
    # admin API tokens and the audit trail
    ("POST", "/api/tokens"): ADMIN_ONLY,
    ("GET", "/api/tokens"): ADMIN_ONLY,
    ("DELETE", "/api/tokens/{token_id}"): ADMIN_ONLY,
    ("GET", "/api/audit"): frozenset({Role.SECURITY}),
    # outcomes: recorded by the platform's integrations, read by who weighs spend
    ("POST", "/api/outcomes"): frozenset({Role.PLATFORM}),
    ("GET", "/api/outcomes"): frozenset({Role.PLATFORM, Role.FINANCE, Role.TEAM_LEAD}),
    # the control room: every role, each narrowed to what it may see (analytics/scope.py)
    ("GET", "/api/analytics"): frozenset(Role),
    ("GET", "/api/analytics/{panel}"): frozenset(Role),
    # the sessions behind a session panel's figures, by id (never a user id): a session
    # id opens every request of one person's session, so admins only
    ("GET", "/api/analytics/{panel}/sessions"): ADMIN_ONLY,
    # webhooks prove their sender by signature; the gate asks no key and checks no role
    ("POST", "/api/outcomes/github"): SELF_AUTHENTICATED,
    ("POST", "/api/outcomes/helpdesk"): SELF_AUTHENTICATED,
    # export for warehouses: ledger rows name users (admin, audited); of the rollups,
    # finance and platform may take usage and metadata, a team lead its teams' rows of
    # them (the route refuses them the rest)
    ("GET", "/api/export/requests"): ADMIN_ONLY,
    ("GET", "/api/export/rollups/{table}"): frozenset(
        {Role.FINANCE, Role.PLATFORM, Role.TEAM_LEAD}
    ),
}


def operations(routes: Sequence[BaseRoute]) -> list[tuple[str, str]]:
    """Every (method, path) the routes serve (HEAD, which Starlette adds to GET, apart)."""
    return [
        (method, route.path)
        for route in routes
        if isinstance(route, Route)
        for method in sorted(route.methods or ())
        if method != "HEAD"
    ]


class RouteAccess:
    """The check the gate runs: the route a request will reach, and its rule."""

    def __init__(
        self, routes: Sequence[BaseRoute], rules: Mapping[tuple[str, str], Rule] = ACCESS
    ) -> None:
        self._routes = [route for route in routes if isinstance(route, Route)]
        self._rules = rules

    def missing(self) -> list[tuple[str, str]]:
        """Operations served without a rule (refused to all but admin until given one)."""
        return [op for op in operations(self._routes) if op not in self._rules]

    def check(self, scope: Scope, principal: AdminPrincipal) -> None:
        """PermissionDenied (403) unless the principal's role may call the route this
        request matches. A request no route matches is let through: the app answers it
        404 or 405 like any other."""
        if principal.role is Role.ADMIN:
            return
        for route in self._routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                method = "GET" if scope["method"] == "HEAD" else scope["method"]
                allowed = self._rules.get((method, route.path), ADMIN_ONLY)
                if principal.role not in allowed:
                    forbidden(principal, scope["method"], scope["path"], set(allowed))
                return
