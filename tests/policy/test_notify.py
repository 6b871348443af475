"""WebhookNotifier against a real HTTP receiver on loopback."""

from __future__ import annotations

import time
from typing import Any

from sluicegate.policy.documents import PagerDutyTarget, SlackTarget, WebhookTarget
from sluicegate.policy.notify import Alert, WebhookNotifier
from tests.policy.receiver import Receiver


def alert(*notify: str, threshold: float = 100) -> Alert:
    return Alert(
        id="a1",
        rule_id="intern-sandbox-cap",
        window="monthly",
        threshold_pct=threshold,
        pct=101.0,
        spent_usd=505.0,
        reserved_usd=0.0,
        ceiling_usd=500.0,
        window_start="2026-05-01T00:00:00+00:00",
        resets_at="2026-06-01T00:00:00+00:00",
        notify=notify,
        scope={"metadata": {"X-TFY-Project": ["intern-sandbox"]}},
        message="Budget intern-sandbox-cap reached 100%",
        ts=time.time(),
    )


class MemoryAlertStore:
    def __init__(self) -> None:
        self.rows: dict[int, dict[str, Any]] = {}

    async def append(self, data: dict[str, Any]) -> int:
        self.rows[len(self.rows) + 1] = {"alert": data}
        return len(self.rows)

    async def mark_delivered(self, alert_id: int, attempts: int, error: str | None) -> None:
        self.rows[alert_id].update(attempts=attempts, error=error)


async def test_payload_shapes_and_alert_store():
    async with Receiver() as receiver:
        store = MemoryAlertStore()
        notifier = WebhookNotifier(
            {
                "slack:#ops": SlackTarget(kind="slack", url=receiver.url("/slack")),
                "pagerduty:platform": PagerDutyTarget(kind="pagerduty", url=receiver.url("/pd"), routing_key="RK"),
                "webhook:finops": WebhookTarget(kind="webhook", url=receiver.url("/hook"), headers={"X-A": "1"}),
            },
            alert_store=store,
        )  # fmt: skip
        notifier.submit(alert("slack:#ops", "pagerduty:platform", "webhook:finops"))
        await notifier.close()
    assert receiver.bodies("/slack") == [{"text": "Budget intern-sandbox-cap reached 100%"}]
    (pd,) = receiver.bodies("/pd")
    assert pd["routing_key"] == "RK" and pd["event_action"] == "trigger"
    assert pd["dedup_key"] == "intern-sandbox-cap:monthly:2026-05-01T00:00:00+00:00:100"
    assert pd["payload"]["severity"] == "critical" and pd["payload"]["source"] == "sluicegate"
    assert pd["payload"]["summary"].startswith("Budget intern-sandbox-cap")
    (hook,) = receiver.bodies("/hook")
    assert hook["rule_id"] == "intern-sandbox-cap" and hook["spent_usd"] == 505.0
    assert store.rows[1]["attempts"] == 3 and store.rows[1]["error"] is None
    assert store.rows[1]["alert"]["severity"] == "critical"


async def test_retries_give_up_after_the_last_attempt_and_skip_client_errors():
    async with Receiver(fail_first={"/down": 99, "/bad": 99}) as receiver:
        notifier = WebhookNotifier(
            {"webhook:down": WebhookTarget(kind="webhook", url=receiver.url("/down"))},
            attempts=3,
            backoff_s=0.01,
        )
        notifier.submit(alert("webhook:down", "webhook:nowhere"))
        await notifier.close()
        assert len(receiver.bodies("/down")) == 3
        (entry,) = notifier.history
        deliveries = {d["target"]: d for d in entry["deliveries"]}
        assert deliveries["webhook:down"]["error"] == "HTTP 500"
        assert deliveries["webhook:nowhere"]["attempts"] == 0
        assert "no such target" in deliveries["webhook:nowhere"]["error"]

        rejecting = Receiver(fail_first={"/bad": 99}, fail_status=400)
        async with rejecting:
            notifier = WebhookNotifier({"webhook:bad": WebhookTarget(kind="webhook", url=rejecting.url("/bad"))},
                                       backoff_s=0.01)  # fmt: skip
            notifier.submit(alert("webhook:bad"))
            await notifier.close()
        assert len(rejecting.bodies("/bad")) == 1  # a 400 is not retried


async def test_unreachable_target_and_close_cancels_slow_retries():
    notifier = WebhookNotifier(
        {"webhook:x": WebhookTarget(kind="webhook", url="http://127.0.0.1:1/")},
        attempts=5,
        backoff_s=5,
    )
    notifier.submit(alert("webhook:x"))
    started = time.monotonic()
    await notifier.close(timeout_s=0.3)
    assert time.monotonic() - started < 2
    assert notifier.history == []  # cancelled mid-backoff
