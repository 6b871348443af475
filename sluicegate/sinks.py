"""Record sinks: where a finished request goes once it is over.

The pipeline hands each finished request (a stream: when its last byte has gone out or
the client has left) to every sink, once, from one place. The ledger writer is the
first sink; rollups, metrics and detectors are next. A new consumer is a new sink in the
composition root's tuple, never a new call in the pipeline.

A sink is called on the request path: it must not block (queue the work, as the ledger
writer does). It must not raise either, but if one does the error is logged and the
other sinks still get the record: one broken consumer never costs the ledger its row.
"""

from __future__ import annotations

import logging
from typing import Protocol

from sluicegate.model.record import LedgerRecord

log = logging.getLogger(__name__)


class RecordSink(Protocol):
    def record(self, rec: LedgerRecord) -> None:
        """Take one finished request. Never blocks; should never raise."""
        ...


def hand_to_sinks(sinks: tuple[RecordSink, ...], rec: LedgerRecord) -> None:
    for sink in sinks:
        try:
            sink.record(rec)
        except Exception:
            log.exception("record sink %r failed on %s", sink, rec.request_id)
