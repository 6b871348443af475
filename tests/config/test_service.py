from __future__ import annotations

import pytest

from sluicegate.config.problems import ConfigNotFound, ConfigValidationError, Problem
from sluicegate.config.service import ConfigService
from sluicegate.errors import ConfigError
from tests.config.documents import BOTH, BUDGET, RATE_LIMITS

HOURLY = RATE_LIMITS.replace("window: 1m", "window: 1h")


async def test_apply_creates_a_version(service, store):
    result = await service.apply(BOTH, applied_by="alice", comment="first")
    assert (result.version, result.previous_version, result.applied) == (1, 0, True)
    assert [(d.type, d.name, d.action) for d in result.documents] == [
        ("test-rate-limit", "team-limits", "created"),
        ("test-budget", "eng-budget", "created"),
    ]
    row = await store.latest()
    assert (row.version, row.applied_by, row.comment, row.source) == (1, "alice", "first", BOTH)
    assert [d["name"] for d in row.documents] == ["team-limits", "eng-budget"]
    current = await service.current()
    assert current.version == 1 and current.applied_by == "alice"
    assert "+name: eng-budget" in result.diff and "--- /dev/null" in result.diff


async def test_identical_apply_creates_no_version(service, store):
    await service.apply(BOTH, applied_by="alice")
    again = await service.apply(BOTH, applied_by="bob")
    assert (again.changed, again.applied, again.version) == (False, False, 1)
    assert again.diff == "no changes\n"
    assert again.message == "no changes; version 1 stays live"
    assert {d.action for d in again.documents} == {"unchanged"}
    assert await store.latest_version_number() == 1


async def test_key_order_and_document_order_do_not_matter(service, store):
    await service.apply(BOTH, applied_by="alice")
    reordered = (
        f"{BUDGET}---\nrules:\n  - limit: {{window: 1m, requests: 100}}\n"
        "    id: per-user\ntype: test-rate-limit\nname: team-limits\n"
    )
    assert not (await service.apply(reordered, applied_by="alice")).changed


async def test_change_increments_version_with_a_diff(service, store):
    await service.apply(BOTH, applied_by="alice")
    result = await service.apply(HOURLY, applied_by="bob")
    assert (result.version, result.previous_version, result.changed) == (2, 1, True)
    assert result.diff.startswith(
        "--- test-rate-limit/team-limits (v1)\n+++ test-rate-limit/team-limits (proposed)\n"
    )
    assert "-    window: 1m\n" in result.diff and "+    window: 1h\n" in result.diff
    assert [c.action for c in result.changes] == ["changed"]
    # merged by (type, name): the budget stays
    assert {d["name"] for d in (await store.latest()).documents} == {"team-limits", "eng-budget"}


async def test_dry_run_changes_nothing(service, store):
    await service.apply(BOTH, applied_by="alice")
    result = await service.apply(HOURLY, applied_by="bob", dry_run=True)
    assert (result.dry_run, result.changed, result.applied, result.version) == (
        True,
        True,
        False,
        1,
    )
    assert "+    window: 1h" in result.diff
    assert result.message == "dry run: 1 changed; nothing applied"
    assert await store.latest_version_number() == 1


async def test_replace_makes_the_input_the_whole_set(service, store):
    await service.apply(BOTH, applied_by="alice")
    result = await service.apply(BUDGET, applied_by="alice", replace=True)
    assert [(d.name, d.action) for d in result.documents] == [
        ("eng-budget", "unchanged"),
        ("team-limits", "deleted"),
    ]
    assert "+++ /dev/null" in result.diff
    assert [d["name"] for d in (await store.latest()).documents] == ["eng-budget"]


async def test_invalid_input_applies_nothing(service, store):
    await service.apply(BOTH, applied_by="alice")
    bad = HOURLY + "---\nname: eng-budget\ntype: test-budget\nceiling_usd: 0\n"
    with pytest.raises(ConfigValidationError) as caught:
        await service.apply(bad, applied_by="bob")
    assert caught.value.problems[0]["path"] == "ceiling_usd"
    assert await store.latest_version_number() == 1


async def test_empty_input_is_refused(service):
    with pytest.raises(ConfigValidationError, match="no documents found"):
        await service.apply("# nothing\n", applied_by="alice")


