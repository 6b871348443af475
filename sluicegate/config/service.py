"""Apply, delete, roll back and list config versions.

Every change goes the same way: build the complete new document set, validate all of it
(nothing half-applies), diff it against the latest version, and either report the diff
(dry run), report that nothing changed, or append the whole set as a new version. The
version store is the only state; any replica may apply, and every replica's LiveConfig
picks the new version up by polling the store.

Replicas apply concurrently without a lock between them (optimistic concurrency): a change
is built on the latest version N and written as exactly N + 1. If another replica wrote
N + 1 first, the store raises VersionConflict and the change is rebased: the latest
version is read again, the change (an apply, delete or rollback, each defined as "onto
whatever is live") is merged onto it, the whole set validated again and the write retried
as the next version. After `max_attempts` clashes in a row the caller gets ConfigConflict
(HTTP 409, nothing applied). The ApplyResult describes the version actually written and
its diff against the version it was built on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

from sluicegate.config.diff import Change, DocumentKey, diff_sets, join_diffs, keyed
from sluicegate.config.parse import Document, Format, documents_from_raw, parse_documents
from sluicegate.config.problems import (
    ConfigConflict,
    ConfigNotFound,
    ConfigStale,
    ConfigValidationError,
    Problem,
    VersionConflict,
)
from sluicegate.config.registry import DocumentRegistry
from sluicegate.config.version_store import ConfigVersionStore, VersionRow
from sluicegate.errors import ConfigError
from sluicegate.types import JSONObject

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5  # writes of one change before ConfigConflict
RETRY_DELAY_S = 0.005  # up to this times the attempt number, jittered, between attempts

# A check over the whole resulting set (e.g. "every route names a known provider"). It
# returns the problems it found; any problem refuses the change.
SetCheck = Callable[[Sequence[Document]], Sequence[Problem]]
# (the proposed set, the set it replaces) -> warnings: what the change will do that its
# author may not mean (the composition root's dry compile). Reported with the result; a
# strict change is refused on any. A ConfigError it raises refuses the change.
Review = Callable[[Sequence[Document], Sequence[Document]], Sequence[Problem]]
Outcome = Literal["created", "changed", "unchanged", "deleted"]
# the documents a change was reviewed against, by key (None: absent then)
Expected = Mapping[DocumentKey, JSONObject | None]
# before (the latest version's documents), after (the proposed set), touched (the keys the
# input named, in its order)
Plan = tuple[dict[DocumentKey, JSONObject], dict[DocumentKey, JSONObject], list[DocumentKey]]


@dataclasses.dataclass(frozen=True)
class ConfigVersion:
    version: int  # 0: nothing applied yet
    applied_at: float | None
    applied_by: str | None
    comment: str | None
    documents: list[JSONObject]  # raw dicts, as applied
    source: str = ""

    @classmethod
    def from_row(cls, row: VersionRow | None) -> ConfigVersion:
        if row is None:
            return cls(0, None, None, None, [])
        return cls(
            row.version,
            row.applied_at,
            row.applied_by,
            row.comment,
            list(row.documents),
            row.source,
        )


@dataclasses.dataclass(frozen=True)
class DocumentOutcome:
    type: str
    name: str
    action: Outcome


@dataclasses.dataclass(frozen=True)
class ApplyResult:
    version: int  # the version written, or the latest one when nothing was written
    previous_version: int  # the version the change was built on and diffed against
    changed: bool  # the resulting set differs from the latest version
    applied: bool  # a new version was written (changed and not a dry run)
    dry_run: bool
    diff: str  # unified diff per document, or "no changes\n"
    changes: list[Change] = dataclasses.field(default_factory=list)
    documents: list[DocumentOutcome] = dataclasses.field(default_factory=list)
    message: str = ""
    at: float = 0.0  # when the change was decided (the service's clock)
    warnings: list[Problem] = dataclasses.field(default_factory=list)
    # The validated set the change results in, and the one it replaces (the latest
    # version's, as far as it still validates): what a what-if replays and compares.
    resulting: tuple[Document, ...] = ()
    replacing: tuple[Document, ...] = ()


class ConfigWarningsRefused(ConfigValidationError):
    """A strict change (`apply --strict`, `?strict=true`) with warnings: nothing applied."""

    code = "config_warnings"

    def __init__(self, warnings: Sequence[Problem]):
        super().__init__(warnings)
        count = len(warnings)
        lines = "".join(f"\n  {warning.format()}" for warning in warnings)
        self.message = (
            f"refused in strict mode ({count} warning{'' if count == 1 else 's'}):{lines}"
        )


class ConfigService:
    def __init__(
        self,
        version_store: ConfigVersionStore,
        registry: DocumentRegistry,
        *,
        clock: Callable[[], float] = time.time,
        checks: Sequence[SetCheck] = (),
        review: Review | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ):
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.store = version_store
        self.registry = registry
        self._clock = clock
        self._checks = tuple(checks)
        self._review = review
        self._max_attempts = max_attempts
        # one change at a time from this process; other replicas are caught by the store
        self._lock = asyncio.Lock()

    # --- changes ------------------------------------------------------------------
    async def apply(
        self,
        text: str,
        *,
        applied_by: str,
        dry_run: bool = False,
        comment: str | None = None,
        replace: bool = False,
        format: Format = "auto",
        source_name: str = "input",
        strict: bool = False,
        expected: Expected | None = None,
    ) -> ApplyResult:
        """Merge the documents in `text` into the live set by (type, name), or make them
        the whole set with `replace=True`. `strict`: refuse the change if it has warnings.
        `expected`: refuse it (ConfigStale) unless these documents are still as given."""
        # Off the event loop: PyYAML in pure Python takes seconds for a legal document
        # near the node limit (~2.6 s at 100k nodes), which would stall every request of
        # this worker. The limits (size, nodes, depth, aliases) hold in the thread too.
        documents = await asyncio.to_thread(
            parse_documents, text, self.registry, source_name=source_name, format=format
        )
        return await self.apply_documents(
            documents,
            source=text,
            applied_by=applied_by,
            dry_run=dry_run,
            comment=comment,
            replace=replace,
            strict=strict,
            expected=expected,
        )

    async def apply_documents(
        self,
        documents: Sequence[Document],
        *,
        source: str,
        applied_by: str,
        dry_run: bool = False,
        comment: str | None = None,
        replace: bool = False,
        strict: bool = False,
        expected: Expected | None = None,
    ) -> ApplyResult:
        if not documents:
            raise ConfigValidationError([Problem("input", None, "", "no documents found")])
        touched = [doc.key for doc in documents]

        def plan(latest: ConfigVersion) -> Plan:
            before = keyed(latest.documents)
            if expected is not None:  # checked on every attempt, so a rebase checks too
                _check_expected(expected, before, latest.version)
            after = {} if replace else dict(before)
            after.update({doc.key: doc.raw for doc in documents})
            return before, after, touched

        return await self._change(
            plan,
            source=source,
            applied_by=applied_by,
            comment=comment,
            dry_run=dry_run,
            strict=strict,
        )

    async def delete(
        self,
        type_name: str,
        name: str,
        applied_by: str,
        *,
        comment: str | None = None,
        dry_run: bool = False,
        strict: bool = False,
    ) -> ApplyResult:
        def plan(latest: ConfigVersion) -> Plan:
            before = keyed(latest.documents)
            if (type_name, name) not in before:
                raise ConfigNotFound(
                    f"no {type_name!r} document named {name!r} in version {latest.version}",
                    param="name",
                )
            after = {key: raw for key, raw in before.items() if key != (type_name, name)}
            return before, after, []

        return await self._change(
            plan,
            source=f"# delete {type_name}/{name}\n",
            applied_by=applied_by,
            comment=comment or f"delete {type_name}/{name}",
            dry_run=dry_run,
            strict=strict,
        )

    async def rollback(
        self, version: int, applied_by: str, *, dry_run: bool = False, strict: bool = False
    ) -> ApplyResult:
        """Restore `version`'s documents as a new version."""
        target = await self.store.get(version)
        if target is None:
            raise ConfigNotFound(f"there is no config version {version}", param="version")
        restored = keyed(target.documents)  # a version never changes once written

        def plan(latest: ConfigVersion) -> Plan:
            return keyed(latest.documents), dict(restored), list(restored)

        return await self._change(
            plan,
            source=f"# rollback to v{version}\n{target.source}",
            applied_by=applied_by,
            comment=f"rollback to v{version}",
            dry_run=dry_run,
            strict=strict,
        )

    # --- reading ------------------------------------------------------------------
    async def current(self) -> ConfigVersion:
        return ConfigVersion.from_row(await self.store.latest())

    async def history(self, limit: int = 50) -> list[ConfigVersion]:
        return [ConfigVersion.from_row(row) for row in await self.store.history(limit)]

    async def get(self, version: int) -> ConfigVersion:
        row = await self.store.get(version)
        if row is None:
            raise ConfigNotFound(f"there is no config version {version}", param="version")
        return ConfigVersion.from_row(row)

    async def latest(self) -> VersionRow | None:
        return await self.store.latest()

    async def latest_version_number(self) -> int:
        return await self.store.latest_version_number()

    def validate_set(self, raws: Sequence[JSONObject]) -> list[Document]:
        """Every document of a whole set validated, then the set checks run."""
        documents = documents_from_raw(raws, self.registry)
        problems = [problem for check in self._checks for problem in check(documents)]
        if problems:
            raise ConfigValidationError(problems)
        return documents

    def _replacing(self, before: dict[DocumentKey, JSONObject]) -> list[Document]:
        """The latest version's documents, validated (none when they no longer validate)."""
        try:
            return documents_from_raw(list(before.values()), self.registry)
        except ConfigError:  # the latest version no longer validates: compare with nothing
            return []

    def _warnings(self, documents: Sequence[Document], current: list[Document]) -> list[Problem]:
        """The review of the proposed set against the one it replaces; a set the review
        cannot compile is refused here, rather than failing to go live after the write."""
        if self._review is None:
            return []
        try:
            return list(self._review(documents, current))
        except ConfigValidationError:
            raise
        except ConfigError as exc:
            problem = Problem("config", None, exc.param or "", exc.message)
            raise ConfigValidationError([problem]) from None

    # --- the one way a change is written --------------------------------------------
    async def _change(
        self,
        plan: Callable[[ConfigVersion], Plan],
        *,
        source: str,
        applied_by: str,
        comment: str | None,
        dry_run: bool,
        strict: bool = False,
    ) -> ApplyResult:
        """Build the change on the latest version and write it as the next one; when
        another writer took that number first, rebuild it on the new latest and retry."""
        async with self._lock:
            for attempt in range(1, self._max_attempts + 1):
                latest = ConfigVersion.from_row(await self.store.latest())
                before, after, touched = plan(latest)
                try:
                    return await self._commit(
                        latest,
                        before,
                        after,
                        touched,
                        source=source,
                        applied_by=applied_by,
                        comment=comment,
                        dry_run=dry_run,
                        strict=strict,
                    )
                except VersionConflict as exc:
                    log.info(
                        "config version %d was written concurrently (attempt %d of %d); "
                        "rebasing the change by %s",
                        exc.version,
                        attempt,
                        self._max_attempts,
                        applied_by,
                    )
                    if attempt < self._max_attempts:
                        await asyncio.sleep(random.uniform(0, RETRY_DELAY_S * attempt))
            log.warning(
                "config change by %s not applied: %d concurrent writes in a row",
                applied_by,
                self._max_attempts,
            )
            raise ConfigConflict(
                f"config changed concurrently; retry (another change was written first "
                f"{self._max_attempts} times in a row; nothing was applied)"
            )

    async def _commit(
        self,
        latest: ConfigVersion,
        before: dict[DocumentKey, JSONObject],
        after: dict[DocumentKey, JSONObject],
        touched: list[DocumentKey],
        *,
        source: str,
        applied_by: str,
        comment: str | None,
        dry_run: bool,
        strict: bool,
    ) -> ApplyResult:
        if not applied_by:
            raise ConfigError("applied_by must name who applies the change")
        documents = self.validate_set(list(after.values()))
        current = self._replacing(before)
        warnings = self._warnings(documents, current)
        if strict and warnings:
            raise ConfigWarningsRefused(warnings)
        changes = diff_sets(before, after, before_label=f"v{latest.version}")
        result = ApplyResult(
            version=latest.version,
            previous_version=latest.version,
            changed=bool(changes),
            applied=False,
            dry_run=dry_run,
            diff=join_diffs(changes),
            changes=changes,
            documents=_outcomes(touched, before, after),
            at=self._clock(),
            warnings=warnings,
            resulting=tuple(documents),
            replacing=tuple(current),
        )
        if not changes:
            return dataclasses.replace(
                result, message=f"no changes; version {latest.version} stays live"
            )
        if dry_run:
            return dataclasses.replace(
                result, message=f"dry run: {_summary(changes)}; nothing applied"
            )
        version = await self.store.append(
            documents=list(after.values()),
            source=source,
            applied_by=applied_by,
            comment=comment,
            version=latest.version + 1,
        )
        return dataclasses.replace(
            result,
            version=version,
            applied=True,
            message=f"applied version {version}: {_summary(changes)}",
        )


def _check_expected(
    expected: Expected, before: dict[DocumentKey, JSONObject], version: int
) -> None:
    for key, was in expected.items():
        if before.get(key) != was:
            now = "deleted" if key not in before else "changed"
            raise ConfigStale(
                f"{key[0]}/{key[1]} was {'created' if was is None else now} since the change "
                f"was reviewed (version {version} is live now): review it again; nothing "
                "was applied"
            )


def _outcomes(
    touched: list[DocumentKey],
    before: dict[DocumentKey, JSONObject],
    after: dict[DocumentKey, JSONObject],
) -> list[DocumentOutcome]:
    def outcome(key: DocumentKey) -> Outcome:
        if key not in before:
            return "created"
        return "changed" if before[key] != after[key] else "unchanged"

    outcomes = [DocumentOutcome(t, n, outcome((t, n))) for t, n in touched]
    outcomes += [DocumentOutcome(t, n, "deleted") for t, n in before if (t, n) not in after]
    return outcomes


def _summary(changes: Sequence[Change]) -> str:
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.action] = counts.get(change.action, 0) + 1
    return ", ".join(f"{count} {action}" for action, count in counts.items())
