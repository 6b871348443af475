"""A version store that always loses the race to a rival writer, for tests that need an
exact interleaving (a change clashing N times in a row) which a real race cannot promise.

The clash itself is real: just before each append, a rival replica appends the same
version number to the same underlying store (its own change, merged onto the latest
version as a well-behaved replica would), so the store's own primary key refuses the
append with VersionConflict. Nothing is faked past that point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sluicegate.config.version_store import ConfigVersionStore


class RivalWritesFirst:
    def __init__(
        self,
        inner: ConfigVersionStore,
        *,
        times: int | None = None,
        rival_document: Callable[[int], dict[str, Any]] | None = None,
    ) -> None:
        self.inner = inner
        self.times = times  # None: the rival wins every time
        self.rival_document = rival_document  # the rival's document for a version
        self.rival_versions: list[int] = []

    async def append(
        self,
        documents: list[dict[str, Any]],
        source: str,
        applied_by: str,
        comment: str | None = None,
        *,
        version: int,
    ) -> int:
        if self.times is None or len(self.rival_versions) < self.times:
            await self._rival_append(version)
        return await self.inner.append(documents, source, applied_by, comment, version=version)

    async def _rival_append(self, version: int) -> None:
        latest = await self.inner.latest()
        if self.rival_document is not None:
            rival = self.rival_document(version)
        else:
            rival = {"name": f"rival-{version}", "type": "test-budget", "ceiling_usd": version}
        documents = [
            d
            for d in (latest.documents if latest else [])
            if (d["type"], d["name"]) != (rival["type"], rival["name"])
        ] + [rival]
        await self.inner.append(documents, "# rival", "rival", None, version=version)
        self.rival_versions.append(version)

    def __getattr__(self, name: str) -> Any:  # latest, get, history, ...: the real store
        return getattr(self.inner, name)
