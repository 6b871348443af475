from __future__ import annotations

import asyncio

import msgspec
import pytest

from sluicegate.db.errors import StoreRejected
from sluicegate.identity.key_store import KeyRow, KeyStore, MemoryKeyStore, SqlKeyStore
from tests.db.databases import ALL_BACKENDS, Databases


@pytest.fixture(params=ALL_BACKENDS)
async def keys(request: pytest.FixtureRequest, databases: Databases) -> KeyStore:
    if request.param == "memory":
        return MemoryKeyStore()
    return SqlKeyStore(await databases.engine(request.param))


def key(n: int, **fields: object) -> KeyRow:
    values: dict[str, object] = {
        "id": f"key_{n}",
        "key_hash": f"hash-{n}",
        "key_prefix": f"sg-{n:04d}",
        "created_at": 1000.0 + n,
    }
    values.update(fields)
    return KeyRow(**values)  # type: ignore[arg-type]


async def test_a_key_round_trips(keys: KeyStore) -> None:
    row = key(
        1,
        name="ci bot",
        user_id="ann",
        team="red",
        project="alpha",
        models=["fast", "smart"],
        is_admin=True,
        expires_at=5000.5,
        metadata={"owner": "platform"},
    )
    stored = await keys.insert(row)
    assert stored.updated_at > 0
    fetched = await keys.get("key_1")
    assert fetched == stored
    assert fetched is not None and fetched.models == ["fast", "smart"]
    assert (fetched.revoked_at, fetched.grace_until, fetched.replaced_by) == (None, None, None)
    assert await keys.get_by_hash("hash-1") == stored
    assert await keys.get("nope") is None and await keys.get_by_hash("nope") is None


async def test_list_is_in_creation_order(keys: KeyStore) -> None:
    for n in (3, 1, 2):
        await keys.insert(key(n))
    assert [r.id for r in await keys.list()] == ["key_1", "key_2", "key_3"]


async def test_duplicate_id_or_hash_is_refused(keys: KeyStore) -> None:
    await keys.insert(key(1))
    with pytest.raises(StoreRejected):
        await keys.insert(key(1, key_hash="other"))
    with pytest.raises(StoreRejected):
        await keys.insert(key(2, key_hash="hash-1"))
    await keys.insert(key(3))
    with pytest.raises(StoreRejected):
        await keys.update("key_3", key_hash="hash-1")
    assert len(await keys.list()) == 2


async def test_update_changes_only_the_given_fields(keys: KeyStore) -> None:
    await keys.insert(key(1, name="old", models=["a"]))
    await keys.insert(key(2))
    updated = await keys.update(
        "key_1", revoked_at=2000.0, models=["b", "c"], metadata={"reason": "leaked"}
    )
    assert updated is not None
    assert (updated.name, updated.revoked_at, updated.models) == ("old", 2000.0, ["b", "c"])
    assert updated.metadata == {"reason": "leaked"}
    assert await keys.get("key_1") == updated
    assert await keys.update("missing", name="x") is None
    with pytest.raises(TypeError):
        await keys.update("key_1", colour="blue")
    with pytest.raises(TypeError):
        await keys.update("key_1", id="key_9")


async def test_rotation_fields(keys: KeyStore) -> None:
    await keys.insert(key(1))
    await keys.insert(key(2, rotated_from="key_1"))
    await keys.update("key_1", replaced_by="key_2", grace_until=9999.0)
    old, new = await keys.get("key_1"), await keys.get("key_2")
    assert old is not None and new is not None
    assert (old.replaced_by, old.grace_until, new.rotated_from) == ("key_2", 9999.0, "key_1")


async def test_max_updated_at_moves_on_every_write(keys: KeyStore) -> None:
    assert await keys.max_updated_at() == 0.0
    seen = [await keys.max_updated_at()]
    await keys.insert(key(1))
    seen.append(await keys.max_updated_at())
    await keys.insert(key(2, updated_at=10.0))  # a caller's clock far behind
    seen.append(await keys.max_updated_at())
    for _ in range(3):  # faster than the clock ticks
        await keys.update("key_1", name="x", updated_at=10.0)
        seen.append(await keys.max_updated_at())
    assert seen == sorted(set(seen)), seen  # strictly increasing


async def test_concurrent_writers_still_move_max_updated_at(keys: KeyStore) -> None:
    for n in range(4):
        await keys.insert(key(n))
    await asyncio.gather(*(keys.update(f"key_{n}", name="x", updated_at=50.0) for n in range(4)))
    stamps = sorted(r.updated_at for r in await keys.list())
    assert len(set(stamps)) == 4  # no two writes share a stamp


async def test_pins_and_envelope_defaults_round_trip(keys: KeyStore) -> None:
    row = key(1, project="sandbox", environment="dev", workflow_tag="t", cost_center="cc")
    stored = await keys.insert(msgspec.structs.replace(row, pinned=["project", "environment"]))
    fetched = await keys.get("key_1")
    assert fetched == stored and fetched is not None
    assert (fetched.pinned, fetched.environment, fetched.cost_center) == (
        ["project", "environment"],
        "dev",
        "cc",
    )
    assert (await keys.insert(key(2))).pinned == []


async def test_replace_is_refused_for_a_revoked_or_replaced_key(keys: KeyStore) -> None:
    await keys.insert(key(1))
    new = await keys.replace("key_1", key(2, rotated_from="key_1"), grace_until=9999.0)
    assert new is not None and new.rotated_from == "key_1"
    old = await keys.get("key_1")
    assert old is not None and (old.replaced_by, old.grace_until) == ("key_2", 9999.0)
    assert await keys.replace("key_1", key(3), grace_until=1.0) is None  # already replaced
    await keys.insert(key(4))
    await keys.update("key_4", revoked_at=5.0)
    assert await keys.replace("key_4", key(5), grace_until=1.0) is None  # revoked
    assert await keys.replace("missing", key(6), grace_until=1.0) is None
    assert {r.id for r in await keys.list()} == {"key_1", "key_2", "key_4"}  # nothing written
    old = await keys.get("key_1")
    assert old is not None and old.grace_until == 9999.0


async def test_concurrent_replacements_of_one_key_write_one(keys: KeyStore) -> None:
    await keys.insert(key(0))
    results = await asyncio.gather(
        *(keys.replace("key_0", key(n), grace_until=100.0) for n in range(1, 7))
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    old = await keys.get("key_0")
    assert old is not None and old.replaced_by == winners[0].id
    assert len(await keys.list()) == 2
