"""Rollups added batch by batch equal the same figures computed directly from raw rows."""

from __future__ import annotations

import math

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.analytics.histogram import BOUNDS_MS, BUCKETS, bucket_of, percentile
from sluicegate.db.schema import (
    LATENCY_BUCKETS,
    requests,
    rollup_metadata,
    rollup_sessions,
    rollup_usage,
    rollup_users,
)
from sluicegate.ledger.sql_store import SqlLedgerStore
from tests.analytics.ledger_rows import ledger_records

R = requests.c
HOUR = 3600.0
START = 1_780_000_000.0 - 1_780_000_000.0 % 86400  # a UTC midnight


async def _land(engine: AsyncEngine, batches: int = 4, per_batch: int = 150) -> None:
    """Records written batch by batch through the ledger store, which keeps the rollups."""
    records = ledger_records(batches * per_batch, start=START, span_s=30 * HOUR)
    store = SqlLedgerStore(engine)
    store.set_rollup_keys(("customer_id",))
    for b in range(batches):
        await store.write_batch(records[b * per_batch : (b + 1) * per_batch])
    await store.close()


async def test_usage_rollups_match_the_raw_rows_per_hour_and_day(engine: AsyncEngine) -> None:
    await _land(engine)
    project = func.coalesce(R.project, "UNTAGGED")
    async with engine.connect() as conn:
        for grain, width in (("hour", 3600), ("day", 86400)):
            bucket = (func.floor(R.ts / width) * width).label("bucket")
            raw = await conn.execute(
                select(
                    bucket,
                    R.team,
                    project,
                    func.count(),
                    func.sum(func.coalesce(R.input_tokens, 0)),
                    func.sum(func.coalesce(R.cost_usd, 0.0)),
                    func.sum(case((R.status_code.between(200, 399), 0), else_=1)),
                ).group_by(bucket, R.team, project)
            )
            expected = {(float(b), t, p): (n, int(i), c, e) for b, t, p, n, i, c, e in raw}
            U = rollup_usage.c
            rolled = await conn.execute(
                select(
                    U.bucket,
                    U.team,
                    U.project,
                    func.sum(U.requests),
                    func.sum(U.input_tokens),
                    func.sum(U.cost_usd),
                    func.sum(U.errors),
                )
                .where(U.grain == grain)
                .group_by(U.bucket, U.team, U.project)
            )
            got = {(float(b), t, p): (int(n), int(i), c, int(e)) for b, t, p, n, i, c, e in rolled}
            assert got.keys() == expected.keys()
            for key, (n, i, c, e) in expected.items():
                assert got[key][0] == n and got[key][1] == i and got[key][3] == e
                assert math.isclose(got[key][2], c, abs_tol=1e-9)


async def test_user_metadata_and_session_rollups_match_raw_rows(engine: AsyncEngine) -> None:
    await _land(engine)
    async with engine.connect() as conn:
        raw_users = dict(
            (
                await conn.execute(
                    select(R.user_id, func.count())
                    .where(R.user_id.is_not(None))
                    .group_by(R.user_id)
                )
            ).all()
        )
        S = rollup_users.c
        users = dict(
            (
                await conn.execute(
                    select(S.user_id, func.sum(S.requests))
                    .where(S.grain == "day")
                    .group_by(S.user_id)
                )
            ).all()
        )
        assert {u: int(n) for u, n in users.items()} == raw_users

        customer = R.metadata["customer_id"].as_string()
        raw_meta = dict(
            (
                await conn.execute(
                    select(customer, func.count()).where(customer.is_not(None)).group_by(customer)
                )
            ).all()
        )
        M = rollup_metadata.c
        meta = dict(
            (
                await conn.execute(
                    select(M.meta_value, func.sum(M.requests))
                    .where(M.grain == "hour", M.meta_key == "customer_id")
                    .group_by(M.meta_value)
                )
            ).all()
        )
        assert {k: int(v) for k, v in meta.items()} == raw_meta

        raw_sessions = {
            s: (n, lo, hi, int(t))
            for s, n, lo, hi, t in await conn.execute(
                select(
                    R.session_id,
                    func.count(),
                    func.min(R.ts),
                    func.max(R.ts),
                    func.sum(func.coalesce(R.output_tokens, 0)),
                )
                .where(R.session_id.is_not(None))
                .group_by(R.session_id)
            )
        }
        X = rollup_sessions.c
        sessions = {
            s: (int(n), lo, hi, int(t))
            for s, n, lo, hi, t in await conn.execute(
                select(X.session_id, X.requests, X.first_ts, X.last_ts, X.output_tokens)
            )
        }
        assert sessions == raw_sessions


async def test_latency_percentiles_from_rollups_fall_in_the_true_values_bucket(
    engine: AsyncEngine,
) -> None:
    await _land(engine)
    U = rollup_usage.c
    async with engine.connect() as conn:
        values = sorted(
            v for (v,) in await conn.execute(select(R.latency_ms).where(R.latency_ms.is_not(None)))
        )
        sums = (
            await conn.execute(
                select(*(func.sum(U[f"latency_b{i:02d}"]) for i in range(BUCKETS))).where(
                    U.grain == "day"
                )
            )
        ).one()
    counts = [int(c) for c in sums]
    for q in (0.5, 0.9, 0.99):
        true = values[math.ceil(q * len(values)) - 1]
        assert bucket_of(percentile(counts, q) or 0.0) == bucket_of(true)


def test_histogram_buckets_match_the_schema() -> None:
    assert BUCKETS == LATENCY_BUCKETS == len(BOUNDS_MS) + 1
    assert bucket_of(0.5) == 0 and bucket_of(1) == 0 and bucket_of(1.01) == 1
    assert bucket_of(10**9) == BUCKETS - 1
    assert percentile([0] * BUCKETS, 0.5) is None


def test_the_analytics_document_sets_keys_and_refuses_a_second_one() -> None:
    import pytest
    from pydantic import ValidationError

    from sluicegate.analytics.config import AnalyticsDocument, AnalyticsSettings
    from sluicegate.config.registry import DocumentRegistry
    from sluicegate.errors import ConfigError

    model = DocumentRegistry().model_for("gateway-analytics-config")
    doc = model.model_validate(
        {
            "name": "analytics",
            "type": "gateway-analytics-config",
            "rollup_metadata_keys": ["customer_id", "feature", "customer_id"],
            "model_tiers": {"claude-opus-4-1": "frontier"},
        }
    )
    assert isinstance(doc, AnalyticsDocument)
    settings = AnalyticsSettings.from_documents([doc])
    assert settings.rollup_metadata_keys == ("customer_id", "feature")
    assert settings.model_tiers == {"claude-opus-4-1": "frontier"}
    with pytest.raises(ConfigError, match="only one"):
        AnalyticsSettings.from_documents([doc, doc])
    with pytest.raises(ValidationError):
        model.model_validate({"name": "a", "type": "gateway-analytics-config", "oops": 1})
