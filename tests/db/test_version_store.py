from __future__ import annotations

import asyncio
import time

import pytest

from sluicegate.config.problems import ConfigConflict, VersionConflict
from sluicegate.config.version_store import (
    ConfigVersionStore,
    MemoryConfigVersionStore,
    SqlConfigVersionStore,
)
from tests.db.databases import ALL_BACKENDS, Databases

DOCS = [
    {
        "name": "default",
        "type": "gateway-rate-limit-config",
        "rules": [
            {
                "when": {"subjects": ["team:red"]},
                "limit": {"requests": 10, "window": "1m"},
                "zeta": 1,
                "alpha": None,
            }
        ],
    },
    {"name": "smart", "type": "gateway-load-balancing-config", "targets": []},
]
SOURCE = "name: default\ntype: gateway-rate-limit-config\n---\nname: smart\n"


@pytest.fixture(params=ALL_BACKENDS)
async def versions(request: pytest.FixtureRequest, databases: Databases) -> ConfigVersionStore:
    if request.param == "memory":
        return MemoryConfigVersionStore()
    return SqlConfigVersionStore(await databases.engine(request.param))


async def test_empty_store(versions: ConfigVersionStore) -> None:
    assert await versions.latest_version_number() == 0
    assert await versions.latest() is None and await versions.get(1) is None
    assert await versions.history() == []


async def test_append_numbers_versions_and_keeps_documents_verbatim(
    versions: ConfigVersionStore,
) -> None:
    before = time.time()
    assert await versions.append(DOCS, SOURCE, "ann", "first", version=1) == 1
    assert await versions.append(DOCS[:1], "name: default\n", "bob", None, version=2) == 2
    assert await versions.latest_version_number() == 2
    first = await versions.get(1)
    assert first is not None
    assert (first.version, first.applied_by, first.comment) == (1, "ann", "first")
    assert first.documents == DOCS and first.source == SOURCE
    assert list(first.documents[0]["rules"][0]) == ["when", "limit", "zeta", "alpha"]
    assert before <= first.applied_at <= time.time()
    latest = await versions.latest()
    assert latest is not None and latest.version == 2 and latest.comment is None
    assert latest.documents == DOCS[:1]


async def test_history_is_newest_first_and_limited(versions: ConfigVersionStore) -> None:
    for n in range(5):
        await versions.append(
            [{"name": f"d{n}", "type": "t"}], f"# {n}", "ann", None, version=n + 1
        )
    history = await versions.history(limit=3)
    assert [v.version for v in history] == [5, 4, 3]
    assert history[0].documents == [{"name": "d4", "type": "t"}]
    assert [v.version for v in await versions.history()] == [5, 4, 3, 2, 1]


async def test_appending_an_existing_version_is_a_version_conflict(
    versions: ConfigVersionStore,
) -> None:
    await versions.append(DOCS, SOURCE, "ann", "first", version=1)
    with pytest.raises(VersionConflict) as caught:
        await versions.append(DOCS[:1], "# late", "bob", "second", version=1)
    assert caught.value.version == 1
    assert isinstance(caught.value, ConfigConflict) and caught.value.status == 409
    first = await versions.get(1)  # the first writer's row is untouched
    assert first is not None and (first.applied_by, first.source) == ("ann", SOURCE)
    assert await versions.latest_version_number() == 1
    assert await versions.append([], "# next", "bob", None, version=2) == 2


async def test_concurrent_appends_of_one_version_have_exactly_one_winner(
    versions: ConfigVersionStore,
) -> None:
    outcomes = await asyncio.gather(
        *(
            versions.append(
                [{"name": f"w{n}", "type": "t"}], f"# {n}", f"writer-{n}", None, version=1
            )
            for n in range(5)
        ),
        return_exceptions=True,
    )
    winners = [n for n, outcome in enumerate(outcomes) if outcome == 1]
    assert len(winners) == 1
    assert all(isinstance(o, VersionConflict) for n, o in enumerate(outcomes) if n != winners[0])
    history = await versions.history()
    assert [(v.version, v.applied_by) for v in history] == [(1, f"writer-{winners[0]}")]


async def test_versions_are_written_as_numbered(versions: ConfigVersionStore) -> None:
    assert await versions.append([], "# 3", "ann", None, version=3) == 3
    assert await versions.append([], "# 4", "ann", None, version=4) == 4
    assert await versions.latest_version_number() == 4
    assert [v.version for v in await versions.history()] == [4, 3]
    assert await versions.get(1) is None
    for bad in (0, -1):
        with pytest.raises(ValueError):
            await versions.append([], "", "ann", None, version=bad)


async def test_returned_documents_are_copies(versions: ConfigVersionStore) -> None:
    docs = [{"name": "a", "type": "t", "list": [1]}]
    await versions.append(docs, "", "ann", None, version=1)
    docs[0]["list"].append(2)  # type: ignore[attr-defined]
    row = await versions.latest()
    assert row is not None and row.documents == [{"name": "a", "type": "t", "list": [1]}]
    row.documents[0]["name"] = "changed"
    again = await versions.latest()
    assert again is not None and again.documents[0]["name"] == "a"
