"""Record sinks: every sink gets the finished request, whatever another one does."""

from __future__ import annotations

import logging

import pytest

from sluicegate.model.record import LedgerRecord
from sluicegate.sinks import RecordSink, hand_to_sinks


class Kept:
    def __init__(self) -> None:
        self.records: list[LedgerRecord] = []

    def record(self, rec: LedgerRecord) -> None:
        self.records.append(rec)


class Broken:
    def record(self, rec: LedgerRecord) -> None:
        raise RuntimeError("rollups are down")


def test_a_failing_sink_is_logged_and_the_others_still_get_the_record(
    caplog: pytest.LogCaptureFixture,
):
    before, after = Kept(), Kept()
    sinks: tuple[RecordSink, ...] = (before, Broken(), after)
    rec = LedgerRecord(request_id="req_1", ts=0.0)
    with caplog.at_level(logging.ERROR, logger="sluicegate.sinks"):
        hand_to_sinks(sinks, rec)  # does not raise into the request
    assert before.records == [rec] and after.records == [rec]
    assert "req_1" in caplog.text and "rollups are down" in caplog.text
