"""Admin API tokens through the CLI against a real `sluicegate serve`: made, listed and
revoked with `sluicegate tokens`, used as the CLI's credential with their role (a role
refusal is one line and exit 1, a revoked token exit 2), the trail in `sluicegate audit`;
and a revocation on one replica refused by another within a poll (PostgreSQL)."""

from __future__ import annotations

import re
import subprocess
import time

import httpx
import pytest

from tests.e2e.gateway import RunningGateway, run_cli, run_gateway
from tests.support import fresh_postgres_database


def created(result: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    assert result.returncode == 0, result.stderr
    token_id = re.search(r"^id:\s+(tok_\w+)$", result.stdout, re.M)
    token = re.search(r"^token: (sga-\S+)", result.stdout, re.M)
    assert token_id and token, result.stdout
    return token_id.group(1), token.group(1)


def test_tokens_through_the_cli(gateway: RunningGateway) -> None:
    token_id, token = created(
        run_cli(gateway, "tokens", "create", "--role", "finance", "--name", "fin-cli")
    )
    lead = run_cli(
        gateway, "tokens", "create", "--role", "team-lead", "--name", "lead", "--team", "search"
    )
    assert "role:  team-lead (teams: search)" in lead.stdout
    no_team = run_cli(gateway, "tokens", "create", "--role", "team-lead", "--name", "lead")
    assert no_team.returncode == 1
    assert no_team.stderr.strip() == "error: a team-lead token needs at least one team"

    listed = run_cli(gateway, "tokens", "list", "--state", "active")
    assert listed.returncode == 0, listed.stderr
    (line,) = [row for row in listed.stdout.splitlines() if token_id in row]
    assert (
        "fin-cli" in line and "finance" in line and "active" in line and token not in listed.stdout
    )

    budgets = run_cli(gateway, "budgets", credential=token)
    assert budgets.returncode == 0, budgets.stderr
    keys = run_cli(gateway, "keys", "list", credential=token)
    assert keys.returncode == 1
    assert keys.stderr.strip() == (
        "error: the finance role may not GET /api/keys (roles allowed: admin)"
    )

    revoked = run_cli(gateway, "tokens", "revoke", token_id)
    assert revoked.returncode == 0 and revoked.stdout.strip() == f"revoked {token_id}"
    refused = run_cli(gateway, "budgets", credential=token)
    assert refused.returncode == 2
    assert "unknown or revoked admin token" in refused.stderr

    trail = run_cli(gateway, "audit", "--action", "token.revoke")
    assert trail.returncode == 0, trail.stderr
    (row,) = [r for r in trail.stdout.splitlines() if token_id in r]
    assert "token.revoke" in row and f"/api/tokens/{token_id}" in row


def test_a_token_made_to_expire_stops_working_then(gateway: RunningGateway) -> None:
    args = ("--role", "finance", "--name", "brief", "--expires-in", "10s")
    made = run_cli(gateway, "tokens", "create", *args)
    token_id, token = created(made)
    assert re.search(r"^expires: \d{4}-\d\d-\d\d ", made.stdout, re.M), made.stdout
    listed = gateway.admin.get("/api/tokens", params={"state": "active"}).json()["data"]
    (row,) = [r for r in listed if r["id"] == token_id]
    bearer = {"authorization": f"Bearer {token}"}
    if time.time() < row["expires_at"] - 1:  # still valid (the CLI is slow on a busy host)
        assert httpx.get(gateway.url + "/api/budgets", headers=bearer).status_code == 200
    time.sleep(max(0.0, row["expires_at"] - time.time()) + 0.2)
    refused = run_cli(gateway, "budgets", credential=token)
    assert refused.returncode == 2 and "the admin token has expired" in refused.stderr
    expired = run_cli(gateway, "tokens", "list", "--state", "expired")
    (line,) = [row for row in expired.stdout.splitlines() if token_id in row]
    assert "expired" in line

    past = gateway.admin.post(
        "/api/tokens", json={"role": "finance", "name": "p", "expires_at": time.time() - 60}
    )
    assert past.status_code == 400 and past.json()["error"]["param"] == "expires_at"
    bad = gateway.admin.post(
        "/api/tokens", json={"role": "finance", "name": "p", "expires_at": "soon"}
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "expires_at"


@pytest.mark.postgres
def test_a_revocation_reaches_another_replica_within_a_poll() -> None:
    with fresh_postgres_database() as url, run_gateway(url) as first, run_gateway(url) as second:
        response = first.admin.post("/api/tokens", json={"name": "ops", "role": "platform"})
        assert response.status_code == 201, response.text
        token, token_id = response.json()["token"], response.json()["id"]
        bearer = {"authorization": f"Bearer {token}"}

        def status_on_second() -> int:
            return httpx.get(f"{second.url}/api/targets", headers=bearer, timeout=10).status_code

        deadline = time.monotonic() + 5
        while status_on_second() != 200:  # the second replica loads it at its next poll
            assert time.monotonic() < deadline, "the second replica never took the token"
            time.sleep(0.05)
        assert first.admin.delete(f"/api/tokens/{token_id}").status_code == 200
        revoked_at = time.monotonic()
        while status_on_second() != 401:
            assert time.monotonic() - revoked_at < 2.0, "still accepted 2 s after revocation"
            time.sleep(0.05)
        # and on the replica that revoked it, at once
        assert httpx.get(f"{first.url}/api/targets", headers=bearer).status_code == 401
