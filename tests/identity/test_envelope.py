"""The one header table: what the reader takes from a request is what config names mean."""

from __future__ import annotations

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
