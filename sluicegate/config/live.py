"""The config every replica serves: one immutable snapshot, swapped atomically.

Subscribers compile a snapshot into runtime objects (policy, routes, providers). A new
version goes live only when every subscriber accepted it; if one raises, the subscribers
that already took it are handed the previous snapshot again, the previous snapshot stays
live, and the error is logged and kept in `last_error` (for /readyz) until a version
loads cleanly. Each replica polls `latest_version_number()` every `poll_interval`, so an
apply made on any replica reaches all of them within about a second, without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from pydantic import BaseModel

from sluicegate.config.parse import Document, documents_from_raw, parse_sources
from sluicegate.config.registry import DocumentRegistry
from sluicegate.config.service import ApplyResult, ConfigService
from sluicegate.config.version_store import ConfigVersionStore, VersionRow
from sluicegate.errors import ConfigError

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class ConfigSnapshot:
    version: int  # 0: nothing applied yet
    documents: Mapping[str, tuple[Document, ...]]  # by type, in applied order
    loaded_at: float
    applied_at: float | None = None
    applied_by: str | None = None

    @classmethod
    def build(
        cls,
        version: int,
        documents: Sequence[Document],
        *,
        loaded_at: float,
        applied_at: float | None = None,
        applied_by: str | None = None,
    ) -> ConfigSnapshot:
        grouped: dict[str, list[Document]] = {}
        for document in documents:
            grouped.setdefault(document.type, []).append(document)
        by_type = MappingProxyType({t: tuple(docs) for t, docs in grouped.items()})
        return cls(version, by_type, loaded_at, applied_at, applied_by)

    def of_type(self, type_name: str) -> tuple[Document, ...]:
        return self.documents.get(type_name, ())

    def get(self, type_name: str, name: str) -> Document | None:
        return next((doc for doc in self.of_type(type_name) if doc.name == name), None)

    def models(self, type_name: str) -> list[BaseModel]:
        """The validated models of one type (what compilers take)."""
        return [doc.model for doc in self.of_type(type_name)]

    def models_of(self, type_name: str, model: type[M]) -> list[M]:
        """`models`, typed for a compiler that takes one class; a document of another class
        (the registry wired to a different model) is a bug, and raises."""
        models: list[M] = []
        for doc in self.of_type(type_name):
            if not isinstance(doc.model, model):
                raise TypeError(f"a {type_name} document is a {type(doc.model).__name__}")
            models.append(doc.model)
        return models

    def all(self) -> list[Document]:
        return [doc for docs in self.documents.values() for doc in docs]


@dataclass(frozen=True)
class LoadError:
    version: int  # the version that could not go live
    message: str
    at: float


Subscriber = Callable[[ConfigSnapshot], None]


class LiveConfig:
    def __init__(
        self,
        source: ConfigService | ConfigVersionStore,
        registry: DocumentRegistry,
        *,
        poll_interval: float = 0.5,
        clock: Callable[[], float] = time.time,
    ):
        self.service = (
            source
            if isinstance(source, ConfigService)
            else ConfigService(source, registry, clock=clock)
        )
        self.registry = registry
        self.poll_interval = poll_interval
        self.snapshot = ConfigSnapshot.build(0, [], loaded_at=clock())
        self.last_error: LoadError | None = None
        self._clock = clock
        self._subscribers: list[Subscriber] = []
        self._loaded = False
        self._failed_version: int | None = None
        self._lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None

    @property
    def version(self) -> int:
        """The live version (0 before anything was applied)."""
        return self.snapshot.version

    @property
    def ready(self) -> bool:
        """A snapshot has been loaded and the latest version went live."""
        return self._loaded and self.last_error is None

    def subscribe(self, callback: Subscriber) -> None:
        """Call `callback` with every snapshot that goes live (and at once with the live
        one if a snapshot is already loaded; an exception then reaches the caller)."""
        self._subscribers.append(callback)
        if self._loaded:
            callback(self.snapshot)

    async def start(self) -> None:
        """Load the latest version and start polling. A version that cannot go live does
        not stop the start: `last_error` says why, so the admin API can roll it back."""
        await self.reload_now()
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll(), name="config-refresh")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
            self._poller = None

    async def reload_now(self) -> ConfigSnapshot:
        """Load the latest version if it is not the live one; returns the live snapshot.
        Store errors propagate; config errors are kept in `last_error`."""
        async with self._lock:
            row = await self.service.latest()
            version = row.version if row is not None else 0
            if not self._loaded or version != self.snapshot.version:
                self._load(row)
            return self.snapshot

    async def bootstrap(
        self,
        files: Sequence[str | Path],
        applied_by: str = "serve --config",
        *,
        replace: bool = False,
    ) -> ApplyResult:
        """Apply config files at start (GitOps): one new version if, and only if, the files
        change the latest version's set."""
        sources = [(str(path), _read(path)) for path in files]
        documents = parse_sources(sources, self.registry)
        source = "".join(f"# file: {name}\n{text.rstrip()}\n---\n" for name, text in sources)
        result = await self.service.apply_documents(
            documents,
            source=source,
            applied_by=applied_by,
            replace=replace,
            comment=f"serve --config {' '.join(str(path) for path in files)}",
        )
        if self._loaded:
            await self.reload_now()
        return result

    # --- internals ------------------------------------------------------------------
    def _load(self, row: VersionRow | None) -> None:
        version = row.version if row is not None else 0
        try:
            documents = documents_from_raw(row.documents, self.registry) if row else []
        except ConfigError as exc:
            self._fail(version, f"version {version} cannot be loaded: {exc.message}")
            return
        snapshot = ConfigSnapshot.build(
            version,
            documents,
            loaded_at=self._clock(),
            applied_at=row.applied_at if row else None,
            applied_by=row.applied_by if row else None,
        )
        self._publish(snapshot)

    def _publish(self, snapshot: ConfigSnapshot) -> None:
        accepted: list[Subscriber] = []
        for callback in self._subscribers:
            try:
                callback(snapshot)
            except Exception as exc:
                log.exception("config version %d rejected by %r", snapshot.version, callback)
                self._revert(accepted)
                self._fail(
                    snapshot.version,
                    f"version {snapshot.version} did not go live: {type(exc).__name__}: {exc}",
                )
                return
            accepted.append(callback)
        self.snapshot = snapshot
        self.last_error = None
        self._failed_version = None
        self._loaded = True
        log.info("config version %d is live", snapshot.version)

    def _revert(self, accepted: list[Subscriber]) -> None:
        for callback in accepted:
            try:
                callback(self.snapshot)
            except Exception:
                log.exception(
                    "reverting %r to config version %d failed", callback, self.snapshot.version
                )

    def _fail(self, version: int, message: str) -> None:
        log.error("%s; version %d stays live", message, self.snapshot.version)
        self.last_error = LoadError(version, message, self._clock())
        self._failed_version = version
        self._loaded = True

    async def _poll(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.poll_interval)
            try:
                latest = await self.service.latest_version_number()
                if latest not in (self.snapshot.version, self._failed_version):
                    await self.reload_now()
                failing = False
            except Exception:  # the store may be briefly down; keep serving the live snapshot
                if not failing:
                    log.warning(
                        "config refresh failed; serving version %d",
                        self.snapshot.version,
                        exc_info=True,
                    )
                failing = True


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc}") from exc
