from __future__ import annotations

import asyncio
import time

import pytest

from sluicegate.config.version_store import (
    ConfigVersionStore,
    MemoryConfigVersionStore,
    SqlConfigVersionStore,
)
from tests.db.databases import ALL_BACKENDS, Databases

DOCS = [
    {"name": "default", "type": "gateway-rate-limit-config",
     "rules": [{"when": {"subjects": ["team:red"]}, "limit": {"requests": 10, "window": "1m"},
                "zeta": 1, "alpha": None}]},
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
        versions: ConfigVersionStore) -> None:
    before = time.time()
    assert await versions.append(DOCS, SOURCE, "ann", "first") == 1
    assert await versions.append(DOCS[:1], "name: default\n", "bob", None) == 2
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
        await versions.append([{"name": f"d{n}", "type": "t"}], f"# {n}", "ann", None)
    history = await versions.history(limit=3)
    assert [v.version for v in history] == [5, 4, 3]
    assert history[0].documents == [{"name": "d4", "type": "t"}]
    assert [v.version for v in await versions.history()] == [5, 4, 3, 2, 1]


async def test_concurrent_appends_get_distinct_versions(versions: ConfigVersionStore) -> None:
    numbers = await asyncio.gather(*(versions.append([], f"# {n}", "ann", None)
                                     for n in range(5)))
    assert sorted(numbers) == [1, 2, 3, 4, 5]


async def test_returned_documents_are_copies(versions: ConfigVersionStore) -> None:
    docs = [{"name": "a", "type": "t", "list": [1]}]
    await versions.append(docs, "", "ann", None)
    docs[0]["list"].append(2)  # type: ignore[attr-defined]
    row = await versions.latest()
    assert row is not None and row.documents == [{"name": "a", "type": "t", "list": [1]}]
    row.documents[0]["name"] = "changed"
    again = await versions.latest()
    assert again is not None and again.documents[0]["name"] == "a"
