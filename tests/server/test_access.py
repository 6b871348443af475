"""Every admin route has an access rule, and every role is refused (403, `role_forbidden`,
in the admin error shape) exactly where the policy says, through the gateway's real app:
one call per role and per route. The policy is stated here again, apart from
`access.ACCESS`, as what a user relies on (issue 12: "Privacy and roles"): a route added
to the app without an entry in both fails, and a rule that lets a role through or keeps
it out by mistake does too."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.routing import Route

from sluicegate.errors import PermissionDenied
from sluicegate.model.admin import ROLES, AdminPrincipal, Role
from sluicegate.server.access import ACCESS, RouteAccess, operations
from sluicegate.server.app import Gateway
from tests.server.conftest import settings_for
from tests.server.inprocess import InProcessGateway, emulator_upstream, serving

DOCS = Path(__file__).parents[2] / "docs" / "roles.md"
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
_SAMPLE = {  # a value for each path parameter (nothing by these names exists)
    "key_id": "key_none",
    "token_id": "tok_none",
    "version": "1",
    "type": "gateway-budget-config",
    "name": "none",
    "table": "usage",
    "panel": "none",
}
SCOPES = {Role.TEAM_LEAD: {"teams": ["search"]}, Role.MEMBER: {"user_id": "ana"}}

F, P, S, TL, M = Role.FINANCE, Role.PLATFORM, Role.SECURITY, Role.TEAM_LEAD, Role.MEMBER
# (method, path) -> the roles besides admin that may call it
EXPECTED: dict[tuple[str, str], set[Role]] = {
    ("POST", "/api/keys"): set(),
    ("GET", "/api/keys"): set(),
    ("POST", "/api/keys/{key_id}/rotate"): set(),
    ("DELETE", "/api/keys/{key_id}"): set(),
    ("GET", "/api/requests"): {M},  # its own rows only
    ("POST", "/api/config"): {P},
    ("GET", "/api/config"): {P, S, F},
    ("GET", "/api/config/history"): {P, S, F},
    ("GET", "/api/config/versions/{version:int}"): {P, S, F},
    ("POST", "/api/config/rollback"): {P},
    ("POST", "/api/config/what-if"): {P},
    ("DELETE", "/api/config/{type}/{name}"): {P},
    ("GET", "/api/budgets"): {F, P, TL},  # a team lead: its teams' budgets only
    ("GET", "/api/alerts"): {P, S},
    ("GET", "/api/targets"): {P, S},
    ("POST", "/api/tokens"): set(),
    ("GET", "/api/tokens"): set(),
    ("DELETE", "/api/tokens/{token_id}"): set(),
    ("GET", "/api/audit"): {S},
    ("POST", "/api/outcomes"): {P},
    ("GET", "/api/outcomes"): {P, F, TL},  # a team lead: its teams' sessions only
    ("POST", "/api/outcomes/github"): set(Role),  # signed by the sender, no role asked
    ("POST", "/api/outcomes/helpdesk"): set(Role),
    ("GET", "/api/export/requests"): set(),
    # usage and metadata (a team lead: its teams' rows only); the rest admin
    ("GET", "/api/export/rollups/{table}"): {F, P, TL},
    ("GET", "/api/analytics"): set(Role),  # each narrowed to what its role may see
    ("GET", "/api/analytics/{panel}"): set(Role),
    ("GET", "/api/analytics/{panel}/sessions"): set(),  # session ids: admins only
}


def admin_operations(gateway: Gateway) -> list[tuple[str, str]]:
    gateway.asgi()  # builds the route table
    return [op for op in operations(gateway.route_table) if op[1].startswith("/api")]


@pytest.fixture(scope="module")
async def gw(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[InProcessGateway]:
    tmp = tmp_path_factory.mktemp("access")
    async with serving(Gateway(settings_for(tmp), upstream=emulator_upstream())) as running:
        yield running


@pytest.fixture(scope="module")
async def role_tokens(gw: InProcessGateway) -> dict[Role, str]:
    tokens = {}
    for role in ROLES:
        body = {"name": f"{role}-token", "role": role.value, **SCOPES.get(role, {})}
        created = await gw.http.post("/api/tokens", json=body, headers=gw.admin)
        assert created.status_code == 201, created.text
        tokens[role] = created.json()["token"]
    return tokens


def test_every_admin_route_has_a_rule_and_every_rule_a_route(tmp_path: Path) -> None:
    served = admin_operations(Gateway(settings_for(tmp_path)))
    assert [op for op in served if op not in ACCESS] == [], "add these routes to access.ACCESS"
    assert set(ACCESS) - set(served) == set(), "rules for routes the app does not serve"
    assert set(EXPECTED) == set(served), "state each route's roles in EXPECTED above"


def test_docs_roles_explains_every_rule() -> None:
    text = DOCS.read_text()
    for method, path in ACCESS:
        shown = _PARAM.sub(r"{\1}", path)
        assert f"`{method} {shown}`" in text, f"docs/roles.md does not list {method} {shown}"


OPERATIONS = sorted(EXPECTED)


@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
@pytest.mark.parametrize("operation", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
async def test_each_role_is_refused_exactly_where_its_rule_says(
    gw: InProcessGateway, role_tokens: dict[Role, str], role: Role, operation: tuple[str, str]
) -> None:
    method, template = operation
    path = _PARAM.sub(lambda m: _SAMPLE[m.group(1)], template)
    response = await gw.http.request(
        method,
        path,
        headers={"authorization": f"Bearer {role_tokens[role]}"},
        json={} if method in ("POST", "DELETE") else None,
    )
    error = response.json().get("error") if response.status_code >= 400 else None
    refused = response.status_code == 403 and error["code"] == "role_forbidden"
    allowed = role is Role.ADMIN or role in EXPECTED[operation]
    assert refused is not allowed, (response.status_code, response.text)
    if refused:
        assert response.headers["content-type"] == "application/json"
        assert set(error) == {"message", "type", "param", "code"}
        assert f"the {role} role may not {method} {path}" in error["message"]


def test_a_route_without_a_rule_is_for_admins_only() -> None:
    async def endpoint(request: object) -> None: ...

    access = RouteAccess([Route("/api/new-thing", endpoint, methods=["GET"])], rules={})
    assert access.missing() == [("GET", "/api/new-thing")]
    scope = {"type": "http", "method": "GET", "path": "/api/new-thing", "root_path": ""}
    access.check(scope, AdminPrincipal("root", Role.ADMIN))
    for role in ROLES[1:]:
        with pytest.raises(PermissionDenied):
            access.check(scope, AdminPrincipal("someone", role, ("t",), "u"))
    # a request no route matches is the app's to answer (404), not a role question
    access.check({**scope, "path": "/api/elsewhere"}, AdminPrincipal("x", Role.FINANCE))


async def test_head_follows_the_rule_of_get(
    gw: InProcessGateway, role_tokens: dict[Role, str]
) -> None:
    finance = {"authorization": f"Bearer {role_tokens[Role.FINANCE]}"}
    assert (await gw.http.head("/api/budgets", headers=finance)).status_code == 200
    assert (await gw.http.head("/api/keys", headers=finance)).status_code == 403
