"""The controls in force that an action can name, looked up in the live config snapshot:
which documents hold rate limits and budgets, which virtual models route to a provider,
which budgets are scoped to a team, project, user or metadata value."""

from __future__ import annotations

from sluicegate.config.live import ConfigSnapshot
from sluicegate.identity.envelope import envelope_field
from sluicegate.policy.documents import BudgetDocument, SubjectType
from sluicegate.router.documents import LoadBalancingDocument
from sluicegate.router.specs import FallbackSpec, RuleSpec

ROUTING = "gateway-load-balancing-config"
BUDGETS = "gateway-budget-config"
RATE_LIMITS = ("gateway-rate-limit-config", "gateway-rate-limiting-config")
ANALYTICS = "gateway-analytics-config"
MAX_NAMED = 5  # documents named by one panel's actions of one kind

# analytics dimension -> the subject prefix a budget's `subjects` use for it
_SUBJECT_OF = {"team": "team", "user_id": "user"}


def documents(config: ConfigSnapshot, *types: str) -> list[tuple[str, str]]:
    """(type, name) of the documents of these types, in applied order."""
    return [(doc.type, doc.name) for t in types for doc in config.of_type(t)][:MAX_NAMED]


def routes_to(config: ConfigSnapshot, provider: str) -> list[str]:
    """Virtual models (load-balancing documents) with a target or fallback on `provider`."""
    names = []
    for doc in config.models_of(ROUTING, LoadBalancingDocument):
        if provider in _providers(doc):
            names.append(doc.name)
    return names[:MAX_NAMED]


def budgets_for(config: ConfigSnapshot, dimension: str, value: str) -> list[tuple[str, str]]:
    """(document, budget id) of budgets whose scope names `dimension` = `value`: by
    metadata (an envelope field, its header, or a free metadata key) or by subject."""
    found = []
    metadata_key = (
        dimension.removeprefix("metadata.") if dimension.startswith("metadata.") else None
    )
    for doc in config.models_of(BUDGETS, BudgetDocument):
        for budget in doc.budgets:
            scope = budget.scope
            for name, values in (scope.metadata or {}).items():
                field = envelope_field(name)
                same = (
                    field == dimension
                    if metadata_key is None
                    else (field is None and name == metadata_key)
                )
                if same and value in values:
                    found.append((doc.name, budget.id))
            prefix = _SUBJECT_OF.get(dimension)
            subjects = scope.subjects
            listed = subjects if not isinstance(subjects, SubjectType) else None
            if prefix and listed is not None and f"{prefix}:{value}" in listed:
                found.append((doc.name, budget.id))
    return list(dict.fromkeys(found))[:MAX_NAMED]


def _providers(doc: LoadBalancingDocument) -> set[str]:
    specs: list[RuleSpec | FallbackSpec] = [*(doc.rules or []), *(doc.fallbacks or [])]
    for route in doc.routes or []:
        specs += [*route.rules, *(route.fallbacks or [])]
    return {spec.upstream()[0] for spec in specs}
