"""Delivery of alerts to notification targets.

`Notifier.submit` never blocks: producers call it from the request path. Each alert is
delivered in a background task to every target its `notify` list names (payload per kind:
payloads.py), retrying with exponential backoff and jitter; aiohttp errors stay inside this
module. Each alert is appended to the alert store when one is given (every failed attempt
is counted with `mark_failed`, `mark_delivered` once every target has taken it) and kept in
a bounded in-memory history with its delivery results.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Mapping
from typing import Any

import aiohttp
import msgspec

from sluicegate.alerts.alert import Alert
from sluicegate.alerts.payloads import payload_for
from sluicegate.alerts.store import AlertRow, AlertStore
from sluicegate.alerts.targets import NotificationTarget, Targets, target_map

log = logging.getLogger(__name__)


class Delivery(msgspec.Struct, kw_only=True):
    target: str
    attempts: int = 0
    status: int | None = None
    error: str | None = None


class Notifier:
    """The gateway's `AlertSink`: one per process, built by the composition root."""

    def __init__(
        self,
        targets: Targets = (),
        *,
        alert_store: AlertStore | None = None,
        session: aiohttp.ClientSession | None = None,
        attempts: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        timeout_s: float = 10.0,
        history_size: int = 500,
        source: str = "sluicegate",
    ) -> None:
        self._targets = target_map(targets)
        self._store = alert_store
        self._session = session
        self._own_session = session is None
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._source = source
        self._history: deque[dict[str, Any]] = deque(maxlen=history_size)
        self._tasks: set[asyncio.Task[None]] = set()

    def set_targets(self, targets: Targets) -> None:
        """Swap the targets (hot reload); deliveries in flight keep the old ones. Takes the
        gateway-notification-targets documents or a name -> target map."""
        self._targets = target_map(targets)

    def submit(self, alert: Alert) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(alert, dict(self._targets)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def history(self) -> list[dict[str, Any]]:
        """Recent alerts with their delivery results, oldest first."""
        return list(self._history)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Wait up to `timeout_s` for deliveries in flight, cancel the rest."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _deliver(self, alert: Alert, targets: Mapping[str, NotificationTarget]) -> None:
        alert_id = await self._record(alert)
        deliveries = await asyncio.gather(
            *(self._send(name, targets.get(name), alert, alert_id) for name in alert.notify)
        )
        self._history.append(
            {**alert.to_dict(), "deliveries": [msgspec.to_builtins(d) for d in deliveries]}
        )
        for d in deliveries:
            if d.error:
                log.warning("alert %s not delivered to %s: %s", alert.id, d.target, d.error)
        if deliveries and not any(d.error for d in deliveries):
            await self._mark(alert_id, None)

    async def _record(self, alert: Alert) -> int | None:
        if self._store is None:
            return None
        row = AlertRow(
            ts=alert.ts,
            kind=alert.kind,
            rule_id=alert.rule_id,
            severity=alert.severity,
            message=alert.summary,
            payload=alert.to_dict(),
        )
        try:
            return await self._store.append(row)
        except Exception:
            log.exception("alert %s: could not record it in the alert store", alert.id)
            return None

    async def _mark(self, alert_id: int | None, error: str | None) -> None:
        """A failed attempt (`error`) or, with None, delivery to every target."""
        if self._store is None or alert_id is None:
            return
        try:
            if error is None:
                await self._store.mark_delivered(alert_id)
            else:
                await self._store.mark_failed(alert_id, error)
        except Exception:
            log.exception("alert %s: could not update its delivery state", alert_id)

    async def _send(
        self, name: str, target: NotificationTarget | None, alert: Alert, alert_id: int | None
    ) -> Delivery:
        delivery = Delivery(target=name)
        if target is None:
            delivery.error = "no such target in gateway-notification-targets"
            await self._mark(alert_id, f"{name}: {delivery.error}")
            return delivery
        body, headers = payload_for(target, alert, self._source)
        for attempt in range(1, self._attempts + 1):
            delivery.attempts = attempt
            delivery.status, delivery.error = await self._post(target.url, body, headers)
            if delivery.error is None:
                return delivery
            await self._mark(alert_id, f"{name}: {delivery.error}")
            if not _retryable(delivery.status):
                return delivery
            if attempt < self._attempts:
                await asyncio.sleep(self._delay(attempt))
        return delivery

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str | None]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(
                url, data=body, headers=headers, timeout=self._timeout
            ) as resp:
                await resp.read()
                return resp.status, None if resp.status < 300 else f"HTTP {resp.status}"
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            return None, f"{type(exc).__name__}: {exc}".rstrip(": ")

    def _delay(self, attempt: int) -> float:
        ceiling = min(self._max_backoff_s, self._backoff_s * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def _retryable(status: int | None) -> bool:
    """Connection errors, 408, 429 and 5xx are worth another try; other 4xx are not."""
    return status is None or status in (408, 429) or status >= 500
