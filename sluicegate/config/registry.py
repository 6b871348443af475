"""Document type -> pydantic model, imported lazily by a table of dotted names (uvicorn's
protocol table), so that a module defining one document type is only imported when a
document of that type is seen, and a broken or missing module names itself clearly."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from pydantic import BaseModel

from sluicegate.errors import ConfigError

ModelRef = str | type[BaseModel]

DEFAULT_TYPES: Mapping[str, str] = {
    "gateway-providers": "sluicegate.providers.config:ProvidersDocument",
    "gateway-rate-limit-config": "sluicegate.policy.documents:RateLimitDocument",
    "gateway-rate-limiting-config": "sluicegate.policy.documents:QuotaDocument",
    "gateway-budget-config": "sluicegate.policy.documents:BudgetDocument",
    "gateway-notification-targets": "sluicegate.alerts.targets:NotificationTargetsDocument",
    "gateway-load-balancing-config": "sluicegate.router.documents:LoadBalancingDocument",
    "gateway-analytics-config": "sluicegate.analytics.config:AnalyticsDocument",
}


class DocumentRegistry:
    """Maps a document `type` to its model. Entries are `"package.module:ClassName"` or a
    model class itself (handy in tests)."""

    def __init__(self, types: Mapping[str, ModelRef] = DEFAULT_TYPES):
        for type_name, ref in types.items():
            if isinstance(ref, str) and ref.count(":") != 1:
                raise ConfigError(
                    f"document type {type_name!r}: {ref!r} is not 'package.module:ClassName'"
                )
        self._types = dict(types)
        self._loaded: dict[str, type[BaseModel]] = {}

    @property
    def known_types(self) -> list[str]:
        return sorted(self._types)

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._types

    def model_for(self, type_name: str) -> type[BaseModel]:
        """The model for `type_name`; ConfigError if the type is unknown or its module
        cannot be imported."""
        model = self._loaded.get(type_name)
        if model is None:
            model = self._load(type_name)
            self._loaded[type_name] = model
        return model

    def _load(self, type_name: str) -> type[BaseModel]:
        ref = self._types.get(type_name)
        if ref is None:
            raise ConfigError(
                f"unknown document type {type_name!r}; known types: {', '.join(self.known_types)}",
                param="type",
            )
        model = _import(ref) if isinstance(ref, str) else ref
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise ConfigError(f"document type {type_name!r}: {ref!r} is not a pydantic model")
        return model


def _import(ref: str) -> object:
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or a bug in that module: name it either way
        raise ConfigError(f"cannot import {module_name!r} for {ref!r}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise ConfigError(f"module {module_name!r} has no attribute {attr!r}") from exc
