"""The one header table: what the reader takes from a request is what config names mean."""

from __future__ import annotations

import pytest

from sluicegate.errors import PermissionDenied
from sluicegate.identity.envelope import EnvelopeReader, envelope_field, header_field
from sluicegate.model.identity import Principal

HEADERS = [(b"x-acme-team", b"search"), (b"x-acme-workflow-tag", b"triage"), (b"x-tfy-team", b"x")]


def test_a_configured_prefix_is_read_whatever_its_case():
    envelope = EnvelopeReader(["X-Acme-"]).read(Principal(key_id="k"), HEADERS)
    assert (envelope.team, envelope.workflow_tag) == ("search", "triage")


def test_config_names_resolve_to_the_fields_the_reader_fills():
    for name, _ in HEADERS[:2]:
        field = envelope_field(name.decode(), ["X-Acme-"])
        assert field is not None and field == header_field(name.decode(), ["x-acme-"])
    assert envelope_field("X-TFY-Team", ["X-Acme-"]) is None  # not a configured prefix


def test_a_pinned_field_refuses_another_value_and_accepts_its_own():
    intern = Principal(key_id="k", user_id="ann", project="intern-sandbox", pinned=("project",))
    reader = EnvelopeReader()
    with pytest.raises(PermissionDenied) as refused:
        reader.read(intern, [(b"x-sluice-project", b"other")])
    assert (refused.value.status, refused.value.param) == (403, "project")
    same = reader.read(intern, [(b"x-tfy-project", b"intern-sandbox")])
    assert (same.project, same.user_id) == ("intern-sandbox", "ann")


def test_unpinned_key_fields_are_defaults_and_user_and_team_stay_pinned():
    key = Principal(key_id="k", team="ml", project="etl", environment="dev")
    reader = EnvelopeReader()
    moved = reader.read(key, [(b"x-sluice-project", b"adhoc"), (b"x-sluice-environment", b"ci")])
    assert (moved.project, moved.environment, moved.team) == ("adhoc", "ci", "ml")
    assert reader.read(key, []).environment == "dev"
    with pytest.raises(PermissionDenied):
        reader.read(key, [(b"x-sluice-team", b"ads")])
