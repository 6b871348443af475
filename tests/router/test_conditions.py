from __future__ import annotations

import pytest

from sluicegate.model.identity import Envelope
from sluicegate.router.conditions import build_condition, resolve_name


@pytest.mark.parametrize(
    "name, resolved",
    [
        ("environment", ("environment", True)),
        ("X-Sluice-Environment", ("environment", True)),
        ("X-TFY-Environment", ("environment", True)),
        ("x-tfy-workflow-tag", ("workflow_tag", True)),
        ("X-TFY-User-ID", ("user_id", True)),
        ("X-TFY-Cost-Center", ("cost_center", True)),
        ("feature", ("feature", False)),
    ],
)
def test_condition_names_resolve_like_the_policy_engine(name: str, resolved: tuple[str, bool]):
    assert resolve_name(name) == resolved


def test_a_configured_prefix_is_honoured():
    assert resolve_name("X-Acme-Project", ["X-Acme-"]) == ("project", True)
    assert resolve_name("X-TFY-Project", ["X-Acme-"]) == ("X-TFY-Project", False)


def test_metadata_must_all_hold_and_one_subject_must():
    condition = build_condition(
        {"X-TFY-Environment": "production", "feature": ["search", "chat"]},
        ["team:search", "user:u1"],
    )
    match = Envelope(environment="production", team="search", metadata={"feature": "chat"})
    assert condition.matches(match)
    assert not condition.matches(
        Envelope(environment="staging", team="search", metadata={"feature": "chat"})
    )
    assert not condition.matches(Envelope(environment="production", team="search"))
    assert not condition.matches(
        Envelope(environment="production", team="ads", metadata={"feature": "chat"})
    )
    assert condition.matches(
        Envelope(environment="production", team="ads", user_id="u1", metadata={"feature": "search"})
    )


def test_a_wildcard_subject_means_present():
    condition = build_condition({}, ["user:*"])
    assert condition.matches(Envelope(user_id="anyone"))
    assert not condition.matches(Envelope())
