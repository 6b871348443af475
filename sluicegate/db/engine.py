"""Async engines from the URLs an operator types.

`sqlite:///./sluice.db`, `sqlite:///:memory:` and `postgresql://user@host/db` (also
`postgres://`) are rewritten to the async drivers (aiosqlite, asyncpg). SQLite connections
get WAL, synchronous=NORMAL, a busy timeout and foreign keys on every connect.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from sluicegate.errors import ConfigError

SQLITE_BUSY_TIMEOUT_MS = 5000
PG_CONNECT_TIMEOUT_S = 5.0

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys=ON",
)


def async_url(url: str) -> URL:
    """The SQLAlchemy URL with the async driver for `url`'s database."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse message
        raise ConfigError(f"not a database URL: {url!r}", param="database_url") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise ConfigError(
        f"unsupported database {backend!r}: use sqlite:///FILE or postgresql://...",
        param="database_url",
    )


def is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_engine_for(url: str, *, echo: bool = False) -> AsyncEngine:
    """An AsyncEngine for `url`. The caller owns it and disposes it at shutdown."""
    target = async_url(url)
    kwargs: dict[str, Any] = {
        "echo": echo,
        "json_serializer": _json_dumps,
        "json_deserializer": orjson.loads,
    }
    if target.get_backend_name() == "sqlite":
        return _sqlite_engine(target, kwargs)
    return create_async_engine(
        target,
        pool_pre_ping=True,  # a restarted server must not poison the pool
        connect_args={"timeout": PG_CONNECT_TIMEOUT_S},
        **kwargs,
    )


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _sqlite_engine(target: URL, kwargs: dict[str, Any]) -> AsyncEngine:
    if is_memory_sqlite(target):
        # one shared connection, or every checkout would see its own empty database
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    engine = create_async_engine(target, **kwargs)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()
