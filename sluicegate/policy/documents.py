"""Config documents for rate limits, quotas and budgets (pydantic v2; the alert targets
document is `sluicegate.alerts.targets`).

Every model forbids unknown fields, so a typo is an error rather than a silently ignored
setting. The models are registered by type in `sluicegate.config.registry` and parsed
through `sluicegate.config.parse` (which reports every bad field by its path,
`rules[2].limit.window: ...`); this module only defines them.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

from sluicegate.policy.windows import parse_budget_window, parse_timezone, parse_window

_SUBJECT = re.compile(r"^(user|team|key|virtualaccount):\S.*$")
_ON_BREACH = re.compile(r"^(hard_block|queue_then_429|audit|fallback_to_\S+)$")
_ON_EXCEED = re.compile(r"^(hard_block|audit|fallback_to_\S+)$")
_SCOPE = re.compile(
    r"^(global|key|user|team|project|session|workflow|model|environment|cost_center|metadata:\S+)$"
)
_ID = r"^[A-Za-z0-9][A-Za-z0-9._@/-]*$"
_QUOTA_WINDOWS = {
    "second": "1s",
    "minute": "1m",
    "hour": "1h",
    "day": "1d",
    "week": "1w",
    "month": "1mo",
}
QUOTA_UNITS = tuple(_QUOTA_WINDOWS)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _subject(value: str) -> str:
    if not _SUBJECT.match(value):
        raise ValueError(
            f"'{value}' is not a subject; use user:<id>, team:<name>, key:<key id> "
            "or virtualaccount:<key name>"
        )
    return value


def _subjects(value: Any) -> Any:
    if isinstance(value, (dict, SubjectType)) or value is None:
        return value
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise ValueError('subjects is {type: user|team|key} or a list like ["team:frontend"]')
    return value


def _values(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _window(value: str) -> str:
    parse_window(value)
    return value


def _on(pattern: re.Pattern[str], hint: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"'{value}' is not one of {hint}")
        return value

    return AfterValidator(check)


def _scope(value: str) -> str:
    if not _SCOPE.match(value):
        raise ValueError(
            f"'{value}' is not a scope; use key, user, team, project, session, workflow, "
            "model, environment, cost_center or metadata:<key>"
        )
    return value


RuleId = Annotated[str, Field(min_length=1, max_length=128, pattern=_ID)]
SubjectRef = Annotated[str, AfterValidator(_subject)]
MetadataMatch = dict[str, Annotated[list[str], BeforeValidator(_values), Field(min_length=1)]]


class SubjectType(Strict):
    """Requests that carry such a subject (`{type: user}`: any request with a user)."""

    type: Literal["user", "team", "key"]


def _subjects_form(value: Any) -> str:
    return "by_type" if isinstance(value, (dict, SubjectType)) else "by_list"


Subjects = Annotated[
    Annotated[SubjectType, Tag("by_type")] | Annotated[list[SubjectRef], Tag("by_list")],
    Discriminator(_subjects_form),
    BeforeValidator(_subjects),
]


class When(Strict):
    """All given conditions must hold; within subjects and models, any entry matches.
    Metadata names may be envelope fields (`environment`), their headers
    (`X-Sluice-Environment`, `X-TFY-Environment`) or free keys from X-Sluice-Metadata."""

    subjects: Subjects | None = None
    models: list[str] | None = None
    metadata: MetadataMatch | None = None


class Limit(Strict):
    requests: Annotated[int, Field(gt=0)] | None = None
    tokens: Annotated[int, Field(gt=0)] | None = None
    token_type: Literal["total", "input", "output"] = "total"
    window: Annotated[str, AfterValidator(_window)]
    scope: Annotated[str, AfterValidator(_scope)] = "global"

    @model_validator(mode="after")
    def _one_measure(self) -> Limit:
        if (self.requests is None) == (self.tokens is None):
            raise ValueError("set exactly one of requests or tokens")
        if self.requests is not None and "token_type" in self.model_fields_set:
            raise ValueError("token_type applies to token limits only")
        return self


class RateLimitRule(Strict):
    id: RuleId
    when: When = When()
    limit: Limit
    on_breach: Annotated[
        str, _on(_ON_BREACH, "hard_block, queue_then_429, audit, fallback_to_<model>")
    ] = "hard_block"
    queue_timeout_ms: Annotated[int, Field(gt=0, le=300_000)] = 5000


class RateLimitDocument(Strict):
    name: Annotated[str, Field(min_length=1)]
    type: Literal["gateway-rate-limit-config"]
    description: str | None = None
    rules: list[RateLimitRule]


def _unit(value: str) -> str:
    measure, _, per = value.partition("_per_")
    if measure not in ("requests", "tokens") or per not in QUOTA_UNITS:
        raise ValueError(
            f"'{value}' is not a unit; use requests_per_<period> or tokens_per_<period> "
            f"with period one of {', '.join(QUOTA_UNITS)}"
        )
    return value


class QuotaRule(Strict):
    """Seed 004's shape: `subjects` / `limit_to` / `unit`; each subject gets its own count."""

    id: RuleId
    when: When = When()
    limit_to: Annotated[int, Field(gt=0)]
    unit: Annotated[str, AfterValidator(_unit)]


