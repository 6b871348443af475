"""An apply that names the documents it was reviewed against (the web UI's apply from an
action queue): refused with ConfigStale when one of them changed, also when the change
lands while the apply is being written (the check runs again on the rebase); applied when
only other documents changed."""

from __future__ import annotations

import pytest

from sluicegate.config.diff import keyed
from sluicegate.config.problems import ConfigStale
from sluicegate.config.registry import DocumentRegistry
from sluicegate.config.service import ConfigService
from sluicegate.config.version_store import SqlConfigVersionStore
from tests.config.documents import BOTH, RATE_LIMITS
from tests.config.racing import RivalWritesFirst

HOURLY = RATE_LIMITS.replace("window: 1m", "window: 1h")
DAILY = RATE_LIMITS.replace("window: 1m", "window: 1d")
KEY = ("test-rate-limit", "team-limits")


async def test_a_document_changed_since_the_review_is_not_overwritten(
    sqlite_store: SqlConfigVersionStore, registry: DocumentRegistry
) -> None:
    service = ConfigService(sqlite_store, registry)
    await service.apply(BOTH, applied_by="alice")  # v1: what the reviewer saw
    reviewed = keyed((await service.get(1)).documents)
    await service.apply(DAILY, applied_by="bob")  # v2 changes the same document
    with pytest.raises(ConfigStale, match="team-limits was changed since the change was rev"):
        await service.apply(HOURLY, applied_by="carol", expected={KEY: reviewed[KEY]})
    assert (await service.current()).version == 2
    absent = ("test-rate-limit", "other")  # expected absent, and still absent: applies
    other = RATE_LIMITS.replace("team-limits", "other")
    done = await service.apply(other, applied_by="carol", expected={absent: None})
    assert done.applied and done.version == 3
    with pytest.raises(ConfigStale, match="other was created since"):
        await service.apply(other, applied_by="carol", expected={absent: None})


async def test_a_change_landing_during_the_write_is_caught_on_the_rebase(
    sqlite_store: SqlConfigVersionStore, registry: DocumentRegistry
) -> None:
    await ConfigService(sqlite_store, registry).apply(BOTH, applied_by="alice")  # v1
    first = await sqlite_store.get(1)
    assert first is not None
    reviewed = keyed(first.documents)

    def rival_edits_the_same(version: int) -> dict[str, object]:
        return {
            "name": "team-limits",
            "type": "test-rate-limit",
            "rules": [{"id": "per-user", "limit": {"requests": version, "window": "1m"}}],
        }

    racing = RivalWritesFirst(sqlite_store, times=1, rival_document=rival_edits_the_same)
    with pytest.raises(ConfigStale, match="version 2 is live now"):
        await ConfigService(racing, registry).apply(
            HOURLY, applied_by="carol", expected={KEY: reviewed[KEY]}
        )
    latest = await sqlite_store.latest()
    assert latest is not None and latest.version == 2 and latest.applied_by == "rival"

    # a rival writing another document meanwhile does not make the review stale
    racing = RivalWritesFirst(sqlite_store, times=1)
    second = await sqlite_store.get(2)
    assert second is not None
    current = keyed(second.documents)
    result = await ConfigService(racing, registry).apply(
        HOURLY, applied_by="carol", expected={KEY: current[KEY]}
    )
    assert (result.version, result.previous_version, result.applied) == (4, 3, True)
