"""The Redis boundary of the router's stores: one way to get a client, one translation of
driver errors into `StoreUnavailable`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from sluicegate.errors import StoreUnavailable


def client_for(redis: str | aioredis.Redis) -> tuple[aioredis.Redis, bool]:
    """(client, owned): a URL makes a client this store owns and must close."""
    if isinstance(redis, str):
        return aioredis.Redis.from_url(redis, socket_timeout=2, socket_connect_timeout=2), True
    return redis, False


@asynccontextmanager
async def translated(what: str) -> AsyncIterator[None]:
    try:
        yield
    except (RedisError, OSError) as exc:
        raise StoreUnavailable(f"{what}: Redis unavailable ({exc.__class__.__name__})") from exc


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
