"""Alert history: every raised alert is kept, with its delivery state (attempts, the last
error, delivered once every target took it). SQL (the gateway's database) or memory."""

from __future__ import annotations

import builtins
from typing import Any, Protocol

import msgspec
from sqlalchemy import insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.db.errors import StoreRejected, translate_errors
from sluicegate.db.rows import to_struct
from sluicegate.db.schema import alerts

_C = alerts.c


class AlertRow(msgspec.Struct, kw_only=True):
    ts: float
    kind: str  # what raised it (Alert.kind): budget | detector | guardrail | slo | ...
    rule_id: str
    severity: str  # info | warning | critical
    message: str  # Alert.summary
    payload: dict[str, Any] = msgspec.field(default_factory=dict)  # Alert.to_dict()
    id: int = 0  # assigned by the store
    delivered: bool = False
    attempts: int = 0  # delivery attempts so far
    last_error: str | None = None


class AlertStore(Protocol):
    async def append(self, alert: AlertRow) -> int: ...

    async def list(self, limit: int = 100, *, undelivered: bool = False) -> builtins.list[AlertRow]:
        """Newest first; `undelivered` keeps only those no sink has taken yet."""
        ...

    async def mark_delivered(self, alert_id: int) -> None: ...

    async def mark_failed(self, alert_id: int, error: str) -> None:
        """Count a failed delivery attempt and keep its error."""
        ...


class MemoryAlertStore:
    """The history in memory: tests, and gateways that keep no database history."""

    def __init__(self) -> None:
        self._rows: dict[int, AlertRow] = {}

    async def append(self, alert: AlertRow) -> int:
        alert_id = len(self._rows) + 1
        self._rows[alert_id] = _copy(msgspec.structs.replace(alert, id=alert_id))
        return alert_id

    async def list(self, limit: int = 100, *, undelivered: bool = False) -> builtins.list[AlertRow]:
        rows = [r for r in self._rows.values() if not (undelivered and r.delivered)]
        rows.sort(key=lambda r: (r.ts, r.id), reverse=True)
        return [_copy(r) for r in rows[: max(limit, 0)]]

    async def mark_delivered(self, alert_id: int) -> None:
        if (row := self._rows.get(alert_id)) is not None:
            row.delivered, row.attempts = True, row.attempts + 1

    async def mark_failed(self, alert_id: int, error: str) -> None:
        if (row := self._rows.get(alert_id)) is not None:
            row.attempts, row.last_error = row.attempts + 1, error


class SqlAlertStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def append(self, alert: AlertRow) -> int:
        values = msgspec.to_builtins(alert)
        del values["id"]
        async with translate_errors("alert append"), self._engine.begin() as conn:
            result = await conn.execute(insert(alerts).values(values))
        key = result.inserted_primary_key
        if key is None:  # SQLAlchemy's None is for a statement that inserted no row
            raise StoreRejected("alert append: the database returned no id")
        return int(key[0])

    async def list(self, limit: int = 100, *, undelivered: bool = False) -> builtins.list[AlertRow]:
        statement = select(alerts).order_by(_C.ts.desc(), _C.id.desc()).limit(max(limit, 0))
        if undelivered:
            statement = statement.where(_C.delivered.is_(False))
        async with translate_errors("alert list"), self._engine.connect() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        return [_row(r) for r in rows]

    async def mark_delivered(self, alert_id: int) -> None:
        await self._update(alert_id, delivered=True, attempts=_C.attempts + 1)

    async def mark_failed(self, alert_id: int, error: str) -> None:
        await self._update(alert_id, attempts=_C.attempts + 1, last_error=error)

    async def _update(self, alert_id: int, **values: Any) -> None:
        async with translate_errors("alert update"), self._engine.begin() as conn:
            await conn.execute(update(alerts).where(_C.id == alert_id).values(**values))


def _row(values: RowMapping) -> AlertRow:
    return to_struct(values, AlertRow)


def _copy(row: AlertRow) -> AlertRow:
    return msgspec.convert(msgspec.to_builtins(row), AlertRow)
