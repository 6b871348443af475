from __future__ import annotations

import asyncio
import time

import pytest

from sluicegate.config.live import ConfigSnapshot, LiveConfig
from sluicegate.config.problems import ConfigValidationError
from sluicegate.config.service import ConfigService
from sluicegate.errors import ConfigError, StoreUnavailable
from tests.config.documents import BOTH, BUDGET, RATE_LIMITS, BudgetDoc


async def wait_for(predicate, timeout: float) -> float:
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "timed out"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


@pytest.fixture
async def live(service, registry):
    live = LiveConfig(service, registry, poll_interval=0.05)
    yield live
    await live.stop()


async def test_start_loads_the_latest_version(service, live):
    await service.apply(BOTH, applied_by="alice")
    await live.start()
    snapshot = live.snapshot
    assert (snapshot.version, live.version, live.ready) == (1, 1, True)
    assert [d.name for d in snapshot.of_type("test-budget")] == ["eng-budget"]
    assert isinstance(snapshot.models("test-budget")[0], BudgetDoc)
    assert snapshot.get("test-rate-limit", "team-limits") is not None
    assert snapshot.get("test-rate-limit", "nope") is None
    assert len(snapshot.all()) == 2 and snapshot.applied_by == "alice"


async def test_empty_store_gives_version_zero(live):
    seen: list[ConfigSnapshot] = []
    live.subscribe(seen.append)
    await live.start()
    assert [s.version for s in seen] == [0] and live.ready


async def test_a_change_on_another_replica_arrives_within_a_second(store, registry):
    replica_a = LiveConfig(ConfigService(store, registry), registry)  # default 0.5 s poll
    replica_b = LiveConfig(ConfigService(store, registry), registry)
    await replica_a.start()
    await replica_b.start()
    try:
        seen_b: list[int] = []
        replica_b.subscribe(lambda snapshot: seen_b.append(snapshot.version))
        result = await replica_a.service.apply(BOTH, applied_by="alice")
        await replica_a.reload_now()  # the applier's own replica: at once
        assert replica_a.version == result.version == 1
        elapsed = await wait_for(lambda: replica_b.version == 1, timeout=1.0)
        assert elapsed < 1.0
        assert seen_b == [0, 1]
    finally:
        await replica_a.stop()
        await replica_b.stop()


async def test_a_subscriber_that_raises_keeps_the_old_snapshot(service, live):
    compiled: list[int] = []

    def compile_ok(snapshot: ConfigSnapshot) -> None:
        compiled.append(snapshot.version)

    def compile_budgets(snapshot: ConfigSnapshot) -> None:
        for model in snapshot.models("test-budget"):
            if model.ceiling_usd > 1000:
                raise RuntimeError("ceiling too high for this build")

    live.subscribe(compile_ok)
    live.subscribe(compile_budgets)
    await service.apply(BOTH, applied_by="alice")
    await live.start()
    await service.apply(BUDGET.replace("500", "5000"), applied_by="bob")
    snapshot = await live.reload_now()
    assert snapshot.version == live.version == 1
    assert live.last_error is not None and live.last_error.version == 2
    assert "RuntimeError: ceiling too high" in live.last_error.message
    assert not live.ready
    assert compiled == [1, 2, 1]  # the first subscriber was handed v1 back
    await asyncio.sleep(0.2)  # the poller does not retry the failed version
    assert compiled == [1, 2, 1]
    await service.apply(BUDGET.replace("500", "50"), applied_by="bob")
    await wait_for(lambda: live.version == 3, timeout=1.0)
    assert live.last_error is None and compiled[-1] == 3


async def test_a_stored_version_that_no_longer_validates_is_not_loaded(store, registry, live):
    await store.append(
        documents=[{"name": "x", "type": "test-budget", "ceiling_usd": -1}],
        source="",
        applied_by="sql",
        comment=None,
        version=1,
    )
    await live.start()
    assert live.version == 0
    assert "ceiling_usd: input should be greater than 0" in live.last_error.message


async def test_subscribe_after_start_gets_the_live_snapshot(service, live):
    await service.apply(BOTH, applied_by="alice")
    await live.start()
    seen: list[int] = []
    live.subscribe(lambda snapshot: seen.append(snapshot.version))
    assert seen == [1]


async def test_store_errors_while_polling_keep_serving(store, registry):
    class Flaky:
        failing = False

        def __getattr__(self, name):
            return getattr(store, name)

        async def latest_version_number(self) -> int:
            if self.failing:
                raise StoreUnavailable("down")
            return await store.latest_version_number()

    flaky = Flaky()
    live = LiveConfig(flaky, registry, poll_interval=0.02)
    await ConfigService(store, registry).apply(BOTH, applied_by="alice")
    await live.start()
    flaky.failing = True
    await ConfigService(store, registry).apply(BUDGET.replace("500", "50"), applied_by="a")
    await asyncio.sleep(0.1)
    assert live.version == 1
    flaky.failing = False
    await wait_for(lambda: live.version == 2, timeout=1.0)
    await live.stop()


async def test_bootstrap_applies_files_only_when_they_differ(tmp_path, store, live):
    rate, budget = tmp_path / "rate.yaml", tmp_path / "budget.json"
    rate.write_text(RATE_LIMITS)
    budget.write_text('{"name": "eng-budget", "type": "test-budget", "ceiling_usd": 500}')
    first = await live.bootstrap([rate, str(budget)])
    assert (first.version, first.applied) == (1, True)
    row = await store.latest()
    assert row.applied_by == "serve --config" and "# file: " in row.source
    await live.start()
    again = await live.bootstrap([rate, budget])
    assert (again.applied, await store.latest_version_number()) == (False, 1)
    rate.write_text(RATE_LIMITS.replace("1m", "1d"))
    changed = await live.bootstrap([rate, budget])
    assert changed.version == 2 and live.version == 2  # reloaded at once once started


async def test_bootstrap_errors_name_the_file(tmp_path, live):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntype: test-budget\nceiling_usd: nope\n")
    with pytest.raises(ConfigValidationError) as caught:
        await live.bootstrap([bad])
    assert caught.value.problems[0]["path"] == "ceiling_usd"
    with pytest.raises(ConfigError, match="cannot read config file"):
        await live.bootstrap([tmp_path / "missing.yaml"])


async def test_live_config_accepts_a_store(store, registry):
    live = LiveConfig(store, registry, poll_interval=0.05)
    await ConfigService(store, registry).apply(BOTH, applied_by="alice")
    await live.start()
    assert live.version == 1
    await live.stop()
    await live.stop()  # idempotent
