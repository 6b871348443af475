"""The `gateway-providers` document: provider accounts, the model catalog, aliases and
price overrides."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from sluicegate.errors import ConfigError
from sluicegate.providers.kinds import provider_kind


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PriceOverrideSpec(_Strict):
    input_mtok: float = Field(ge=0)
    output_mtok: float = Field(ge=0)
    cache_read_mtok: float | None = Field(default=None, ge=0)
    cache_write_mtok: float | None = Field(default=None, ge=0)


class ProviderAccount(_Strict):
    name: str = Field(min_length=1)
    kind: str  # a name in `sluicegate.providers.kinds.PROVIDER_KINDS`
    base_url: str
    api_key_env: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_ms: int = Field(default=60_000, gt=0)
    # Azure OpenAI deployment URLs need `?api-version=...` on every call.
    query: dict[str, str] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        try:
            provider_kind(value)
        except ConfigError as exc:
            raise ValueError(exc.message) from None
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")


class ModelEntry(_Strict):
    provider: str
    model: str | None = None  # upstream name when it differs from the client-facing name
    price: PriceOverrideSpec | None = None


class ProvidersDocument(_Strict):
    name: str
    type: Literal["gateway-providers"]
    providers: list[ProviderAccount] = Field(default_factory=list)
    models: dict[str, ModelEntry] = Field(default_factory=dict)
    aliases: dict[str, str] = Field(default_factory=dict)
    prices: dict[str, PriceOverrideSpec] = Field(default_factory=dict)

    @field_validator("models")
    @classmethod
    def _known_providers(
        cls, models: dict[str, ModelEntry], info: ValidationInfo
    ) -> dict[str, ModelEntry]:
        names = {p.name for p in info.data.get("providers", [])}
        for model, entry in models.items():
            if names and entry.provider not in names:
                raise ValueError(
                    f"model {model!r} names provider {entry.provider!r}, which is not in "
                    f"providers ({', '.join(sorted(names))})"
                )
        return models
