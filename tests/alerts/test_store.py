from __future__ import annotations

import pytest

from sluicegate.alerts.store import AlertRow, AlertStore, MemoryAlertStore, SqlAlertStore
from tests.db.databases import ALL_BACKENDS, Databases


@pytest.fixture(params=ALL_BACKENDS)
async def alerts(request: pytest.FixtureRequest, databases: Databases) -> AlertStore:
    if request.param == "memory":
        return MemoryAlertStore()
    return SqlAlertStore(await databases.engine(request.param))


def alert(ts: float, **fields: object) -> AlertRow:
    values: dict[str, object] = {
        "ts": ts,
        "kind": "budget",
        "rule_id": "team-red-monthly",
        "severity": "warning",
        "message": "team red at 80% of its monthly budget",
        "payload": {"spent_usd": 800.0, "ceiling_usd": 1000.0, "runbook": "https://x/rb"},
    }
    values.update(fields)
    return AlertRow(**values)  # type: ignore[arg-type]


async def test_append_and_list_newest_first(alerts: AlertStore) -> None:
    first = await alerts.append(alert(100.0))
    second = await alerts.append(alert(300.0, severity="critical", payload={}))
    third = await alerts.append(alert(200.0))
    assert len({first, second, third}) == 3
    listed = await alerts.list()
    assert [a.id for a in listed] == [second, third, first]
    assert listed[2] == alert(100.0, id=first)
    assert [a.id for a in await alerts.list(limit=1)] == [second]


async def test_delivery_state(alerts: AlertStore) -> None:
    a = await alerts.append(alert(1.0))
    b = await alerts.append(alert(2.0))
    await alerts.mark_failed(a, "webhook answered 503")
    await alerts.mark_failed(a, "timeout")
    await alerts.mark_delivered(a)
    await alerts.mark_failed(b, "refused")
    rows = {r.id: r for r in await alerts.list()}
    assert (rows[a].delivered, rows[a].attempts, rows[a].last_error) == (True, 3, "timeout")
    assert (rows[b].delivered, rows[b].attempts, rows[b].last_error) == (False, 1, "refused")
    assert [r.id for r in await alerts.list(undelivered=True)] == [b]
    await alerts.mark_delivered(999)  # unknown ids are ignored
