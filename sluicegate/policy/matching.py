"""Turn `when` conditions and `scope` names into closures over (envelope, principal, model).

Built once when a policy is compiled, so the per-request work is a few attribute reads.
A metadata name may be an envelope field (`workflow_tag`), its header in any configured
prefix (`X-Sluice-Workflow-Tag`, `X-TFY-Workflow-Tag`, case-insensitive), or a free key
from the `X-Sluice-Metadata` JSON object.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping, Sequence

from sluicegate.identity.envelope import DEFAULT_PREFIXES, envelope_field
from sluicegate.model.identity import Envelope, Principal
from sluicegate.policy.documents import SubjectType

Getter = Callable[[Envelope, Principal, str], str | None]
Predicate = Callable[[Envelope, Principal, str], bool]

_SCOPE_FIELDS = {
    "key": "key_id",
    "user": "user_id",
    "team": "team",
    "project": "project",
    "session": "session_id",
    "workflow": "workflow_tag",
    "environment": "environment",
    "cost_center": "cost_center",
}


def getter(name: str, prefixes: Sequence[str] = DEFAULT_PREFIXES) -> Getter:
    field = envelope_field(name, prefixes)
    if field is None:
        return lambda env, principal, model: env.metadata.get(name)
    return _field_getter(field)


def _field_getter(field: str) -> Getter:
    if field == "key_id":
        return lambda env, principal, model: env.key_id or principal.key_id
    if field == "user_id":
        return lambda env, principal, model: env.user_id or principal.user_id
    if field == "team":
        return lambda env, principal, model: env.team or principal.team
    return lambda env, principal, model: getattr(env, field)


def scope_getter(scope: str, prefixes: Sequence[str] = DEFAULT_PREFIXES) -> Getter:
    """What a counter is keyed on; None from the getter means the request lacks it."""
    if scope == "global":
        return lambda env, principal, model: "*"
    if scope == "model":
        return lambda env, principal, model: model
    if scope.startswith("metadata:"):
        return getter(scope.removeprefix("metadata:"), prefixes)
    return _field_getter(_SCOPE_FIELDS[scope])


def metadata_predicate(
    metadata: Mapping[str, Sequence[str]], prefixes: Sequence[str] = DEFAULT_PREFIXES
) -> Predicate:
    checks = [(getter(name, prefixes), frozenset(values)) for name, values in metadata.items()]
    return lambda env, principal, model: all(get(env, principal, model) in ok for get, ok in checks)


def models_predicate(models: Sequence[str], aliases: Mapping[str, str]) -> Predicate:
    names = frozenset(models) | frozenset(aliases[m] for m in models if m in aliases)
    patterns = tuple(n for n in names if any(c in n for c in "*?["))
    if not patterns:
        return lambda env, principal, model: model in names
    return lambda env, principal, model: (
        model in names or any(fnmatch.fnmatchcase(model, p) for p in patterns)
    )


def subjects_predicate(subjects: SubjectType | Sequence[str]) -> Predicate:
    if isinstance(subjects, SubjectType):
        has = subject_type_getter(subjects.type)
        return lambda env, principal, model: has(env, principal, model) is not None
    first = subject_getter(subjects)
    return lambda env, principal, model: first(env, principal, model) is not None


def subject_type_getter(kind: str) -> Getter:
    return _field_getter({"user": "user_id", "team": "team", "key": "key_id"}[kind])


def subject_getter(subjects: Sequence[str]) -> Getter:
    """The first listed subject ("team:frontend") the request is, or None."""
    order = tuple((s.partition(":")[0], s.partition(":")[2], s) for s in dict.fromkeys(subjects))
    user, team, key = _field_getter("user_id"), _field_getter("team"), _field_getter("key_id")

    def first(env: Envelope, principal: Principal, model: str) -> str | None:
        found = {
            "user": user(env, principal, model),
            "team": team(env, principal, model),
            "key": key(env, principal, model),
            "virtualaccount": principal.name,
        }
        for kind, value, subject in order:
            if found[kind] == value:
                return subject
        return None

    return first


def all_of(predicates: Sequence[Predicate]) -> Predicate:
    if not predicates:
        return lambda env, principal, model: True
    if len(predicates) == 1:
        return predicates[0]
    checks = tuple(predicates)
    return lambda env, principal, model: all(p(env, principal, model) for p in checks)
