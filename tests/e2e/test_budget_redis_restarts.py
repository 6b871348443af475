"""Budget spend through Redis restarts and outages, end to end: real gateway processes on
a Redis of the test's own (killed and started again; the shared one is never touched)
and a shared ledger. After a restart under load the budget counter is rebuilt from the
ledger while traffic goes on, and spend admitted while Redis was away is charged once it
is back; a fail_closed refusal says when to retry; leases are reported apart."""

from __future__ import annotations

import re
import threading
import time
from contextlib import ExitStack

import httpx
import pytest

from tests.e2e.gateway import RunningGateway, run_gateway
from tests.e2e.policy_support import (
    apply_everywhere,
    budget_rows,
    chat,
    cli,
    known_everywhere,
    prices_doc,
    project_rows,
    rows_for,
    uid,
    wait_for,
)
from tests.redis_server import OwnRedis
from tests.support import fresh_postgres_database

LONG = "tell me a long story about rivers and mountains " * 3
CALL_USD = 0.01  # 10 output tokens at $1000 per million, input free: reserved and spent
WORKERS = 12


def money_docs(u: str, budget_id: str, ceiling: float) -> tuple[str, ...]:
    return (
        prices_doc(f"prices-{u}", **{"gpt-4o-mini": (0, 1000)}),
        f"""name: budget-{u}
type: gateway-budget-config
budgets:
  - id: {budget_id}
    scope: {{metadata: {{project: {budget_id}}}}}
    ceiling_usd: {ceiling}
    window: daily
""",
    )


def ok_rows(gateway: RunningGateway, project: str, answers: list[httpx.Response]) -> list[dict]:
    """The ledger rows of these answers, once every one has landed."""
    wanted = {a.headers["x-sluice-request-id"] for a in answers}

    def landed() -> list[dict] | None:
        found = [r for r in project_rows(gateway, project) if r["request_id"] in wanted]
        return found if len(found) == len(wanted) else None

    return wait_for(landed, timeout=15, interval=0.2)


def ledger_spend(gateway: RunningGateway, project: str) -> float:
    return sum(r["cost_usd"] or 0 for r in project_rows(gateway, project))


@pytest.fixture(scope="module")
def postgres_url():
    with fresh_postgres_database() as url:
        yield url


@pytest.mark.redis
@pytest.mark.postgres
def test_three_replicas_keep_a_hard_ceiling_through_a_redis_restart_under_load(
    postgres_url, record_property
):
    """$1 at $0.01 a call from 12 concurrent clients over three replicas; Redis is killed
    and started empty when about half is spent. The rebuild from the ledger happens under
    that traffic: the ledger ends within the ceiling plus what was in flight at the
    restart (before the fix: $1.55-1.83), and every replica's counter then equals the
    ledger's spend."""
    u = uid()
    project = f"ceiling-{u}"
    with OwnRedis() as own, ExitStack() as stack:
        args = ("--redis-url", own.url, "--counter-failure-mode", "fail_closed")
        replicas = [stack.enter_context(run_gateway(postgres_url, *args)) for _ in range(3)]
        apply_everywhere(replicas, *money_docs(u, project, 1.0))
        key = known_everywhere(replicas, replicas[0].create_key(name=f"c-{u}")["key"])

        stop = threading.Event()
        answers: list[tuple[float, httpx.Response]] = []

        def client(worker: int) -> None:
            n = worker
            deadline = time.monotonic() + 90
            while not stop.is_set() and time.monotonic() < deadline and len(answers) < 3000:
                gateway = replicas[n % 3]
                n += 1
                try:
                    answer = chat(
                        gateway,
                        key,
                        content=LONG,
                        max_tokens=10,
                        timeout=20,
                        headers={"X-Sluice-Project": project},
                    )
                except httpx.HTTPError:
                    continue
                answers.append((time.monotonic(), answer))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(WORKERS)]
        for thread in threads:
            thread.start()
        try:
            wait_for(
                lambda: sum(a.status_code == 200 for _, a in answers) >= 45,
                timeout=60,
                interval=0.01,
            )
            own.restart()  # killed, and back empty
            restarted = time.monotonic()
            # traffic goes on until the ceiling refuses it again, then a little longer
            wait_for(
                lambda: any(t > restarted and a.status_code == 429 for t, a in answers),
                timeout=60,
            )
            time.sleep(1.0)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)

        statuses = {a.status_code for _, a in answers}
        assert statuses <= {200, 429, 503}, statuses
        after = [a for t, a in answers if t > restarted]
        assert sum(a.status_code == 200 for a in after) > 0  # it served again after
        refused = [a for a in after if a.status_code == 429]
        assert {a.json()["error"]["code"] for a in refused} == {"budget_exceeded"}
        ok = [a for _, a in answers if a.status_code == 200]
        rows = ok_rows(replicas[0], project, ok)
        spent = sum(r["cost_usd"] for r in rows)
        record_property("spent_usd", round(spent, 4))  # in the JUnit report: runs compared
        # replicas whose rebuild read the ledger before every replica's rows had landed
        # (its wait for them is bounded): allowed, but then an overshoot is no surprise
        waits_cut_short = sum("without every row" in g.proc.output() for g in replicas)
        record_property("rebuild_waits_cut_short", waits_cut_short)
        in_flight_bound = WORKERS * CALL_USD
        assert spent <= 1.0 + in_flight_bound + 1e-9, spent
        assert spent >= 1.0 - in_flight_bound

        # the counters agree with the ledger once the rows of requests in flight at the
        # restart have landed (a rebuild pass picks them up)
        total = ledger_spend(replicas[0], project)
        assert total == pytest.approx(spent)
        for gateway in replicas:
            wait_for(
                lambda g=gateway: (
                    budget_rows(g, project)["daily"]["spent_usd"] == pytest.approx(total, abs=1e-6)
                ),
                timeout=15,
            )


