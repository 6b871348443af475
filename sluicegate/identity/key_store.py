"""Persistence for virtual keys (hashing, generation and the lookup index live in `keys`).

Every write stamps `updated_at` (`db/stamps.py`) so that `max_updated_at()` moves on every
committed change, in commit order, even with several replicas and skewed clocks.
Replicas poll `max_updated_at()` and reload every key when it moves.
"""

from __future__ import annotations

import builtins
import time
from typing import Any, Protocol

import msgspec
from sqlalchemy import ColumnElement, func, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from sluicegate.db.errors import StoreRejected, translate_errors
from sluicegate.db.rows import to_struct
from sluicegate.db.schema import api_keys
from sluicegate.db.stamps import lock_writes, next_stamp, write_stamp

_PG_KEYS_LOCK = 0x5106E6A7E + 1


class KeyRow(msgspec.Struct, kw_only=True):
    id: str
    key_hash: str
    key_prefix: str
    name: str | None = None
    user_id: str | None = None
    team: str | None = None
    project: str | None = None
    workflow_tag: str | None = None
    environment: str | None = None
    cost_center: str | None = None
    pinned: list[str] = msgspec.field(default_factory=list)  # beyond user and team
    models: list[str] = msgspec.field(default_factory=list)  # empty: every model
    is_admin: bool = False
    created_at: float = msgspec.field(default_factory=time.time)
    updated_at: float = 0.0  # stamped by the store on every write
    expires_at: float | None = None
    revoked_at: float | None = None
    rotated_from: str | None = None
    replaced_by: str | None = None
    grace_until: float | None = None  # for the OLD key after a rotation
    metadata: dict[str, str] = msgspec.field(default_factory=dict)


KEY_FIELDS: tuple[str, ...] = KeyRow.__struct_fields__


class KeyStore(Protocol):
    async def insert(self, row: KeyRow) -> KeyRow: ...

    async def list(self) -> builtins.list[KeyRow]: ...

    async def get(self, key_id: str) -> KeyRow | None: ...

    async def get_by_hash(self, key_hash: str) -> KeyRow | None: ...

    async def update(self, key_id: str, **fields: Any) -> KeyRow | None: ...

    async def max_updated_at(self) -> float: ...

    async def replace(self, old_id: str, new: KeyRow, grace_until: float) -> KeyRow | None:
        """Insert `new` as the replacement of `old_id` and give the old key until
        `grace_until`, in one step that cannot race another rotation or a revocation:
        None (and nothing written) when the old key is missing, revoked or replaced."""
        ...


def check_update_fields(fields: dict[str, Any]) -> None:
    """`id` is fixed; `updated_at`, if given, is only a lower bound for the new stamp."""
    unknown = sorted(name for name in fields if name == "id" or name not in KEY_FIELDS)
    if unknown:
        raise TypeError(f"cannot update key field(s): {', '.join(unknown)}")


class MemoryKeyStore:
    def __init__(self) -> None:
        self._rows: dict[str, KeyRow] = {}

    async def insert(self, row: KeyRow) -> KeyRow:
        if row.id in self._rows or await self.get_by_hash(row.key_hash) is not None:
            raise StoreRejected(f"key {row.id!r} or its hash already exists")
        stored = msgspec.structs.replace(
            _copy(row), updated_at=next_stamp(row.updated_at or time.time(), self._latest())
        )
        self._rows[row.id] = stored
        return _copy(stored)

    async def list(self) -> builtins.list[KeyRow]:
        return sorted((_copy(r) for r in self._rows.values()), key=lambda r: (r.created_at, r.id))

    async def get(self, key_id: str) -> KeyRow | None:
        row = self._rows.get(key_id)
        return _copy(row) if row else None

    async def get_by_hash(self, key_hash: str) -> KeyRow | None:
        return next((_copy(r) for r in self._rows.values() if r.key_hash == key_hash), None)

    async def update(self, key_id: str, **fields: Any) -> KeyRow | None:
        check_update_fields(fields)
        row = self._rows.get(key_id)
        if row is None:
            return None
        if "key_hash" in fields and any(
            r.key_hash == fields["key_hash"] and r.id != key_id for r in self._rows.values()
        ):
            raise StoreRejected("another key has this hash")
        now = fields.pop("updated_at", None) or time.time()
        stamp = next_stamp(now, self._latest())
        self._rows[key_id] = _copy(msgspec.structs.replace(row, **fields, updated_at=stamp))
        return _copy(self._rows[key_id])

    async def max_updated_at(self) -> float:
        return self._latest()

    async def replace(self, old_id: str, new: KeyRow, grace_until: float) -> KeyRow | None:
        old = self._rows.get(old_id)
        if old is None or old.revoked_at is not None or old.replaced_by is not None:
            return None
        stored = await self.insert(new)  # no await before this point: nothing interleaves
        await self.update(old_id, replaced_by=new.id, grace_until=grace_until)
        return stored

    def _latest(self) -> float:
        return max((r.updated_at for r in self._rows.values()), default=0.0)


class SqlKeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def insert(self, row: KeyRow) -> KeyRow:
        values = msgspec.to_builtins(row)
        values["updated_at"] = _stamp(row.updated_at or time.time())
        async with translate_errors("key insert"), self._engine.begin() as conn:
            await _lock_key_writes(conn)
            await conn.execute(insert(api_keys).values(values))
            stored = await _fetch(conn, row.id)
        assert stored is not None
        return stored

    async def list(self) -> builtins.list[KeyRow]:
        statement = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        async with translate_errors("key list"), self._engine.connect() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        return [_row(r) for r in rows]

    async def get(self, key_id: str) -> KeyRow | None:
        async with translate_errors("key get"), self._engine.connect() as conn:
            return await _fetch(conn, key_id)

    async def get_by_hash(self, key_hash: str) -> KeyRow | None:
        statement = select(api_keys).where(api_keys.c.key_hash == key_hash)
        async with translate_errors("key get"), self._engine.connect() as conn:
            found = (await conn.execute(statement)).mappings().first()
        return _row(found) if found else None

    async def update(self, key_id: str, **fields: Any) -> KeyRow | None:
        check_update_fields(fields)
        now = fields.pop("updated_at", None) or time.time()
        values = {k: msgspec.to_builtins(v) for k, v in fields.items()}
        statement = (
            update(api_keys).where(api_keys.c.id == key_id).values(**values, updated_at=_stamp(now))
        )
        async with translate_errors("key update"), self._engine.begin() as conn:
            await _lock_key_writes(conn)
            if (await conn.execute(statement)).rowcount == 0:
                return None
            return await _fetch(conn, key_id)

    async def max_updated_at(self) -> float:
        statement = select(func.coalesce(func.max(api_keys.c.updated_at), 0.0))
        async with translate_errors("key max_updated_at"), self._engine.connect() as conn:
            return float((await conn.execute(statement)).scalar_one())

    async def replace(self, old_id: str, new: KeyRow, grace_until: float) -> KeyRow | None:
        now = new.updated_at or time.time()
        claim = (
            update(api_keys)
            .where(
                api_keys.c.id == old_id,
                api_keys.c.revoked_at.is_(None),
                api_keys.c.replaced_by.is_(None),
            )
            .values(replaced_by=new.id, grace_until=grace_until, updated_at=_stamp(now))
        )
        values = msgspec.to_builtins(new)
        async with translate_errors("key rotate"), self._engine.begin() as conn:
            await _lock_key_writes(conn)
            if (await conn.execute(claim)).rowcount == 0:
                return None
            await conn.execute(insert(api_keys).values({**values, "updated_at": _stamp(now)}))
            return await _fetch(conn, new.id)


def _stamp(now: float) -> ColumnElement[float]:
    return write_stamp(api_keys, now)


async def _lock_key_writes(conn: AsyncConnection) -> None:
    await lock_writes(conn, _PG_KEYS_LOCK)


async def _fetch(conn: AsyncConnection, key_id: str) -> KeyRow | None:
    statement = select(api_keys).where(api_keys.c.id == key_id)
    found = (await conn.execute(statement)).mappings().first()
    return _row(found) if found else None


def _row(values: RowMapping) -> KeyRow:
    return to_struct(values, KeyRow)


def _copy(row: KeyRow) -> KeyRow:
    return msgspec.convert(msgspec.to_builtins(row), KeyRow)
