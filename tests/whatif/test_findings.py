"""The sentences of a what-if: money as people read it, and a plain statement when the
proposal changes nothing."""

from __future__ import annotations

import pytest

from sluicegate.whatif.findings import money
from tests.whatif.support import DAY, HOUR, WED, bench, served


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (0, "$0.00"),
        (1234.5, "$1,234.50"),
        (0.7, "$0.70"),
        (0.0135, "$0.0135"),
        (0.000123, "$0.000123"),
        (-0.2865, "-$0.2865"),
        (-12.0, "-$12.00"),
    ],
)
def test_money(amount, text):
    assert money(amount) == text


async def test_a_proposal_that_changes_nothing_says_so(engine):
    b = bench(engine)
    await b.write([served(n, WED + HOUR + n) for n in range(10)])
    generous = """
name: limits
type: gateway-rate-limit-config
rules:
  - id: generous
    limit: {requests: 1000, window: 1h}
"""
    report = await b.run(generous, "1d", until=WED + DAY)
    assert report.findings == [
        "the proposal would have changed nothing over these 10 requests: no rule would have "
        "refused, queued or redirected any more or fewer of them, and no route or price "
        "differs"
    ]
    assert report.routes == []
