"""The upstream HTTP client: a two-method Protocol, the aiohttp implementation used in
production, and `FakeUpstream(handler)` for unit tests (the httpx MockTransport idea).

aiohttp errors never leave this module: they become `UpstreamUnavailable` or
`UpstreamTimeout` from the one exception tree.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Protocol

import aiohttp
import msgspec

from sluicegate.errors import UpstreamTimeout, UpstreamUnavailable


class UpstreamResponse(msgspec.Struct):
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


class UpstreamStream(Protocol):
    status: int
    headers: dict[str, str]

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """Raw body bytes as they arrive; raises UpstreamTimeout/UpstreamUnavailable."""
        ...

    async def read(self) -> bytes: ...

    def close(self) -> None: ...


class UpstreamClient(Protocol):
    async def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        timeout: float,
    ) -> UpstreamResponse: ...

    async def open_stream(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        first_byte_timeout: float,
        idle_timeout: float,
    ) -> UpstreamStream: ...

    async def close(self) -> None: ...


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


class _AiohttpStream:
    def __init__(self, response: aiohttp.ClientResponse, idle_timeout: float):
        self._response = response
        self._idle_timeout = idle_timeout
        self.status = response.status
        self.headers = _lower(response.headers)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        content = self._response.content
        try:
            while True:
                chunk = await asyncio.wait_for(content.readany(), self._idle_timeout)
                if not chunk:
                    return
                yield chunk
        except TimeoutError as exc:
            raise UpstreamTimeout("upstream stream stalled") from exc
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise UpstreamUnavailable(f"upstream stream broke: {exc.__class__.__name__}") from exc

    async def read(self) -> bytes:
        try:
            return await asyncio.wait_for(self._response.read(), self._idle_timeout)
        except (TimeoutError, aiohttp.ClientError, ConnectionError):
            return b""

    def close(self) -> None:
        self._response.close()


class AiohttpUpstream:
    """Pooled keep-alive connections to every provider, one session per process."""

    def __init__(self, *, limit: int = 1000, limit_per_host: int = 0):
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily so it binds to the running event loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._limit,
                limit_per_host=self._limit_per_host,
                ttl_dns_cache=300,
                enable_cleanup_closed=True,
            )
            # No cookie jar: cookies a provider sets for one tenant's call must not ride
            # along on the next tenant's (and the jar is per-request work besides).
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float
    ) -> UpstreamResponse:
        try:
            async with self._client().request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                payload = await response.read()
                return UpstreamResponse(response.status, _lower(response.headers), payload)
        except TimeoutError as exc:
            raise UpstreamTimeout(f"no answer from upstream within {timeout:.1f}s") from exc
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise UpstreamUnavailable(f"upstream unreachable: {exc.__class__.__name__}") from exc

    async def open_stream(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        first_byte_timeout: float,
        idle_timeout: float,
    ) -> UpstreamStream:
        try:
            async with asyncio.timeout(first_byte_timeout):  # connect + response headers
                response = await self._client().post(
                    url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(
                        total=None, sock_connect=first_byte_timeout, sock_read=None
                    ),
                )
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"no response headers from upstream within {first_byte_timeout:.1f}s"
            ) from exc
        except (aiohttp.ClientError, ConnectionError) as exc:
            raise UpstreamUnavailable(f"upstream unreachable: {exc.__class__.__name__}") from exc
        return _AiohttpStream(response, idle_timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


# --- the fake -------------------------------------------------------------------------

FakeHandler = Callable[[str, str, dict[str, str], bytes | None], Awaitable[UpstreamResponse]]


class _FakeStream:
    def __init__(self, response: UpstreamResponse, chunk_size: int):
        self.status = response.status
        self.headers = response.headers
        self._body = response.body
        self._chunk_size = chunk_size

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        for i in range(0, len(self._body), self._chunk_size):
            yield self._body[i : i + self._chunk_size]

    async def read(self) -> bytes:
        return self._body

    def close(self) -> None:
        pass


class FakeUpstream:
    """Turns an async function into an upstream client; streams replay the handler's body
    in small chunks so that SSE parsing across chunk boundaries gets exercised."""

    def __init__(self, handler: FakeHandler, *, chunk_size: int = 7):
        self._handler = handler
        self._chunk_size = chunk_size
        self.calls: list[tuple[str, str, dict[str, str], bytes | None]] = []

    async def request(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float
    ) -> UpstreamResponse:
        self.calls.append((method, url, headers, body))
        return await self._handler(method, url, headers, body)

    async def open_stream(
        self,
        url: str,
        headers: dict[str, str],
        body: bytes,
        first_byte_timeout: float,
        idle_timeout: float,
    ) -> UpstreamStream:
        self.calls.append(("POST", url, headers, body))
        return _FakeStream(await self._handler("POST", url, headers, body), self._chunk_size)

    async def close(self) -> None:
        pass
