"""Which budgets and rate-limit rules in force govern a panel row: the controls shown
beside spend (principle 3), read from the config snapshot's documents.

A rule's conditions (a budget's `scope`, a rate limit's `when`) are read per dimension:

    metadata NAME: [values]    NAME an envelope field or its header (project, team,
                               workflow_tag, environment, cost_center, user_id...), else a
                               free metadata key (the dimension metadata.NAME)
    subjects: [team:a, user:b] any one of them (team, user_id, key, key name)
    subjects: {type: team}     a request that has one
    models: [names, patterns]  the row's requested_model when grouped by it, else its model

Against a row's grouped values each condition is ALL (it is on a grouped dimension and
admits the row's value: it holds for every request of the row), NONE (on a grouped
dimension, and does not admit it) or SOME (on a dimension the row is not grouped by: it
may hold for part of the row). A rule is listed beside a row when no condition is NONE
and either it has no condition (it governs all traffic) or one is ALL; its coverage is
`whole` when every condition is ALL, else `part`. A rule whose conditions are all on
other dimensions belongs to those views and is not listed. A row's missing value
(UNTAGGED, no team) matches no condition, as the policy engine matches no request
without the field.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from sluicegate.analytics.panels import controls
from sluicegate.config.live import ConfigSnapshot
from sluicegate.identity.envelope import DEFAULT_PREFIXES, envelope_field
from sluicegate.policy.budget_audience import confined_teams, names_users
from sluicegate.policy.budgets import usd
from sluicegate.policy.documents import (
    BudgetDocument,
    BudgetScope,
    QuotaDocument,
    RateLimitDocument,
    SubjectType,
    When,
    quota_window,
)

MAX_RULES = 500  # rules read from the config (a config holding more is cut, with a note)
Coverage = Literal["whole", "part"]
RuleKind = Literal["budget", "rate_limit"]
ANY_VALUE = "*any*"  # `subjects: {type: ...}`: any non-empty value (not a pattern)
_SUBJECT_DIMENSIONS = {"team": "team", "user": "user_id", "key": "key_id"}


class Holds(Enum):
    ALL = 2
    SOME = 1
    NONE = 0


@dataclass(frozen=True, slots=True)
class Alternative:
    """One way a condition holds: the dimension (by analytics name) has one of `values`
    (fnmatch patterns when `patterns`)."""

    dimension: str
    values: frozenset[str]
    patterns: bool = False

    def admits(self, value: str | None) -> bool:
        if not value:
            return False
        if ANY_VALUE in self.values:
            return True
        if self.patterns:
            return any(fnmatch.fnmatchcase(value, p) for p in self.values)
        return value in self.values


@dataclass(frozen=True, slots=True)
class Condition:
    """Holds when any alternative does (`subjects` lists several kinds). With `readings`,
    the alternatives are readings of one value (models: requested, else served) and the
    first one the row is grouped by decides."""

    alternatives: tuple[Alternative, ...]
    readings: bool = False

    def against(self, row: Mapping[str, str | None]) -> Holds:
        if self.readings:
            for alternative in self.alternatives:
                if alternative.dimension in row:
                    admitted = alternative.admits(row[alternative.dimension])
                    return Holds.ALL if admitted else Holds.NONE
            return Holds.SOME
        found = Holds.NONE
        for alternative in self.alternatives:
            if alternative.dimension not in row:
                found = Holds.SOME
            elif alternative.admits(row[alternative.dimension]):
                return Holds.ALL
        return found


@dataclass(frozen=True, slots=True)
class Rule:
    """A budget or a rate-limit / quota rule as the panels show it."""

    kind: RuleKind
    document: str
    document_type: str
    id: str
    limit: str  # "$4,000.00", "100 requests", "50,000 tokens (input)"
    windows: tuple[str, ...]
    per: str | None  # rate limits: what each counter is kept per (user, project...)
    action: str  # on_exceed / on_breach
    conditions: tuple[Condition, ...]
    names_users: bool  # its conditions pick out particular users
    teams: frozenset[str] | None = None  # budgets: the teams it is confined to

    def coverage(self, row: Mapping[str, str | None]) -> Coverage | None:
        """How this rule covers a row grouped as `row` (dimension -> value, None for no
        value); None: not listed beside it."""
        if not self.conditions:
            return "whole"
        holds = [c.against(row) for c in self.conditions]
        if Holds.NONE in holds or Holds.ALL not in holds:
            return None
        return "whole" if all(h is Holds.ALL for h in holds) else "part"

    def names_dimension(self, dimension: str) -> bool:
        """Some condition of this rule reads `dimension`."""
        return any(a.dimension == dimension for c in self.conditions for a in c.alternatives)


def rules_in_force(config: ConfigSnapshot) -> tuple[list[Rule], bool]:
    """Every budget and rate-limit rule in the snapshot, in applied order, and whether
    the list was cut at MAX_RULES."""
    found: list[Rule] = []
    for doc in config.models_of(controls.BUDGETS, BudgetDocument):
        for budget in doc.budgets:
            found.append(
                Rule(
                    kind="budget",
                    document=doc.name,
                    document_type=doc.type,
                    id=budget.id,
                    limit=usd(budget.ceiling_usd),
                    windows=tuple(budget.window_names),
                    per=None,
                    action=budget.on_exceed,
                    conditions=_conditions(budget.scope),
                    names_users=names_users(budget.scope, DEFAULT_PREFIXES),
                    teams=confined_teams(budget.scope, DEFAULT_PREFIXES),
                )
            )
    limits, quotas = controls.RATE_LIMITS
    for limit_doc in config.models_of(limits, RateLimitDocument):
        for rule in limit_doc.rules:
            amount = rule.limit.requests or rule.limit.tokens or 0
            measure = "requests" if rule.limit.requests is not None else "tokens"
            typed = measure == "tokens" and rule.limit.token_type != "total"
            kind = f" ({rule.limit.token_type})" if typed else ""
            found.append(
                Rule(
                    kind="rate_limit",
                    document=limit_doc.name,
                    document_type=limit_doc.type,
                    id=rule.id,
                    limit=f"{amount:,} {measure}{kind}",
                    windows=(rule.limit.window,),
                    per=rule.limit.scope,
                    action=rule.on_breach,
                    conditions=_conditions(rule.when),
                    names_users=names_users(_as_scope(rule.when), DEFAULT_PREFIXES),
                )
            )
    for quota_doc in config.models_of(quotas, QuotaDocument):
        for quota in quota_doc.rules:
            measure, window = quota_window(quota.unit)
            subjects = quota.when.subjects
            per = subjects.type if isinstance(subjects, SubjectType) else "subject"
            found.append(
                Rule(
                    kind="rate_limit",
                    document=quota_doc.name,
                    document_type=quota_doc.type,
                    id=quota.id,
                    limit=f"{quota.limit_to:,} {measure}",
                    windows=(window,),
                    per=per if subjects else "global",
                    action="hard_block",
                    conditions=_conditions(quota.when),
                    names_users=names_users(_as_scope(quota.when), DEFAULT_PREFIXES),
                )
            )
    return found[:MAX_RULES], len(found) > MAX_RULES


def _as_scope(when: When) -> BudgetScope:
    return BudgetScope(metadata=when.metadata, subjects=when.subjects, models=when.models)


def _conditions(scope: When | BudgetScope) -> tuple[Condition, ...]:
    conditions = []
    for name, values in (scope.metadata or {}).items():
        dimension = envelope_field(name) or f"metadata.{name}"
        conditions.append(Condition((Alternative(dimension, frozenset(values)),)))
    subjects = scope.subjects
    if isinstance(subjects, SubjectType):
        dimension = _SUBJECT_DIMENSIONS[subjects.type]
        conditions.append(Condition((Alternative(dimension, frozenset({ANY_VALUE})),)))
    elif subjects:
        conditions.append(Condition(_subject_alternatives(subjects)))
    if scope.models:
        models = frozenset(scope.models)
        patterns = any(c in m for m in models for c in "*?[")
        conditions.append(
            Condition(
                (
                    Alternative("requested_model", models, patterns),
                    Alternative("model", models, patterns),
                ),
                readings=True,
            )
        )
    return tuple(conditions)


def _subject_alternatives(subjects: Sequence[str]) -> tuple[Alternative, ...]:
    by_kind: dict[str, set[str]] = {}
    for subject in subjects:
        kind, _, value = subject.partition(":")
        by_kind.setdefault(kind, set()).add(value)
    dimensions = {**_SUBJECT_DIMENSIONS, "virtualaccount": "key_name"}
    return tuple(Alternative(dimensions[k], frozenset(v)) for k, v in by_kind.items())
