"""The parts of a `gateway-load-balancing-config` document: targets, retry, breaker,
sticky sessions, `when` conditions and routes (pydantic v2, unknown fields refused).
The document itself, and what each part means, is described in `documents`."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from sluicegate.router.conditions import SUBJECT_FIELDS
from sluicegate.router.routes import RuleType


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class TargetRef(_Spec):
    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)


class HeaderRules(_Spec):
    """Headers added to / removed from the upstream request of one target."""

    set_: dict[str, str] = Field(default_factory=dict, alias="set")
    remove: list[str] = Field(default_factory=list)


class RetrySpec(_Spec):
    attempts: int = Field(default=1, ge=1, le=10, description="tries per target, first included")
    delay_ms: int = Field(default=200, ge=0)
    max_delay_ms: int = Field(default=2000, ge=0)
    jitter: bool = True
    on_status_codes: list[int] | None = None

    @model_validator(mode="after")
    def _delays(self) -> RetrySpec:
        if self.max_delay_ms < self.delay_ms:
            raise ValueError(
                f"max_delay_ms ({self.max_delay_ms}) must not be below delay_ms ({self.delay_ms})"
            )
        check_status_codes(self.on_status_codes)
        return self


class _TargetOptions(_Spec):
    """How to call a target; shared by rules and fallbacks."""

    id: str | None = Field(default=None, min_length=1)
    timeout_ms: int | None = Field(default=None, gt=0)
    ttft_timeout_ms: int | None = Field(default=None, gt=0)
    override_params: dict[str, Any] = Field(default_factory=dict)
    headers: HeaderRules = Field(default_factory=HeaderRules)
    retry: RetrySpec | None = None


class RuleSpec(_TargetOptions):
    """A target the primary is chosen among. `provider`/`model` may also be written inline."""

    target: TargetRef
    weight: float = Field(default=1.0, ge=0)
    priority: int = 0

    @model_validator(mode="before")
    @classmethod
    def _inline_target(cls, data: Any) -> Any:
        inline = isinstance(data, dict) and ("provider" in data or "model" in data)
        if inline and "target" not in data:
            data = dict(data)
            data["target"] = {key: data.pop(key, None) for key in ("provider", "model")}
        return data

    def upstream(self) -> tuple[str, str]:
        """(provider, model sent upstream): a `model` in override_params pins the latter."""
        return self.target.provider, str(self.override_params.get("model", self.target.model))


class FallbackSpec(_TargetOptions):
    provider: str = Field(min_length=1)
    model: str = Field(min_length=1)

    def upstream(self) -> tuple[str, str]:
        return self.provider, str(self.override_params.get("model", self.model))


class CircuitBreakerSpec(_Spec):
    enabled: bool = True
    failure_threshold: int = Field(default=5, ge=1)
    window_seconds: float = Field(default=60, gt=0)
    cooldown_seconds: float = Field(default=30, gt=0)
    probe_timeout_seconds: float = Field(default=60, gt=0)


class StickySessionSpec(_Spec):
    enabled: bool = False
    ttl_seconds: int = Field(default=3600, gt=0)
    by: str = Field(default="session_id", min_length=1)


class WhenSpec(_Spec):
    metadata: dict[str, str | list[str]] = Field(default_factory=dict)
    subjects: list[str] = Field(default_factory=list)
    workflow_tag: str | list[str] | None = None

    @field_validator("subjects", mode="before")
    @classmethod
    def _subjects(cls, value: Any) -> Any:
        if isinstance(value, dict):  # {type: user}: any request that names a user
            if set(value) != {"type"}:
                raise ValueError("the mapping form of subjects is {type: user|team|project|key}")
            value = [f"{value['type']}:*"]
        return value

    @field_validator("subjects")
    @classmethod
    def _subject_kinds(cls, value: list[str]) -> list[str]:
        for subject in value:
            kind = subject.partition(":")[0]
            if kind not in SUBJECT_FIELDS:
                known = ", ".join(sorted(SUBJECT_FIELDS))
                raise ValueError(f"subject {subject!r}: write kind:value with kind one of {known}")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> WhenSpec:
        if not self.metadata and not self.subjects and self.workflow_tag is None:
            raise ValueError("an empty `when` matches everything; leave it out for a default route")
        return self


class RuleSetSettings(_Spec):
    """Settings of a rule set; None means "inherit" (a route from its document)."""

    rule_type: RuleType | None = None
    fallbacks: list[FallbackSpec] | None = None
    retry: RetrySpec | None = None
    fallback_status_codes: list[int] | None = None
    latency_tolerance_pct: float | None = Field(default=None, ge=0)
    latency_min_samples: int | None = Field(default=None, ge=0)
    latency_explore_pct: float | None = Field(default=None, ge=0, le=100)

    @field_validator("fallback_status_codes")
    @classmethod
    def _codes(cls, value: list[int] | None) -> list[int] | None:
        check_status_codes(value)
        return value


class RouteSpec(RuleSetSettings):
    id: str = Field(min_length=1)
    when: WhenSpec | None = None
    rules: list[RuleSpec] = Field(min_length=1, validation_alias=AliasChoices("rules", "targets"))


def check_status_codes(codes: list[int] | None) -> None:
    for code in codes or ():
        if not 400 <= code <= 599:
            raise ValueError(f"{code} is not an HTTP error status (400-599)")


def check_rule_set(
    rule_type: str | None, rules: list[RuleSpec], fallbacks: list[FallbackSpec] | None
) -> None:
    ids = [spec.id for spec in (*rules, *(fallbacks or ())) if spec.id is not None]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"target ids must be unique within a rule set: {', '.join(duplicates)}")
    if rule_type in (None, "weight-based") and not any(rule.weight > 0 for rule in rules):
        raise ValueError("every rule has weight 0: at least one needs a positive weight")
