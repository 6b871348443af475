"""The `gateway-analytics-config` document: what the control room rolls up and how far a
raw-row query may reach.

    name: analytics
    type: gateway-analytics-config
    rollup_metadata_keys: [customer_id, feature]   # grouped/filtered from rollups
    raw_query_max_days: 7                           # other keys: raw rows, this far at most
    model_tiers: {claude-opus-4-1: frontier}        # overrides the default tier (analytics/
                                                    # tiers.py); glob patterns: claude-opus-*
    cheaper_targets: {claude-opus-4-7: claude-sonnet-4-6}  # premium-review's proposal
    prompt_cache_share: 0.5                         # the repeated prefix of a prompt

At most one such document is in force (two are refused when the config is compiled).
With none, `AnalyticsSettings()` applies: no metadata key is rolled up.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sluicegate.errors import ConfigError

MAX_ROLLUP_KEYS = 16  # each key multiplies rollup_metadata rows by its distinct values
_KEY = r"^[\w.:@/+=#~\-]{1,128}$"  # a metadata key as the envelope accepts it

MAX_MODEL_ENTRIES = 256  # model_tiers / cheaper_targets entries
DEFAULT_PROMPT_CACHE_SHARE = 0.5  # of a prompt's input taken as a repeated prefix

ModelTier = Literal["frontier", "standard", "economy"]
_Model = Annotated[str, Field(min_length=1, max_length=256)]


class AnalyticsDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1)]
    type: Literal["gateway-analytics-config"]
    description: str | None = None
    rollup_metadata_keys: Annotated[
        tuple[Annotated[str, Field(pattern=_KEY)], ...], Field(max_length=MAX_ROLLUP_KEYS)
    ] = ()
    raw_query_max_days: Annotated[int, Field(ge=1, le=93)] = 7
    model_tiers: Annotated[dict[_Model, ModelTier], Field(max_length=MAX_MODEL_ENTRIES)] = {}
    # served (frontier) model, or a glob pattern -> the catalogue model premium-review
    # proposes instead (else the same account's standard-tier model)
    cheaper_targets: Annotated[dict[_Model, _Model], Field(max_length=MAX_MODEL_ENTRIES)] = {}
    # the share of a prompt taken as a repeated prefix prompt caching would serve
    prompt_cache_share: Annotated[float, Field(ge=0, le=1)] = DEFAULT_PROMPT_CACHE_SHARE

    @model_validator(mode="after")
    def _no_self_targets(self) -> AnalyticsDocument:
        same = sorted(k for k, v in self.cheaper_targets.items() if k == v)
        if same:
            raise ValueError(f"cheaper_targets: {same[0]!r} names itself as its cheaper target")
        return self


class AnalyticsSettings(BaseModel):
    """What the analytics document says, or its defaults when there is none."""

    model_config = ConfigDict(frozen=True)

    rollup_metadata_keys: tuple[str, ...] = ()
    raw_query_max_days: int = 7
    model_tiers: dict[str, ModelTier] = {}
    cheaper_targets: dict[str, str] = {}
    prompt_cache_share: float = DEFAULT_PROMPT_CACHE_SHARE

    @classmethod
    def from_documents(cls, documents: list[AnalyticsDocument]) -> AnalyticsSettings:
        if not documents:
            return cls()
        if len(documents) > 1:
            names = ", ".join(d.name for d in documents)
            raise ConfigError(f"only one gateway-analytics-config may be in force, not: {names}")
        doc = documents[0]
        return cls(
            rollup_metadata_keys=tuple(dict.fromkeys(doc.rollup_metadata_keys)),
            raw_query_max_days=doc.raw_query_max_days,
            model_tiers=dict(doc.model_tiers),
            cheaper_targets=dict(doc.cheaper_targets),
            prompt_cache_share=doc.prompt_cache_share,
        )
