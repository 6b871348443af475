"""Merging the rollup deltas of consecutive chunks gives the deltas of the whole ledger
(analytics/rollup_merge.py), which is what lets a bulk load compute deltas per chunk in
parallel and write each table once."""

from __future__ import annotations

import math

import pytest

from sluicegate.analytics.rollup_merge import merge_deltas
from sluicegate.analytics.rollups import RollupDeltas, rollup_deltas
from sluicegate.model.record import LedgerRecord
from tests.analytics.ledger_rows import ledger_records

KEYS = ("customer_id",)


def in_ledger_order(count: int, seed: int) -> list[LedgerRecord]:
    records = ledger_records(count, start=1_790_000_000.0, span_s=3 * 86400, seed=seed)
    return sorted(records, key=lambda r: (r.ts, r.request_id))


def assert_same_deltas(got: RollupDeltas, want: RollupDeltas) -> None:
    for (table, got_rows), (_, want_rows) in zip(got.tables(), want.tables(), strict=True):
        assert got_rows.keys() == want_rows.keys(), table.name
        for key, row in want_rows.items():
            for a, b in zip(got_rows[key], row, strict=True):
                if isinstance(b, float):  # the same values added in another grouping
                    assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12), (table.name, key)
                else:
                    assert a == b, (table.name, key, a, b)


@pytest.mark.parametrize(
    "cuts", [(1,), (700, 701), (3, 500, 1200, 1999), tuple(range(50, 2000, 50))]
)
def test_chunks_merged_in_order_equal_the_deltas_of_the_whole(cuts: tuple[int, ...]) -> None:
    records = in_ledger_order(2000, seed=3)
    bounds = (0, *cuts, len(records))
    total = RollupDeltas()
    for start, end in zip(bounds, bounds[1:]):
        merge_deltas(total, rollup_deltas(records[start:end], KEYS))
    whole = rollup_deltas(records, KEYS)
    assert len(whole.sessions) > 10 and len(whole.metadata) > 0
    assert_same_deltas(total, whole)


def test_a_session_keeps_its_first_identity_and_spans_both_chunks() -> None:
    records = in_ledger_order(2000, seed=5)
    first, second = records[:1000], records[1000:]
    total = rollup_deltas(first, KEYS)
    merge_deltas(total, rollup_deltas(second, KEYS))
    shared = set(rollup_deltas(first).sessions) & set(rollup_deltas(second).sessions)
    assert shared  # the property above is exercised across the cut
    whole = rollup_deltas(records, KEYS)
    for session_id in shared:
        assert total.sessions[session_id][:8] == whole.sessions[session_id][:8]
