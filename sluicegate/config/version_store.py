"""Applied config versions: every apply appends the whole document set as a new version.

The writer numbers each version: it reads the latest version N, builds the new set from
it, and appends it as exactly N + 1 (optimistic concurrency). If another replica appended
N + 1 in the meantime, the primary key refuses the row and `append` raises
`VersionConflict`; the config service then rebases the change onto the new latest version
and tries again. So a change is never written over one it has not seen.

Every row is inserted with an explicit version. The column is still an autoincrement
(SERIAL on PostgreSQL, AUTOINCREMENT on SQLite) because the Alembic migrations created it
so; rows numbered by it before versions were explicit are simply continued from. Nothing
may insert a version without naming its number: on PostgreSQL the sequence does not see
explicit numbers, so a sequence-numbered insert could collide with them.

Replicas poll `latest_version_number()` (one indexed `max`) and load the latest version
when it moves.
"""

from __future__ import annotations

import bisect
import time
from typing import Any, Protocol

import msgspec
from sqlalchemy import exc as sa_exc
from sqlalchemy import func, insert, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from sluicegate.config.problems import VersionConflict
from sluicegate.db.errors import is_unique_violation, translate_errors
from sluicegate.db.rows import to_struct
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
    async def append(
        self,
        documents: list[dict[str, Any]],
        source: str,
        applied_by: str,
        comment: str | None = None,
        *,
        version: int,
    ) -> int:
        """Write the set as exactly `version` (the latest version the caller read, plus
        one) and return it. VersionConflict when that version already exists."""
        ...

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
        self._rows: list[VersionRow] = []  # in version order

    async def append(
        self,
        documents: list[dict[str, Any]],
        source: str,
        applied_by: str,
        comment: str | None = None,
        *,
        version: int,
    ) -> int:
        _check_version(version)
        if self._find(version) is not None:
            raise VersionConflict(version)
        bisect.insort(
            self._rows,
            msgspec.convert(
                {
                    "version": version,
                    "applied_at": time.time(),
                    "applied_by": applied_by,
                    "comment": comment,
                    "documents": _copy(documents),
                    "source": source,
                },
                VersionRow,
            ),
            key=lambda row: row.version,
        )
        return version

    async def latest(self) -> VersionRow | None:
        return self._copy_row(self._rows[-1]) if self._rows else None

    async def get(self, version: int) -> VersionRow | None:
        row = self._find(version)
        return self._copy_row(row) if row is not None else None

    async def history(self, limit: int = 50) -> list[VersionRow]:
        return [self._copy_row(r) for r in reversed(self._rows[-limit:])] if limit > 0 else []

    async def latest_version_number(self) -> int:
        return self._rows[-1].version if self._rows else 0

    def _find(self, version: int) -> VersionRow | None:
        at = bisect.bisect_left(self._rows, version, key=lambda row: row.version)
        return (
            self._rows[at] if at < len(self._rows) and self._rows[at].version == version else None
        )

    @staticmethod
    def _copy_row(row: VersionRow) -> VersionRow:
        return msgspec.structs.replace(row, documents=_copy(row.documents))


class SqlConfigVersionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def append(
        self,
        documents: list[dict[str, Any]],
        source: str,
        applied_by: str,
        comment: str | None = None,
        *,
        version: int,
    ) -> int:
        _check_version(version)
        statement = insert(config_versions).values(
            version=version,
            applied_at=time.time(),
            applied_by=applied_by,
            comment=comment,
            documents=documents,
            source=source,
        )
        async with translate_errors("config version append"):
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(statement)
            except sa_exc.IntegrityError as exc:
                if is_unique_violation(exc):  # the primary key: someone wrote it first
                    raise VersionConflict(version) from exc
                raise
        return version

    async def latest(self) -> VersionRow | None:
        rows = await self._select(select(config_versions).order_by(_C.version.desc()).limit(1))
        return rows[0] if rows else None

    async def get(self, version: int) -> VersionRow | None:
        rows = await self._select(select(config_versions).where(_C.version == version))
        return rows[0] if rows else None

    async def history(self, limit: int = 50) -> list[VersionRow]:
        if limit <= 0:
            return []
        return await self._select(select(config_versions).order_by(_C.version.desc()).limit(limit))

    async def latest_version_number(self) -> int:
        statement = select(func.coalesce(func.max(_C.version), 0))
        async with translate_errors("config version poll"), self._engine.connect() as conn:
            return int((await conn.execute(statement)).scalar_one())

    async def _select(self, statement: Any) -> list[VersionRow]:
        async with translate_errors("config version read"), self._engine.connect() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        return [_row(r) for r in rows]


def _check_version(version: int) -> None:
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"a config version is an integer >= 1, not {version!r}")


def _row(values: RowMapping) -> VersionRow:
    return to_struct(values, VersionRow)


def _copy(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return msgspec.json.decode(msgspec.json.encode(documents))
