"""Applied config versions: every apply appends the whole document set as a new version.

Versions are numbered by the database (autoincrement, never reused), so two replicas
applying at once get two versions. Replicas poll `latest_version_number()` (one indexed
`max`) and load the latest version when it moves.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import msgspec
from sqlalchemy import func, insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.db.rows import to_struct
from sluicegate.db.errors import translate_errors
from sluicegate.db.schema import config_versions

_C = config_versions.c


class VersionRow(msgspec.Struct, kw_only=True):
    version: int
    applied_at: float
    applied_by: str
    comment: str | None
    documents: list[dict[str, Any]]  # the parsed documents, as applied
    source: str  # the YAML, as applied


class ConfigVersionStore(Protocol):
    async def append(self, documents: list[dict[str, Any]], source: str, applied_by: str,
                     comment: str | None = None) -> int: ...

    async def latest(self) -> VersionRow | None: ...

    async def get(self, version: int) -> VersionRow | None: ...

    async def history(self, limit: int = 50) -> list[VersionRow]:
        """Newest first, documents included."""
        ...

    async def latest_version_number(self) -> int:
        """0 when nothing was ever applied."""
        ...


class MemoryConfigVersionStore:
    def __init__(self) -> None:
        self._rows: list[VersionRow] = []

    async def append(self, documents: list[dict[str, Any]], source: str, applied_by: str,
                     comment: str | None = None) -> int:
        version = len(self._rows) + 1
        self._rows.append(msgspec.convert({
            "version": version, "applied_at": time.time(), "applied_by": applied_by,
            "comment": comment, "documents": _copy(documents), "source": source,
        }, VersionRow))
        return version

    async def latest(self) -> VersionRow | None:
        return self._copy_row(self._rows[-1]) if self._rows else None

    async def get(self, version: int) -> VersionRow | None:
        if 1 <= version <= len(self._rows):
            return self._copy_row(self._rows[version - 1])
        return None

    async def history(self, limit: int = 50) -> list[VersionRow]:
        return [self._copy_row(r) for r in reversed(self._rows[-limit:])] if limit > 0 else []

    async def latest_version_number(self) -> int:
        return len(self._rows)

    @staticmethod
    def _copy_row(row: VersionRow) -> VersionRow:
        return msgspec.structs.replace(row, documents=_copy(row.documents))


class SqlConfigVersionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def append(self, documents: list[dict[str, Any]], source: str, applied_by: str,
                     comment: str | None = None) -> int:
        statement = insert(config_versions).values(
            applied_at=time.time(), applied_by=applied_by, comment=comment,
            documents=documents, source=source)
        async with translate_errors("config version append"):
            async with self._engine.begin() as conn:
                result = await conn.execute(statement)
        return int(result.inserted_primary_key[0])

    async def latest(self) -> VersionRow | None:
        rows = await self._select(select(config_versions).order_by(_C.version.desc()).limit(1))
        return rows[0] if rows else None

    async def get(self, version: int) -> VersionRow | None:
        rows = await self._select(select(config_versions).where(_C.version == version))
        return rows[0] if rows else None

    async def history(self, limit: int = 50) -> list[VersionRow]:
        if limit <= 0:
            return []
        return await self._select(
            select(config_versions).order_by(_C.version.desc()).limit(limit))

    async def latest_version_number(self) -> int:
        statement = select(func.coalesce(func.max(_C.version), 0))
        async with translate_errors("config version poll"):
            async with self._engine.connect() as conn:
                return int((await conn.execute(statement)).scalar_one())

    async def _select(self, statement: Any) -> list[VersionRow]:
        async with translate_errors("config version read"):
            async with self._engine.connect() as conn:
                rows = (await conn.execute(statement)).mappings().all()
        return [_row(r) for r in rows]


def _row(values: RowMapping) -> VersionRow:
    return to_struct(values, VersionRow)


def _copy(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return msgspec.json.decode(msgspec.json.encode(documents))