@pytest.mark.redis
@pytest.mark.parametrize("database", ["sqlite", "postgres"])
@pytest.mark.parametrize("comes_back", ["with its data", "empty"])
def test_spend_admitted_while_redis_was_down_is_counted_once_it_returns(
    database, comes_back, tmp_path, request
):
    """fail_open admits while Redis is away; what those requests spent is charged to the
    budget when Redis returns: replayed from the gateway's journal if Redis kept its data,
    rebuilt from the ledger if it came back empty; counted once either way."""
    u = uid()
    project = f"outage-{u}"
    if database == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with (
        OwnRedis(persist=comes_back == "with its data") as own,
        run_gateway(url, "--redis-url", own.url, "--counter-failure-mode", "fail_open") as gw,
    ):
        apply_everywhere([gw], *money_docs(u, project, 0.08))
        key = gw.create_key(name=f"o-{u}")["key"]
        header = {"X-Sluice-Project": project}

        def call() -> httpx.Response:
            return chat(gw, key, content=LONG, max_tokens=10, headers=header)

        before = [call() for _ in range(2)]
        assert [r.status_code for r in before] == [200, 200]
        own.kill()
        during = [call() for _ in range(3)]
        assert [r.status_code for r in during] == [200, 200, 200]  # fail_open
        rows = rows_for(gw, during)
        assert all(
            [(e["rule_id"], e["action"]) for e in r["policy_events"]]
            == [("counter-store", "fail_open")]
            for r in rows
        )
        own.start()
        wait_for(
            lambda: budget_rows(gw, project)["daily"]["spent_usd"] == pytest.approx(0.05),
            timeout=10,
        )
        time.sleep(1.5)  # the rebuild passes that follow change nothing: counted once
        assert budget_rows(gw, project)["daily"]["spent_usd"] == pytest.approx(0.05)
        after = [call() for _ in range(4)]
        assert [r.status_code for r in after] == [200, 200, 200, 429]
        assert after[3].json()["error"]["code"] == "budget_exceeded"


@pytest.mark.redis
def test_fail_closed_refusals_say_when_to_retry_in_the_clients_format(tmp_path):
    u = uid()
    project = f"closed-{u}"
    with (
        OwnRedis() as own,
        run_gateway(
            f"sqlite:///{tmp_path / 'closed.db'}",
            "--redis-url",
            own.url,
            "--counter-failure-mode",
            "fail_closed",
            "--no-redis-leases",  # every admission asks Redis (a lease admits without it)
        ) as gw,
    ):
        apply_everywhere([gw], *money_docs(u, project, 5.0))
        key = gw.create_key(name=f"f-{u}")["key"]
        header = {"X-Sluice-Project": project}
        assert chat(gw, key, headers=header).status_code == 200
        own.kill()
        openai = chat(gw, key, headers=header)
        anthropic = httpx.post(
            gw.url + "/v1/messages",
            json={
                "model": "claude-haiku-4-5",
                "max_tokens": 10,
                "messages": [{"role": "user", "content": "hi"}],
            },
            headers={"x-api-key": key, "anthropic-version": "2023-06-01", **header},
            timeout=10,
        )
        for refused in (openai, anthropic):
            assert refused.status_code == 503
            assert int(refused.headers["retry-after"]) >= 1
        assert openai.json()["error"]["code"] == "store_unavailable"
        assert "counter store" in openai.json()["error"]["message"]
        assert "retry in" in openai.json()["error"]["message"]
        assert anthropic.json()["type"] == "error"
        assert "counter store" in anthropic.json()["error"]["message"]
        own.start()
        wait_for(lambda: chat(gw, key, headers=header).status_code == 200, timeout=10)


@pytest.mark.redis
def test_leased_capacity_is_reported_apart_from_requests_in_flight(tmp_path):
    """An idle replica holding capacity leases has nothing in flight: /api/budgets and
    `sluicegate budgets` say leased, not reserved; the leases go back once idle."""
    u = uid()
    project = f"leased-{u}"
    with (
        OwnRedis() as own,
        run_gateway(f"sqlite:///{tmp_path / 'lease.db'}", "--redis-url", own.url) as gw,
    ):
        apply_everywhere([gw], *money_docs(u, project, 1000))
        key = gw.create_key(name=f"l-{u}")["key"]
        header = {"X-Sluice-Project": project}
        for _ in range(5):
            assert chat(gw, key, max_tokens=10, content=LONG, headers=header).status_code == 200
        row = budget_rows(gw, project)["daily"]  # idle now: the lease is still held
        assert row["leased_usd"] > 0 and row["reserved_usd"] == 0
        # The CLI shows it too. A lease idle for 1 s goes back, and a CLI start can take
        # longer on a busy host: a request every 0.3 s keeps it held meanwhile.
        busy = threading.Event()
        calls = [5]

        def keep_busy() -> None:
            while not busy.wait(0.3):
                assert chat(gw, key, max_tokens=10, content=LONG, headers=header).status_code == 200
                calls[0] += 1

        keeper = threading.Thread(target=keep_busy)
        keeper.start()
        try:
            shown = cli(gw, "budgets")
        finally:
            busy.set()
            keeper.join(10)
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        header_cells = [
            c.strip() for c in re.split("[│┃]", next(x for x in lines if "leased" in x))
        ]
        cells = [c.strip() for c in re.split("[│┃]", next(x for x in lines if project in x))]
        assert float(cells[header_cells.index("leased $")]) > 0
        wait_for(lambda: budget_rows(gw, project)["daily"]["leased_usd"] == 0, timeout=10)
        assert budget_rows(gw, project)["daily"]["spent_usd"] == pytest.approx(calls[0] * CALL_USD)
