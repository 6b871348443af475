"""Many replicas: gateway processes sharing one Redis (counters) and one PostgreSQL
database (ledger, keys, config versions), hammered concurrently. Together they must admit
exactly the configured number of requests, keep spend within the budget, pick up config
changes within a second, and record every request with the rule that acted on it."""

from __future__ import annotations

import time

import pytest
import redis

from tests.e2e.gateway import run_gateway
from tests.e2e.policy_support import (
    apply_everywhere,
    budget_rows,
    chat,
    cli,
    events,
    hammer,
    known_everywhere,
    live_version,
    prices_doc,
    rows_for,
    uid,
    wait_for,
)
from tests.support import REDIS_URL, fresh_postgres_database, require_redis

LONG = "tell me a long story about rivers and mountains " * 3

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.fixture(scope="module")
def shared():
    """One fresh PostgreSQL database and a Redis key prefix of this module's own; the keys
    under the prefixes handed out are deleted afterwards (other tests share the Redis)."""
    require_redis()
    prefixes: list[str] = []

    def new_prefix() -> str:
        prefixes.append(f"sgtest-{uid()}:")
        return prefixes[-1]

    with fresh_postgres_database() as database_url:
        yield database_url, new_prefix
    client = redis.Redis.from_url(REDIS_URL)
    for prefix in prefixes:
        keys = list(client.scan_iter(f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    client.close()


@pytest.fixture(scope="module")
def replicas(shared):
    database_url, new_prefix = shared
    args = ("--redis-url", REDIS_URL, "--redis-prefix", new_prefix())
    with run_gateway(database_url, *args) as a, run_gateway(database_url, *args) as b:
        yield a, b


def test_an_applied_change_reaches_every_replica_within_a_second(replicas, tmp_path):
    a, b = replicas
    apply_everywhere(replicas)  # a version to come back to
    u = uid()
    limits = tmp_path / "limits.yaml"
    limits.write_text(f"""name: spread-{u}
type: gateway-rate-limit-config
rules:
  - id: spread-{u}
    when: {{metadata: {{project: spread-{u}}}}}
    limit: {{requests: 1, window: 1h}}
""")
    applied = cli(a, "apply", "-f", str(limits))
    assert applied.returncode == 0, applied.stderr
    started = time.monotonic()
    version = a.admin.get("/api/config").json()["version"]
    wait_for(lambda: live_version(b) == version, timeout=1.0, interval=0.02)
    assert time.monotonic() - started < 1.0
    key = known_everywhere([a, b], a.create_key(name=f"spread-{u}")["key"])
    header = {"X-Sluice-Project": f"spread-{u}"}
    assert chat(b, key, headers=header).status_code == 200
    assert chat(a, key, headers=header).status_code == 429  # one count, shared

    rolled = cli(b, "config", "rollback", str(version - 1))  # and back, from the other one
    assert rolled.returncode == 0, rolled.stderr
    started = time.monotonic()
    wait_for(lambda: live_version(a) == version + 1, timeout=1.0, interval=0.02)
    assert time.monotonic() - started < 1.0
    assert chat(a, key, headers=header).status_code == 200  # the rule is gone everywhere


def test_replicas_together_admit_exactly_the_limit_and_stay_within_budget(replicas):
    a, b = replicas
    u = uid()
    apply_everywhere(
        replicas,
        prices_doc(f"prices-{u}", **{"gpt-4o-mini": (0, 1000)}),
        f"""
name: shared-limits-{u}
type: gateway-rate-limit-config
rules:
  - id: exact-{u}
    when: {{metadata: {{project: exact-{u}}}}}
    limit: {{requests: 25, window: 1h}}
  - id: leased-{u}
    when: {{metadata: {{project: leased-{u}}}}}
    limit: {{requests: 300, window: 1h}}
  - id: queue-{u}
    when: {{metadata: {{project: queue-{u}}}}}
    limit: {{requests: 4, window: 1h}}
    on_breach: queue_then_429
    queue_timeout_ms: 500
  - id: degrade-{u}
    when: {{metadata: {{project: degrade-{u}}}}}
    limit: {{requests: 5, window: 1h}}
    on_breach: fallback_to_haiku
""",
        f"""
name: shared-budget-{u}
type: gateway-budget-config
budgets:
  - id: money-{u}
    scope: {{metadata: {{project: money-{u}}}}}
    ceiling_usd: 0.12
    window: daily
    alerts: [{{at_pct: 50}}, {{at_pct: 100}}]
""",
    )
    keys = [known_everywhere([a, b], a.create_key(name=f"r{i}-{u}")["key"]) for i in range(2)]

    def calls(project: str, count: int, **kw):
        return [
            lambda i=i: chat(
                replicas[i % 2],
                keys[i // 2 % 2],
                content=LONG,
                headers={"X-Sluice-Project": f"{project}-{u}"},
                **kw,
            )
            for i in range(count)
        ]

    exact = hammer(calls("exact", 80), workers=40)
    assert sum(r.status_code == 200 for r in exact) == 25
    assert {r.headers["x-sluice-rule-id"] for r in exact if r.status_code != 200} == {f"exact-{u}"}

    # large enough for the replicas to lease capacity (300 / 8 >= 16): still exact
    leased = hammer(calls("leased", 450), workers=40)
    assert sum(r.status_code == 200 for r in leased) == 300
    assert {r.headers["x-sluice-rule-id"] for r in leased if r.status_code != 200} == {
        f"leased-{u}"
    }

    queued = hammer(calls("queue", 10), workers=10)
    assert sum(r.status_code == 200 for r in queued) == 4

    degraded = hammer(calls("degrade", 15), workers=15)
    assert all(r.status_code == 200 for r in degraded)
    served = [r.headers["x-sluice-resolved-model"] for r in degraded]
    assert served.count("openai/gpt-4o-mini") == 5
    assert served.count("anthropic/claude-haiku-4-5") == 10

    # $0.01 a call (10 output tokens at $1000 per million, input free): 12 fit in $0.12
    money = hammer(calls("money", 60, max_tokens=10), workers=40)
    assert sum(r.status_code == 200 for r in money) == 12
    for gateway in replicas:
        status = budget_rows(gateway, f"money-{u}")["daily"]
        assert status["spent_usd"] == pytest.approx(0.12) and status["reserved_usd"] == 0

    def fired() -> list[dict]:
        return [
            r for r in a.admin.get("/api/alerts").json()["data"] if r["rule_id"] == f"money-{u}"
        ]

    wait_for(lambda: len(fired()) >= 2)
    time.sleep(0.3)  # a duplicate from the other replica would have landed by now
    assert sorted(r["payload"]["threshold_pct"] for r in fired()) == [50, 100]  # once each

    # nothing is lost: every request is in the shared ledger with the rule that acted on it
    rows = rows_for(a, exact + queued + degraded + money, timeout=10)
    assert len(rows) == 165
    by_project: dict[str, list[dict]] = {}
    for row in rows:
        by_project.setdefault(row["project"].removesuffix(f"-{u}"), []).append(row)
    acted = {
        project: sorted(tuple(events(r)) for r in group) for project, group in by_project.items()
    }
    assert acted["exact"] == [()] * 25 + [((f"exact-{u}", "hard_block"),)] * 55
    assert (
        acted["queue"] == [()] * 4 + [((f"queue-{u}", "queued"), (f"queue-{u}", "hard_block"))] * 6
    )
    assert acted["degrade"] == [()] * 5 + [((f"degrade-{u}", "fallback"),)] * 10
    assert acted["money"] == [()] * 12 + [((f"money-{u}", "hard_block"),)] * 48
    spent = sum(r["cost_usd"] for r in by_project["money"] if r["status_code"] == 200)
    assert spent == pytest.approx(0.12) and spent <= 0.12 + 1e-9
    assert {r["status_code"] for r in by_project["degrade"]} == {200}
    assert {r["model"] for r in by_project["degrade"] if events(r)} == {"claude-haiku-4-5"}


def test_far_from_the_limit_replicas_admit_from_leases_and_spend_adds_up(replicas):
    """A budget far from its ceiling is served from capacity each replica leased from
    Redis (no Redis call per request); what both spend still adds up to the cent in the
    shared counters, and the leases go back once traffic stops."""
    a, b = replicas
    u = uid()
    apply_everywhere(
        replicas,
        prices_doc(f"prices-{u}", **{"gpt-4o-mini": (0, 1000)}),
        f"""
name: lease-budget-{u}
type: gateway-budget-config
budgets:
  - id: roomy-{u}
    scope: {{metadata: {{project: roomy-{u}}}}}
    ceiling_usd: 1000
    window: daily
""",
    )
    key = known_everywhere([a, b], a.create_key(name=f"roomy-{u}")["key"])
    results = hammer(
        [
            lambda i=i: chat(
                replicas[i % 2],
                key,
                content=LONG,
                max_tokens=10,
                headers={"X-Sluice-Project": f"roomy-{u}"},
            )
            for i in range(200)
        ],
        workers=8,
    )
    assert [r.status_code for r in results] == [200] * 200

    def rows() -> list[dict]:
        return [budget_rows(gateway, f"roomy-{u}")["daily"] for gateway in replicas]

    # $0.01 a call: every replica sees both replicas' $2.00 once their leases are flushed
    wait_for(lambda: all(r["spent_usd"] == pytest.approx(2.0) for r in rows()), timeout=5)
    wait_for(lambda: all(r["reserved_usd"] == 0 for r in rows()), timeout=5)  # leases back


def test_budget_spend_is_rebuilt_from_the_ledger_when_redis_starts_empty(shared, replicas):
    database_url, new_prefix = shared
    a, b = replicas
    u = uid()
    apply_everywhere(
        replicas,
        prices_doc(f"prices-{u}", **{"gpt-4o-mini": (0, 1000)}),
        f"""
name: rebuild-{u}
type: gateway-budget-config
budgets:
  - id: rebuilt-{u}
    scope: {{metadata: {{project: rebuilt-{u}}}}}
    ceiling_usd: 0.05
    windows: [daily, rolling_1h]
""",
    )
    key = known_everywhere([a, b], a.create_key(name=f"rb-{u}")["key"])
    header = {"X-Sluice-Project": f"rebuilt-{u}"}
    spent = [chat(g, key, max_tokens=10, content=LONG, headers=header) for g in (a, b, a)]
    assert [r.status_code for r in spent] == [200, 200, 200]
    rows_for(a, spent)  # in the shared ledger

    # a replica on an empty Redis (a new prefix) rebuilds the spend from the ledger
    with run_gateway(
        database_url, "--redis-url", REDIS_URL, "--redis-prefix", new_prefix()
    ) as fresh:
        rows = budget_rows(fresh, f"rebuilt-{u}")
        assert rows["daily"]["spent_usd"] == pytest.approx(0.03)
        assert rows["rolling_1h"]["spent_usd"] == pytest.approx(0.03)
        assert "seeded from the ledger" in fresh.proc.output()
        assert [
            chat(fresh, key, max_tokens=10, content=LONG, headers=header).status_code
            for _ in range(3)
        ] == [200, 200, 429]
