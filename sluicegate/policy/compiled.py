"""Validated documents -> `CompiledPolicy`: frozen data plus closures, built once per apply.

Order matters: checks are evaluated in config order (rate-limit and quota rules in
document order, then budgets in document order) and the first breached one decides.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from sluicegate.alerts.targets import NotificationTarget, NotificationTargetsDocument
from sluicegate.config.problems import Problem
from sluicegate.errors import ConfigError
from sluicegate.identity.envelope import DEFAULT_PREFIXES, envelope_field
from sluicegate.policy import budget_audience, matching
from sluicegate.policy.documents import (
    Budget,
    BudgetDocument,
    BudgetScope,
    PriceAs,
    QuotaDocument,
    QuotaRule,
    RateLimitDocument,
    RateLimitRule,
    SubjectType,
    When,
    quota_window,
    usd_to_micros,
)
from sluicegate.policy.windows import Window, parse_budget_window, parse_window
from sluicegate.pricing import ModelRate, PriceBook

if TYPE_CHECKING:  # admission.py imports this module
    from sluicegate.policy.admission import Item

Action = Literal["hard_block", "queue", "fallback", "audit"]
RateOf = Callable[[str], "ModelRate | None"]  # a model named in config -> its price


@dataclass(frozen=True)
class Breach:
    """What happens when a rule or budget would be exceeded."""

    action: Action
    fallback_model: str | None = None  # fallback: the model to use (None: router picks cheaper)

    @property
    def fallback_kind(self) -> Literal["model", "cheaper"]:
        return "model" if self.fallback_model else "cheaper"


@dataclass(frozen=True)
class CompiledRule:
    id: str
    document: str
    measure: Literal["requests", "tokens"]
    token_type: Literal["total", "input", "output"]
    limit: int
    window: Window
    scope_name: str
    matches: matching.Predicate
    scope: matching.Getter
    breach: Breach
    queue_timeout_s: float = 5.0
    # admission items already built for this rule (admission.py); per compiled policy
    items: dict[tuple[str, bool], Item] = field(default_factory=dict, compare=False, repr=False)

    @functools.cached_property
    def counter_family(self) -> str | None:
        """One counter per scope value: a family an in-process store may cap (base.py).
        A global rule has one counter, which is never dropped."""
        return None if self.scope_name == "global" else f"rl:{self.id}:{self.window.label}"


@dataclass(frozen=True)
class AlertRule:
    at_pct: float
    notify: tuple[str, ...]


@dataclass(frozen=True)
class UnpricedRule:
    """What a budget does with a call to a model that has no price."""

    action: Literal["block", "allow", "price_as"]
    model: str | None = None  # price_as: the model whose prices are used
    rate: ModelRate | None = None  # price_as: its price, resolved when compiled


ALLOW_UNPRICED = UnpricedRule("allow")
BLOCK_UNPRICED = UnpricedRule("block")


@dataclass(frozen=True)
class CompiledBudget:
    id: str
    document: str
    ceiling_usd: float
    ceiling_micros: int
    windows: tuple[Window, ...]
    matches: matching.Predicate
    breach: Breach
    alerts: tuple[AlertRule, ...]
    scope: Mapping[str, object]  # as written, for status APIs
    ledger_filters: tuple[Mapping[str, str], ...] | None  # None: not expressible
    unpriced: UnpricedRule = ALLOW_UNPRICED
    teams: frozenset[str] | None = None  # the teams it is confined to (budget_audience)
    names_users: bool = False  # its scope picks out users: for admins' eyes only


@dataclass(frozen=True)
class CompiledPolicy:
    rules: tuple[CompiledRule, ...] = ()
    budgets: tuple[CompiledBudget, ...] = ()
    targets: Mapping[str, NotificationTarget] = field(default_factory=lambda: MappingProxyType({}))
    warnings: tuple[Problem, ...] = ()  # what `apply` reports (the config still applies)

    @functools.cached_property
    def alerts(self) -> bool:
        """Whether any budget has alert thresholds (else admissions skip alert checks)."""
        return any(b.alerts for b in self.budgets)

    @functools.cached_property
    def audits(self) -> bool:
        """Whether any rule or budget is audit-only (else admissions skip audit events)."""
        rules: tuple[CompiledRule | CompiledBudget, ...] = (*self.rules, *self.budgets)
        return any(r.breach.action == "audit" for r in rules)


def compile_policy(
    docs: Sequence[BaseModel],
    *,
    aliases: Mapping[str, str],
    header_prefixes: Sequence[str] = DEFAULT_PREFIXES,
    rate_of: RateOf | None = None,
) -> CompiledPolicy:
    """Build the engine's policy; `ConfigError` on ids used twice, target names clashing,
    or a budget pricing unpriced calls as a model that has no price either. `rate_of`
    prices a model named in config (the live catalog's; else the catalogue's alone)."""
    rules: list[CompiledRule] = []
    budgets: list[CompiledBudget] = []
    targets: dict[str, NotificationTarget] = {}
    rate_of = rate_of or _catalogue_rate
    budget_docs = [doc for doc in docs if isinstance(doc, BudgetDocument)]
    for doc in docs:
        if isinstance(doc, RateLimitDocument):
            rules += [_rate_rule(r, doc.name, aliases, header_prefixes) for r in doc.rules]
        elif isinstance(doc, QuotaDocument):
            rules += [_quota_rule(r, doc.name, aliases, header_prefixes) for r in doc.rules]
        elif isinstance(doc, BudgetDocument):
            budgets += [
                _budget(b, doc.name, aliases, header_prefixes, rate_of) for b in doc.budgets
            ]
        elif isinstance(doc, NotificationTargetsDocument):
            for name, target in doc.targets.items():
                if name in targets:
                    raise ConfigError(f"{doc.name}: target '{name}' is defined twice", param=name)
                targets[name] = target
    _unique([r.id for r in rules] + [b.id for b in budgets])
    return CompiledPolicy(
        rules=tuple(rules),
        budgets=tuple(budgets),
        targets=MappingProxyType(targets),
        warnings=tuple(_warnings(budget_docs, targets)),
    )


def _catalogue_rate(model: str) -> ModelRate | None:
    return PriceBook().rate_for(None, model)


def _unique(ids: list[str]) -> None:
    seen: set[str] = set()
    for rule_id in ids:
        if rule_id in seen:
            raise ConfigError(f"rule or budget id '{rule_id}' is used twice", param=rule_id)
        seen.add(rule_id)


def _when(
    when: When | BudgetScope, aliases: Mapping[str, str], prefixes: Sequence[str]
) -> matching.Predicate:
    predicates: list[matching.Predicate] = []
    if when.subjects is not None:
        predicates.append(matching.subjects_predicate(when.subjects))
    if when.models:
        predicates.append(matching.models_predicate(when.models, aliases))
    if when.metadata:
        predicates.append(matching.metadata_predicate(when.metadata, prefixes))
    return matching.all_of(predicates)


def _breach(value: str, aliases: Mapping[str, str], fallback_model: str | None = None) -> Breach:
    if value == "queue_then_429":
        return Breach("queue")
    if value in ("hard_block", "audit"):
        return Breach(value)  # type: ignore[arg-type]  # mypy does not narrow str by `in`
    target = value.removeprefix("fallback_to_")
    if target == "cheaper":
        model = fallback_model
        return Breach("fallback", aliases.get(model, model) if model else None)
    return Breach("fallback", aliases.get(target, target))


def _rate_rule(
    rule: RateLimitRule, doc: str, aliases: Mapping[str, str], prefixes: Sequence[str]
) -> CompiledRule:
    limit = rule.limit
    return CompiledRule(
        id=rule.id,
        document=doc,
        measure="requests" if limit.requests is not None else "tokens",
        token_type=limit.token_type,
        limit=limit.requests or limit.tokens or 0,
        window=parse_window(limit.window),
        scope_name=limit.scope,
        matches=_when(rule.when, aliases, prefixes),
        scope=matching.scope_getter(limit.scope, prefixes),
        breach=_breach(rule.on_breach, aliases),
        queue_timeout_s=rule.queue_timeout_ms / 1000,
    )


def _quota_rule(
    rule: QuotaRule, doc: str, aliases: Mapping[str, str], prefixes: Sequence[str]
) -> CompiledRule:
    measure, window = quota_window(rule.unit)
    subjects = rule.when.subjects
    scope_name: str
    if isinstance(subjects, SubjectType):
        scope_name, scope = subjects.type, matching.subject_type_getter(subjects.type)
    elif subjects:
        scope_name, scope = "subject", matching.subject_getter(subjects)
    else:
        scope_name, scope = "global", matching.scope_getter("global")
    return CompiledRule(
        id=rule.id,
        document=doc,
        measure=measure,  # type: ignore[arg-type]  # QUOTA_UNITS start with requests/tokens
        token_type="total",
        limit=rule.limit_to,
        window=parse_window(window),
        scope_name=scope_name,
        matches=_when(rule.when, aliases, prefixes),
        scope=scope,
        breach=Breach("hard_block"),
    )


def _budget(
    budget: Budget,
    doc: str,
    aliases: Mapping[str, str],
    prefixes: Sequence[str],
    rate_of: RateOf,
) -> CompiledBudget:
    return CompiledBudget(
        id=budget.id,
        document=doc,
        ceiling_usd=budget.ceiling_usd,
        ceiling_micros=usd_to_micros(budget.ceiling_usd),
        windows=tuple(parse_budget_window(w, budget.timezone) for w in budget.window_names),
        matches=_when(budget.scope, aliases, prefixes),
        breach=_breach(budget.on_exceed, aliases, budget.fallback_model),
        alerts=tuple(
            AlertRule(a.at_pct, tuple(a.notify))
            for a in sorted(budget.alerts, key=lambda a: a.at_pct)
        ),
        scope=MappingProxyType(budget.scope.model_dump(mode="json", exclude_none=True)),
        ledger_filters=_ledger_filters(budget, prefixes),
        unpriced=_unpriced(budget, doc, rate_of),
        teams=budget_audience.confined_teams(budget.scope, prefixes),
        names_users=budget_audience.names_users(budget.scope, prefixes),
    )


def _unpriced(budget: Budget, doc: str, rate_of: RateOf) -> UnpricedRule:
    """Unset: a hard budget blocks unpriced calls (it could not bound them otherwise)."""
    setting = budget.unpriced
    if setting is None:
        return BLOCK_UNPRICED if budget.on_exceed == "hard_block" else ALLOW_UNPRICED
    if not isinstance(setting, PriceAs):
        return BLOCK_UNPRICED if setting == "block" else ALLOW_UNPRICED
    rate = rate_of(setting.price_as)
    if rate is None:
        raise ConfigError(
            f"{doc}: budget {budget.id}: unpriced: price_as {setting.price_as!r}, which has "
            "no price either (not in genai-prices and no price override)",
            param="unpriced.price_as",
        )
    return UnpricedRule("price_as", setting.price_as, rate)


def _ledger_filters(
    budget: Budget, prefixes: Sequence[str]
) -> tuple[Mapping[str, str], ...] | None:
    """Equality filters for `LedgerStore.sum_cost` (envelope field names, anything else a
    free metadata key) whose union is the budget's traffic; combinations overlap when
    subjects of different kinds are listed, so a rebuild then over-counts. None when the
    scope cannot be expressed: `{type: ...}` subjects, key names, or models (the ledger
    query has no model filter)."""
    scope = budget.scope
    if isinstance(scope.subjects, SubjectType) or scope.models:
        return None
    axes: list[list[tuple[str, str]]] = []
    for name, values in (scope.metadata or {}).items():
        column = envelope_field(name, prefixes) or name
        axes.append([(column, v) for v in values])
    if scope.subjects:
        columns = {"user": "user_id", "team": "team", "key": "key_id"}
        subjects = [s.partition(":") for s in scope.subjects]
        if any(kind not in columns for kind, _, _ in subjects):
            return None  # virtual accounts (key names) are not in the ledger
        axes.append([(columns[kind], value) for kind, _, value in subjects])
    return tuple(MappingProxyType(dict(combo)) for combo in itertools.product(*axes))


def _warnings(docs: list[BudgetDocument], targets: Mapping[str, object]) -> list[Problem]:
    """Alerts that would go nowhere: notify names no notification target defines (each
    name once per budget)."""
    found = []
    seen: set[tuple[str, str]] = set()
    for doc in docs:
        for b, budget in enumerate(doc.budgets):
            for a, alert in enumerate(budget.alerts):
                for name in alert.notify:
                    if name not in targets and (budget.id, name) not in seen:
                        seen.add((budget.id, name))
                        found.append(
                            Problem(
                                doc.name,
                                doc.type,
                                f"budgets[{b}].alerts[{a}].notify",
                                f"budget {budget.id}: notify target {name!r} is not defined "
                                "in any gateway-notification-targets document; this alert "
                                "goes nowhere",
                            )
                        )
    return found
