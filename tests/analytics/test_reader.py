"""The reader: rollup rows read per window (day rows for whole days, hour rows at the
ends) give what raw rows give for the same window, measure by measure, on SQLite and
PostgreSQL; and which table answers which query."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, literal, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics.config import AnalyticsSettings
from sluicegate.analytics.dimensions import DIMENSIONS, AnyDimension, MetadataDimension
from sluicegate.analytics.measures import raw_has
from sluicegate.analytics.query import Filter
from sluicegate.analytics.reader import AnalyticsReader, Plan
from sluicegate.analytics.sources import RAW, Source, choose
from sluicegate.analytics.window import DAY, HOUR, Window, window_from
from sluicegate.db.schema import USAGE_MEASURES, rollup_metadata, rollup_usage
from sluicegate.errors import InvalidRequest, StoreUnavailable
from tests.analytics.landing import land
from tests.analytics.traffic import traffic
from tests.db.databases import Databases

DAY0 = 1_780_000_000.0 - 1_780_000_000.0 % DAY  # a UTC midnight
USAGE = Source("usage", rollup_usage)
SHARED = [m for m in (*USAGE_MEASURES, "cost_usd", "latency_sum_ms", "ttft_sum_ms") if raw_has(m)]
D = DIMENSIONS

WINDOWS = [  # (since, until) offsets from DAY0, none aligned to an hour
    (7 * HOUR + 13 * 60, 2 * DAY + 5 * HOUR + 41 * 60),
    (-3 * HOUR - 1, 4 * HOUR + 1),
    (DAY + 30 * 60, DAY + 50 * 60),
    (-DAY - 7, 3 * DAY + 7),
]


@pytest.fixture
async def landed(engine: AsyncEngine) -> AsyncEngine:
    await land(engine, traffic(1200, start=DAY0 - DAY, span_s=4 * DAY), ("customer_id",))
    return engine


def _window(since: float, until: float) -> Window:
    return window_from(str(DAY0 + since), str(DAY0 + until), now=DAY0)


async def test_rollups_read_per_window_equal_raw_rows_for_every_measure(
    landed: AsyncEngine,
) -> None:
    reader = AnalyticsReader(landed)
    group = [D["provider"], D["status_class"], D["project"]]
    for since, until in WINDOWS:
        window = _window(since, until)
        assert window.since % HOUR == 0 and window.until % HOUR == 0
        from_rollups = await reader.groups(Plan(USAGE, window), SHARED, group, limit=1000)
        from_raw = await reader.groups(Plan(RAW, window), SHARED, group, limit=1000)
        assert from_rollups and len(from_rollups) < 1000
        assert [g.values for g in from_rollups] == [g.values for g in from_raw]
        for rolled, raw in zip(from_rollups, from_raw, strict=True):
            for name in SHARED:
                assert rolled.figures[name] == pytest.approx(raw.figures[name], abs=1e-6), name
        total = await reader.total(Plan(USAGE, window), SHARED)
        assert total["requests"] == sum(g.figures["requests"] for g in from_raw)
        assert total["rate_limit_hits"] > 0 and total["budget_hits"] > 0


async def test_filters_restrictions_and_series_agree_between_rollups_and_raw(
    landed: AsyncEngine,
) -> None:
    reader = AnalyticsReader(landed)
    window = _window(*WINDOWS[0])
    filters = (Filter(D["environment"], "prod"), Filter(D["project"], "UNTAGGED"))
    stored = (Filter(D["project"], "alpha"), Filter(D["provider"], "azure"))
    for plan_of in (
        lambda s: Plan(s, window, filters),
        lambda s: Plan(s, window, stored),
        lambda s: Plan(s, window, teams=("search", "data")),
        lambda s: Plan(s, window, teams=()),
    ):
        rolled = await reader.total(plan_of(USAGE), SHARED)
        raw = await reader.total(plan_of(RAW), SHARED)
        assert rolled == pytest.approx(raw)
        assert raw["requests"] > 0 or plan_of(RAW).teams == ()
    for step in ("hour", "day"):
        rolled_series = await reader.series(Plan(USAGE, window), ("requests",), step, limit=100)
        raw_series = await reader.series(Plan(RAW, window), ("requests",), step, limit=100)
        assert [(p.step, p.figures) for p in rolled_series] == [
            (p.step, p.figures) for p in raw_series
        ]
        assert (
            sum(p.figures["requests"] for p in rolled_series)
            == (await reader.total(Plan(RAW, window), ("requests",)))["requests"]
        )


async def test_the_metadata_rollup_equals_raw_rows_carrying_the_key(landed: AsyncEngine) -> None:
    reader = AnalyticsReader(landed)
    window = _window(*WINDOWS[0])
    key = MetadataDimension("customer_id")
    meta = Source("metadata", rollup_metadata, meta_key="customer_id")
    measures = ("requests", "errors", "input_tokens", "output_tokens", "cost_usd")
    group = [key, D["team"], D["model"]]
    rolled = await reader.groups(Plan(meta, window), measures, group, limit=1000)
    raw = await reader.groups(Plan(RAW, window), measures, group, limit=1000, without_empty=key)
    assert rolled and [g.values for g in rolled] == [g.values for g in raw]
    for one, other in zip(rolled, raw, strict=True):
        assert one.figures == pytest.approx(other.figures)


def test_each_query_reads_the_first_table_that_holds_it() -> None:
    window = window_from("2026-05-01", "2026-05-03", now=0)
    long = window_from("2026-03-01", "2026-05-03", now=0)
    settings = AnalyticsSettings(rollup_metadata_keys=("customer_id",), raw_query_max_days=7)
    tags = ("requests", "cost_usd")
    latency = ("requests", "latency_b03")
    meta = MetadataDimension("customer_id")
    other = MetadataDimension("feature")

    def source(
        group: list[AnyDimension],
        filtered: list[AnyDimension],
        measures: tuple[str, ...],
        *,
        w: Window = window,
        derives: bool = False,
    ) -> str:
        choice = choose(
            group, filtered, measures, window=w, settings=settings, derives_no_value=derives
        )
        return choice.source.name

    # the smallest rollup that holds the dimensions: a cuboid, else rollup_usage
    assert source([], [], latency) == "rollup_cuboids:status"
    assert source([D["provider"], D["status_class"], D["error_type"]], [], latency) == (
        "rollup_cuboids:status"
    )
    assert source([D["provider"], D["model"]], [D["team"]], latency) == "rollup_cuboids:model"
    assert source([D["provider"]], [D["status_class"], D["team"]], latency) == (
        "rollup_cuboids:control"
    )
    assert source([D["team"], D["provider"]], [], latency) == "rollup_cuboids:model"
    assert source([D["team"], D["error_type"]], [], latency) == "rollup_cuboids:control"
    assert source([D["client_tool"]], [D["team"]], latency) == "rollup_cuboids:tool"
    assert source([D["client_tool"], D["model"]], [], latency) == "rollup_usage"
    assert source([D["project"]], [D["model"]], tags) == "rollup_cuboids:spend"
    assert source([D["project"]], [D["provider"]], tags) == "rollup_usage"
    assert source([D["environment"]], [], latency) == "rollup_usage"
    # people: rollup_users over user, team and tool, else rollup_users itself
    assert source([D["team"]], [D["user_id"]], tags) == "rollup_tool_users"
    assert source([D["user_id"]], [D["client_tool"]], tags, derives=True) == "rollup_tool_users"
    assert source([D["project"]], [D["user_id"]], tags) == "rollup_users"
    assert source([D["user_id"]], [D["workflow_tag"]], tags, derives=True) == "rollup_users"
    # user_id not first, or a panel that cannot derive "(no value)": raw rows
    assert source([D["team"], D["user_id"]], [], tags, derives=True) == "requests"
    assert source([D["team"]], [D["user_id"]], latency) == "requests"
    assert source([meta], [], tags, derives=True) == "rollup_metadata"
    assert source([D["team"]], [meta], tags) == "rollup_metadata"
    assert source([meta], [], tags, derives=False) == "requests"
    assert source([meta], [D["provider"]], tags, derives=True) == "requests"
    assert source([meta], [other], tags, derives=True) == "requests"
    assert source([other], [], tags, derives=True) == "requests"
    assert source([meta], [], tags, w=long, derives=True) == "rollup_metadata"
    with pytest.raises(InvalidRequest) as caught:
        source([other], [], tags, w=long, derives=True)
    assert caught.value.param == "group_by"
    assert "metadata.feature is not rolled up" in caught.value.message
    assert "rollup_metadata_keys in the gateway-analytics-config" in caught.value.message
    assert "at most 7 days" in caught.value.message
    with pytest.raises(InvalidRequest, match="narrow since/until") as caught:
        source([D["team"]], [D["user_id"]], latency, w=long)
    assert RAW.name == "requests"


def test_a_rollup_that_began_after_the_window_did_is_read_raw_or_said() -> None:
    settings = AnalyticsSettings(rollup_metadata_keys=("customer_id",), raw_query_max_days=7)
    short = window_from("2026-05-01", "2026-05-03", now=0)
    long = window_from("2026-03-01", "2026-05-03", now=0)
    meta = MetadataDimension("customer_id")

    def choice(window: Window, since: dict[str, float] | None) -> tuple[str, list[str]]:
        chosen = choose(
            [meta], [], ("requests",), window=window, settings=settings,
            derives_no_value=True, rolled_up_since=since,
        )  # fmt: skip
        return chosen.source.name, chosen.notes

    began = {"customer_id": window_from("2026-05-02", "2026-05-03", now=0).since}
    assert choice(short, began) == (
        "requests",
        ["metadata.customer_id is rolled up since 2026-05-02T00:00:00Z: read from raw requests"],
    )
    source, notes = choice(long, began)
    assert source == "rollup_metadata"
    assert notes == [
        "metadata.customer_id is rolled up since 2026-05-02T00:00:00Z: requests before then "
        "are counted without it"
    ]
    assert choice(short, {})[1] == [
        "metadata.customer_id has no rollup rows yet: read from raw requests"
    ]
    assert choice(long, {"customer_id": long.since}) == ("rollup_metadata", [])
    assert choice(long, None) == ("rollup_metadata", [])  # coverage not known


async def test_a_query_past_its_time_bound_is_stopped_and_refused(engine: AsyncEngine) -> None:
    reader = AnalyticsReader(engine, timeout_s=0.3)
    counting = select(literal(1).label("n")).cte("counting", recursive=True)
    counting = counting.union_all(select(counting.c.n + 1).where(counting.c.n < 2**31 - 1))
    endless = select(func.count()).select_from(counting)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        await reader.run(endless)
    assert caught.value.status == 503 and caught.value.code == "analytics_timeout"
    assert "narrow the window" in caught.value.message
    assert time.monotonic() - started < 5
    # the statement was stopped, not left running: the database answers at once
    started = time.monotonic()
    window = _window(*WINDOWS[0])
    assert (await reader.total(Plan(USAGE, window), ("requests",)))["requests"] == 0
    assert time.monotonic() - started < 2


async def test_reads_run_together_fail_as_one_read_would(engine: AsyncEngine) -> None:
    """A panel's reads run at once: a read past its time bound still answers the caller
    with the reader's 503 (not a group of errors), and the other reads' connections are
    back for the next query."""
    reader = AnalyticsReader(engine, timeout_s=0.3)
    counting = select(literal(1).label("n")).cte("counting", recursive=True)
    counting = counting.union_all(select(counting.c.n + 1).where(counting.c.n < 2**31 - 1))
    endless = select(func.count()).select_from(counting)
    plan = Plan(USAGE, _window(*WINDOWS[0]))
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        await reader.together(
            reader.total(plan, ("requests",)), reader.run(endless), reader.run(endless)
        )
    assert caught.value.code == "analytics_timeout" and time.monotonic() - started < 5
    total, seven, again = await reader.together(
        reader.total(plan, ("requests",)),
        reader.run(select(literal(7).label("n"))),
        reader.total(plan, ("errors",)),
    )
    assert total["requests"] == 0 and seven[0]["n"] == 7 and again["errors"] == 0


@pytest.mark.postgres
async def test_postgresql_reads_run_without_jit_and_leave_the_connection_as_it_was(
    databases: Databases,
) -> None:
    """JIT compiling cost more than it saved on analytics statements; the setting is the
    statement's transaction's own, so the pooled connection keeps the server's default."""
    engine = await databases.engine("postgres")
    reader = AnalyticsReader(engine)
    [row] = await reader.run(select(func.current_setting("jit").label("jit")))
    assert row["jit"] == "off"
    async with engine.connect() as conn:
        default = (await conn.execute(select(func.current_setting("jit")))).scalar()
    assert default == "on"
