"""What a ledger batch adds to the rollups: the deltas of the records the insert-or-ignore
actually stored, and only those (a replayed batch's duplicates must add nothing)."""

from __future__ import annotations

from collections.abc import Collection

from sluicegate.analytics.rollups import RollupDeltas, rollup_deltas
from sluicegate.db.errors import StoreRejected
from sluicegate.model.record import LedgerRecord


def first_of_each(
    records: list[LedgerRecord], stored_before: Collection[str]
) -> list[LedgerRecord]:
    """The records whose id was not stored before the insert: the first of each id, as
    insert-or-ignore keeps the first of duplicates in one batch."""
    landed = []
    seen = set(stored_before)
    for record in records:
        if record.request_id not in seen:
            seen.add(record.request_id)
            landed.append(record)
    return landed


def returned(records: list[LedgerRecord], inserted_ids: Collection[str]) -> list[LedgerRecord]:
    """The records an INSERT ... RETURNING reported inserted (the first of each id)."""
    landed = []
    wanted = set(inserted_ids)
    for record in records:
        if record.request_id in wanted:
            wanted.discard(record.request_id)
            landed.append(record)
    return landed


def deltas_for(records: list[LedgerRecord], metadata_keys: tuple[str, ...]) -> RollupDeltas:
    """The rollup deltas of records just stored. A value the rollups cannot add up (a
    record built with the wrong types) refuses the batch like a value the database
    refuses, so that the writer isolates the record and sets it aside."""
    try:
        return rollup_deltas(records, metadata_keys)
    except (TypeError, ValueError, AttributeError) as exc:
        raise StoreRejected(f"ledger rollups: {type(exc).__name__}: {exc}") from exc