async def test_delete(service, store):
    await service.apply(BOTH, applied_by="alice")
    result = await service.delete("test-budget", "eng-budget", "bob")
    assert (result.version, [(d.name, d.action) for d in result.documents]) == (
        2,
        [("eng-budget", "deleted")],
    )
    row = await store.latest()
    assert [d["name"] for d in row.documents] == ["team-limits"]
    assert row.comment == "delete test-budget/eng-budget"
    with pytest.raises(ConfigNotFound) as caught:
        await service.delete("test-budget", "eng-budget", "bob")
    assert caught.value.status == 404


async def test_rollback_is_a_new_version(service, store):
    await service.apply(BOTH, applied_by="alice")
    await service.apply(HOURLY, applied_by="bob")
    result = await service.rollback(1, "carol")
    assert (result.version, result.changed) == (3, True)
    assert "+    window: 1m" in result.diff
    row = await store.latest()
    assert row.comment == "rollback to v1" and row.applied_by == "carol"
    assert sorted(map(str, row.documents)) == sorted(map(str, (await store.get(1)).documents))
    again = await service.rollback(1, "carol")
    assert (again.applied, again.version) == (False, 3)
    with pytest.raises(ConfigNotFound):
        await service.rollback(99, "carol")


async def test_rollback_dry_run(service, store):
    await service.apply(BOTH, applied_by="alice")
    await service.apply(HOURLY, applied_by="bob")
    result = await service.rollback(1, "carol", dry_run=True)
    assert result.changed and not result.applied
    assert await store.latest_version_number() == 2


async def test_history_and_get(service):
    assert (await service.current()).version == 0
    await service.apply(BOTH, applied_by="alice")
    await service.apply(HOURLY, applied_by="bob", comment="hourly")
    history = await service.history(10)
    assert [(v.version, v.applied_by, v.comment) for v in history] == [
        (2, "bob", "hourly"),
        (1, "alice", None),
    ]
    assert len((await service.get(1)).documents) == 2
    with pytest.raises(ConfigNotFound):
        await service.get(7)


async def test_set_checks_refuse_the_whole_change(store, registry):
    def one_budget_at_most(documents):
        budgets = [d for d in documents if d.type == "test-budget"]
        return [Problem(d.name, d.type, "", "only one budget allowed") for d in budgets[1:]]

    service = ConfigService(store, registry, checks=[one_budget_at_most])
    await service.apply(BOTH, applied_by="alice")
    with pytest.raises(ConfigValidationError, match="only one budget allowed"):
        await service.apply(BUDGET.replace("eng-budget", "ops-budget"), applied_by="alice")
    assert await store.latest_version_number() == 1


async def test_review_warnings_are_reported_and_strict_refuses_them(store, registry):
    seen: list[tuple[list[str], list[str]]] = []

    def review(proposed, current):
        seen.append(([d.name for d in proposed], [d.name for d in current]))
        names = {d.name for d in proposed}
        if "eng-budget" in names:
            return [Problem("eng-budget", "test-budget", "budgets[0]", "something to know")]
        return []

    service = ConfigService(store, registry, review=review)
    quiet = await service.apply(RATE_LIMITS, applied_by="alice")
    assert quiet.applied and quiet.warnings == []
    dry = await service.apply(BUDGET, applied_by="alice", dry_run=True)
    assert [w.message for w in dry.warnings] == ["something to know"]
    assert seen[-1] == (["team-limits", "eng-budget"], ["team-limits"])  # proposed, replaced
    with pytest.raises(ConfigValidationError) as refused:
        await service.apply(BUDGET, applied_by="alice", strict=True)
    assert refused.value.code == "config_warnings"
    assert refused.value.problems[0]["message"] == "something to know"
    assert await store.latest_version_number() == 1  # nothing applied
    applied = await service.apply(BUDGET, applied_by="alice")
    assert applied.applied and len(applied.warnings) == 1


async def test_a_set_the_review_cannot_compile_is_refused(store, registry):
    def review(proposed, current):
        raise ConfigError("budget x: price_as 'nope' has no price", param="unpriced")

    service = ConfigService(store, registry, review=review)
    with pytest.raises(ConfigValidationError) as refused:
        await service.apply(BUDGET, applied_by="alice")
    assert "no price" in refused.value.message
    assert await store.latest_version_number() == 0
