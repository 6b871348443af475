"""`when` conditions of a route, compiled once so that matching a request is a few lookups.

A condition name resolves the same way as in the policy engine:
  1. an envelope field by its own name (`environment`, `workflow_tag`, `user_id` ...);
  2. the header that carries that field, under any configured prefix
     (`X-Sluice-Environment`, `X-TFY-Environment`, `X-TFY-Workflow-Tag` -> workflow_tag);
  3. anything else is a free metadata key (from the metadata JSON header), as written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import msgspec

from sluicegate.model.identity import ENVELOPE_FIELDS, Envelope

DEFAULT_HEADER_PREFIXES = ("X-Sluice-", "X-TFY-")
ANY_VALUE = "*"

# `subjects` kinds and the envelope field each one names.
SUBJECT_FIELDS = {
    "user": "user_id",
    "team": "team",
    "project": "project",
    "key": "key_id",
    "virtualaccount": "key_id",
    "session": "session_id",
}


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


def resolve_name(name: str, prefixes: Sequence[str] = DEFAULT_HEADER_PREFIXES) -> tuple[str, bool]:
    """(envelope field, True) or (metadata key, False) for a condition name."""
    for prefix in prefixes:
        if name.lower().startswith(prefix.lower()) and len(name) > len(prefix):
            stripped = _normalise(name[len(prefix) :])
            return stripped, stripped in ENVELOPE_FIELDS
    normalised = _normalise(name)
    if normalised in ENVELOPE_FIELDS:
        return normalised, True
    return name, False


def field_check(
    name: str, values: str | Iterable[str], prefixes: Sequence[str] = DEFAULT_HEADER_PREFIXES
) -> FieldCheck:
    resolved, is_field = resolve_name(name, prefixes)
    wanted = frozenset([values] if isinstance(values, str) else values)
    return FieldCheck(resolved, is_field, wanted)


def subject_check(subject: str) -> FieldCheck:
    """`team:frontend`, `user:u_8f1c2d`, `key:*` ... (kinds in SUBJECT_FIELDS)."""
    kind, _, value = subject.partition(":")
    return FieldCheck(SUBJECT_FIELDS[kind], True, frozenset([value or ANY_VALUE]))


def build_condition(
    metadata: Mapping[str, str | Sequence[str]],
    subjects: Sequence[str],
    prefixes: Sequence[str] = DEFAULT_HEADER_PREFIXES,
) -> Condition:
    return Condition(
        all_of=tuple(field_check(name, value, prefixes) for name, value in metadata.items()),
        any_of=tuple(subject_check(subject) for subject in subjects),
    )


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_")
