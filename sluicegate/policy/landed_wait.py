"""Waiting for the ledger to land before a budget rebuild reads it.

After the counter store lost its data, a rebuild seeds each budget counter with the
ledger's spend of the requests that arrived before the counter's cutoff. Requests that
finished before the cutoff were settled into the counter that was lost: the ledger sum
must hold their rows, yet each replica's ledger writer lands rows a batch at a time
(0.2 s, longer under load or with the database slow). So the rebuild waits until every
live replica says it has landed what finished before the cutoff (`LandedMarks`, kept by
the ledger: ledger/landed_marks.py), for at most `timeout_s`. Past that, or if the marks
cannot be read, it reads the ledger all the same, says so in the log, and the rebuild
passes that follow (store_health.py) pick up the late rows; meanwhile admissions may
overshoot by what had not landed.

"Finished" is when the pipeline hands the request's record to the ledger writer: after
its settlement, and for an answer that is not streamed after the answer was sent. A
request settled before the cutoff whose answer was still being sent, like one still in
flight, is not waited for: its row lands after the read and is in neither part until the
next pass. Those requests, at most what was in flight at the loss, bound the overshoot.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from sluicegate.errors import StoreUnavailable

log = logging.getLogger("sluicegate.policy.engine")

POLL_S = 0.05


class LandedMarks(Protocol):
    async def lagging(self, t: float) -> list[str]:
        """The live ledger writers that have not yet landed the row of every request
        finished before `t` (unix seconds), each described for a log line; [] once all
        have. Raises StoreUnavailable."""
        ...


async def wait_landed(
    marks: LandedMarks, t: float, timeout_s: float, poll_s: float = POLL_S
) -> bool:
    """True once every live writer has landed what finished before `t`; False (logged)
    after `timeout_s` or if the marks cannot be read."""
    behind: list[str] = []
    try:
        async with asyncio.timeout(timeout_s):
            while behind := await marks.lagging(t):
                await asyncio.sleep(poll_s)
        return True
    except TimeoutError:
        log.warning(
            "policy: budget rebuild reads the ledger without every row of requests finished "
            "before its cutoff (waited %gs for %s); later passes add them",
            timeout_s,
            ", ".join(behind) or "the landed marks",
        )
    except StoreUnavailable as exc:
        log.warning("policy: budget rebuild could not read the ledger's landed marks: %s", exc)
    return False
