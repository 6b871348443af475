"""The Notifier against a real HTTP receiver on loopback."""

from __future__ import annotations

import time

from sluicegate.alerts.alert import Alert
from sluicegate.alerts.delivery import Notifier
from sluicegate.alerts.store import MemoryAlertStore
from sluicegate.alerts.targets import PagerDutyTarget, SlackTarget, WebhookTarget
from tests.policy.helpers import load
from tests.policy.receiver import Receiver


def alert(*notify: str, threshold: float = 100) -> Alert:
    return Alert(
        id="a1",
        kind="budget",
        rule_id="intern-sandbox-cap",
        severity="critical" if threshold >= 100 else "warning",
        summary="Budget intern-sandbox-cap reached 100%",
        dedup_key=f"intern-sandbox-cap:monthly:2026-05-01T00:00:00+00:00:{threshold:g}",
        notify=notify,
        ts=time.time(),
        details={
            "window": "monthly",
            "threshold_pct": threshold,
            "pct": 101.0,
            "spent_usd": 505.0,
            "reserved_usd": 0.0,
            "ceiling_usd": 500.0,
            "window_start": "2026-05-01T00:00:00+00:00",
            "resets_at": "2026-06-01T00:00:00+00:00",
            "scope": {"metadata": {"X-TFY-Project": ["intern-sandbox"]}},
        },
    )


async def test_payload_shapes_and_alert_store():
    async with Receiver() as receiver:
        store = MemoryAlertStore()
        notifier = Notifier(
            {
                "slack:#ops": SlackTarget(kind="slack", url=receiver.url("/slack")),
                "pagerduty:platform": PagerDutyTarget(
                    kind="pagerduty", url=receiver.url("/pd"), routing_key="RK"
                ),
                "webhook:finops": WebhookTarget(
                    kind="webhook", url=receiver.url("/hook"), headers={"X-A": "1"}
                ),
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
    (row,) = await store.list()
    assert (row.kind, row.rule_id, row.severity, row.delivered) == (
        "budget",
        "intern-sandbox-cap",
        "critical",
        True,
    )
    assert row.payload["dedup_key"] == pd["dedup_key"] and row.last_error is None


async def test_retries_give_up_after_the_last_attempt_and_skip_client_errors():
    async with Receiver(fail_first={"/down": 99, "/bad": 99}) as receiver:
        store = MemoryAlertStore()
        notifier = Notifier(
            {"webhook:down": WebhookTarget(kind="webhook", url=receiver.url("/down"))},
            alert_store=store,
            attempts=3,
            backoff_s=0.01,
        )
        notifier.submit(alert("webhook:down", "webhook:nowhere"))
        await notifier.close()
        assert len(receiver.bodies("/down")) == 3
        (row,) = await store.list()
        assert not row.delivered and row.attempts == 4  # 3 tries + the unknown target
        assert row.last_error in (
            "webhook:down: HTTP 500",
            "webhook:nowhere: no such target in gateway-notification-targets",
        )
        (entry,) = notifier.history
        deliveries = {d["target"]: d for d in entry["deliveries"]}
        assert deliveries["webhook:down"]["error"] == "HTTP 500"
        assert deliveries["webhook:nowhere"]["attempts"] == 0
        assert "no such target" in deliveries["webhook:nowhere"]["error"]

        rejecting = Receiver(fail_first={"/bad": 99}, fail_status=400)
        async with rejecting:
            target = WebhookTarget(kind="webhook", url=rejecting.url("/bad"))
            notifier = Notifier({"webhook:bad": target}, backoff_s=0.01)
            notifier.submit(alert("webhook:bad"))
            await notifier.close()
        assert len(rejecting.bodies("/bad")) == 1  # a 400 is not retried


async def test_unreachable_target_and_close_cancels_slow_retries():
    notifier = Notifier(
        {"webhook:x": WebhookTarget(kind="webhook", url="http://127.0.0.1:1/")},
        attempts=5,
        backoff_s=5,
    )
    notifier.submit(alert("webhook:x"))
    started = time.monotonic()
    await notifier.close(timeout_s=0.3)
    assert time.monotonic() - started < 2
    assert notifier.history == []  # cancelled mid-backoff


async def test_targets_from_documents_hot_reload():
    async with Receiver() as receiver:
        notifier = Notifier()
        url = receiver.url("/a")
        (doc,) = load(
            "name: t\ntype: gateway-notification-targets\ntargets:\n"
            f'  "webhook:a": {{kind: webhook, url: "{url}"}}\n'
        )
        notifier.set_targets([doc])
        notifier.submit(alert("webhook:a"))
        await notifier.close()
    assert len(receiver.bodies("/a")) == 1