class QuotaDocument(Strict):
    name: Annotated[str, Field(min_length=1)]
    type: Literal["gateway-rate-limiting-config"]
    description: str | None = None
    rules: list[QuotaRule]


class BudgetScope(Strict):
    metadata: MetadataMatch | None = None
    subjects: Subjects | None = None
    models: list[str] | None = None


class BudgetAlert(Strict):
    at_pct: Annotated[float, Field(gt=0, le=1000)]
    notify: list[str] = []


def _budget_window(value: str) -> str:
    parse_budget_window(value)
    return value


def _timezone(value: str) -> str:
    parse_timezone(value)
    return value


BudgetWindow = Annotated[str, AfterValidator(_budget_window)]


class PriceAs(Strict):
    """`unpriced: {price_as: gpt-4o}`: reserve and settle unpriced calls at that model's
    prices (the ledger row says so in `priced_as`)."""

    price_as: Annotated[str, Field(min_length=1)]


Unpriced = Literal["block", "allow"] | PriceAs


class Budget(Strict):
    id: RuleId
    scope: BudgetScope = BudgetScope()
    ceiling_usd: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    window: BudgetWindow | None = None
    windows: Annotated[list[BudgetWindow], Field(min_length=1)] | None = None
    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"
    alerts: list[BudgetAlert] = []
    on_exceed: Annotated[
        str, _on(_ON_EXCEED, "hard_block, fallback_to_cheaper, fallback_to_<model>, audit")
    ] = "hard_block"
    fallback_model: str | None = None
    # What a call to a model with no price does (its cost is unknown, so it cannot be
    # counted): `block` refuses it, `allow` admits it uncounted, `price_as` counts it at
    # another model's prices. Unset: block for hard_block budgets, allow for the others.
    unpriced: Unpriced | None = None

    @model_validator(mode="after")
    def _check(self) -> Budget:
        if (self.window is None) == (self.windows is None):
            raise ValueError("set exactly one of window or windows")
        if self.fallback_model and self.on_exceed != "fallback_to_cheaper":
            raise ValueError("fallback_model applies to on_exceed: fallback_to_cheaper only")
        if len(set(self.window_names)) != len(self.window_names):
            raise ValueError("windows are listed twice")
        return self

    @property
    def window_names(self) -> list[str]:
        return [self.window] if self.window else list(self.windows or [])


class BudgetDocument(Strict):
    name: Annotated[str, Field(min_length=1)]
    type: Literal["gateway-budget-config"]
    description: str | None = None
    budgets: list[Budget]


def quota_window(unit: str) -> tuple[str, str]:
    """`requests_per_day` -> ("requests", "1d")."""
    measure, _, per = unit.partition("_per_")
    return measure, _QUOTA_WINDOWS[per]


def usd_to_micros(usd: float) -> int:
    return math.ceil(round(usd * 1_000_000, 3))
