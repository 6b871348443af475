"""`when` conditions of a route, compiled once so that matching a request is a few lookups.

A condition name resolves exactly as in the policy engine (`identity.envelope_field`):
an envelope field by its own name (`environment`, `workflow_tag` ...) or by its header
under any configured prefix (`X-Sluice-Environment`, `X-TFY-Workflow-Tag` ...); any other
name is a free metadata key (from the metadata JSON header), as written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import msgspec

from sluicegate.identity.envelope import DEFAULT_PREFIXES, envelope_field
from sluicegate.model.identity import Envelope

ANY_VALUE = "*"

# `subjects` kinds and the envelope field each one names.
SUBJECT_FIELDS = {"user": "user_id", "team": "team", "key": "key_id", "project": "project"}


class FieldCheck(msgspec.Struct, frozen=True):
    """True when the envelope field (or metadata key) holds one of `values`;
    `*` among them means "present with any value"."""

    name: str
    is_field: bool
    values: frozenset[str]

    def matches(self, envelope: Envelope) -> bool:
        value = getattr(envelope, self.name) if self.is_field else envelope.metadata.get(self.name)
        return value is not None and (value in self.values or ANY_VALUE in self.values)


class Condition(msgspec.Struct, frozen=True):
    """Every check in `all_of` holds and, when `any_of` is not empty, one of those does."""

    all_of: tuple[FieldCheck, ...] = ()
    any_of: tuple[FieldCheck, ...] = ()

    def matches(self, envelope: Envelope) -> bool:
        if not all(check.matches(envelope) for check in self.all_of):
            return False
        return not self.any_of or any(check.matches(envelope) for check in self.any_of)


def resolve_name(name: str, prefixes: Sequence[str] = DEFAULT_PREFIXES) -> tuple[str, bool]:
    """(envelope field, True) or (metadata key, False) for a condition name."""
    field = envelope_field(name, prefixes)
    return (field, True) if field is not None else (name, False)


def build_condition(
    metadata: Mapping[str, str | Sequence[str]],
    subjects: Sequence[str],
    prefixes: Sequence[str] = DEFAULT_PREFIXES,
) -> Condition:
    return Condition(
        all_of=tuple(_field_check(name, value, prefixes) for name, value in metadata.items()),
        any_of=tuple(_subject_check(subject) for subject in subjects),
    )


def _field_check(name: str, values: str | Iterable[str], prefixes: Sequence[str]) -> FieldCheck:
    resolved, is_field = resolve_name(name, prefixes)
    wanted = frozenset([values] if isinstance(values, str) else values)
    return FieldCheck(resolved, is_field, wanted)


def _subject_check(subject: str) -> FieldCheck:
    """`team:frontend`, `user:u_8f1c2d`, `key:*` ... (kinds in SUBJECT_FIELDS)."""
    kind, _, value = subject.partition(":")
    return FieldCheck(SUBJECT_FIELDS[kind], True, frozenset([value or ANY_VALUE]))
