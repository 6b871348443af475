"""A config document set -> what the gateway serves, and what applying it will do.

    compile_config(snapshot)     the catalog, routing table, policy and alert targets, built
                                 once per version (the composition root swaps them in)
    config_warnings(new, old)    what the set does that its author may not mean; `apply`
                                 and POST /api/config report these, `--strict` refuses them:
        unpriced models          no price in genai-prices and no override: cost null, and
                                 budgets treat them by their `unpriced` setting
        undefined alert targets  a budget notifies a name no notification-targets defines
        unknown providers        a model or routing target names an account nobody defines
        models that disappear    names that resolve today and would not (a providers
                                 document with providers replaces the default catalogue)

`ConfigReview` is the config service's review hook: a dry compile of the proposed set (a
compile error refuses the change, as it would stop the version going live) compared with
a compile of the set it replaces. Nothing here runs per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sluicegate.alerts.targets import NotificationTargetsDocument
from sluicegate.analytics.config import AnalyticsDocument, AnalyticsSettings
from sluicegate.config.live import ConfigSnapshot
from sluicegate.config.parse import Document
from sluicegate.config.problems import Problem
from sluicegate.policy.compiled import CompiledPolicy, compile_policy
from sluicegate.providers.catalog import Catalog, build_catalog
from sluicegate.providers.config import ProvidersDocument
from sluicegate.providers.kinds import PROVIDER_KINDS
from sluicegate.providers.upstream import UpstreamClient
from sluicegate.router.compile import compile_routes
from sluicegate.router.documents import LoadBalancingDocument
from sluicegate.router.routes import CompiledVirtualModel, Target

PROVIDERS = "gateway-providers"
ROUTING = "gateway-load-balancing-config"
_SHOWN = 12  # names listed in one warning before "and N more"


@dataclass(frozen=True)
class CompiledConfig:
    catalog: Catalog
    routes: Mapping[str, CompiledVirtualModel]
    policy: CompiledPolicy
    targets: list[NotificationTargetsDocument]
    providers_docs: list[ProvidersDocument]  # as applied, for naming where a model is set
    analytics: AnalyticsSettings

    def model_names(self) -> set[str]:
        """Every name a client may ask for: catalog models, aliases, virtual models."""
        return {*self.catalog.models, *self.catalog.aliases, *self.routes}


def compile_config(
    snapshot: ConfigSnapshot,
    upstream: UpstreamClient,
    *,
    emulator_url: str | None,
    header_prefixes: Sequence[str],
) -> CompiledConfig:
    """Raises ConfigError (or a pydantic/ValueError from a compiler) on a set that cannot
    be served."""
    providers_docs = snapshot.models_of(PROVIDERS, ProvidersDocument)
    catalog = build_catalog(providers_docs, upstream, emulator_url=emulator_url)
    routes = compile_routes(
        snapshot.models_of(ROUTING, LoadBalancingDocument), header_prefixes=header_prefixes
    )
    policy = compile_policy(
        [
            *snapshot.models("gateway-rate-limit-config"),
            *snapshot.models("gateway-rate-limiting-config"),
            *snapshot.models("gateway-budget-config"),
            *snapshot.models("gateway-notification-targets"),
        ],
        aliases=catalog.aliases,
        header_prefixes=header_prefixes,
        rate_of=catalog.rate_of,
    )
    targets = snapshot.models_of("gateway-notification-targets", NotificationTargetsDocument)
    analytics = AnalyticsSettings.from_documents(
        snapshot.models_of("gateway-analytics-config", AnalyticsDocument)
    )
    return CompiledConfig(catalog, routes, policy, targets, providers_docs, analytics)


def config_warnings(new: CompiledConfig, old: CompiledConfig | None = None) -> list[Problem]:
    """Every warning about `new`; models that disappear only when `old` is given."""
    return [
        *_unknown_providers(new),
        *_unpriced_models(new),
        *new.policy.warnings,
        *(_disappearing(new, old) if old is not None else []),
    ]


class ConfigReview:
    """The config service's review hook (see `ConfigService`): (proposed documents, the
    documents they replace) -> warnings. A compile error in the proposed set propagates."""

    def __init__(self, compile: Callable[[ConfigSnapshot], CompiledConfig]):
        self._compile = compile

    def __call__(self, proposed: Sequence[Document], current: Sequence[Document]) -> list[Problem]:
        new = self._compile(ConfigSnapshot.build(0, proposed, loaded_at=0.0))
        try:
            old: CompiledConfig | None = self._compile(
                ConfigSnapshot.build(0, current, loaded_at=0.0)
            )
        except Exception:  # the set in place no longer compiles: nothing to compare with
            old = None
        return config_warnings(new, old)


# --- the warnings -----------------------------------------------------------------------
def _defined_in(config: CompiledConfig, model: str) -> str:
    """The providers document that sets a catalog model (the last one to name it)."""
    named = [doc.name for doc in config.providers_docs if model in doc.models]
    return named[-1] if named else "default-catalogue"


def _vm_targets(vm: CompiledVirtualModel) -> list[Target]:
    seen: dict[tuple[str, str], Target] = {}
    for route in vm.routes:
        for target in (*route.rules, *route.fallbacks):
            seen.setdefault((target.provider, target.model), target)
    return list(seen.values())


def _unknown_provider_text(name: str, catalog: Catalog) -> str:
    known = ", ".join(sorted(catalog.providers)) or "none"
    kinds = ", ".join(sorted(PROVIDER_KINDS))
    return (
        f"provider {name!r} is not defined by any gateway-providers document (accounts: "
        f"{known}; provider kinds this gateway can call: {kinds}); requests routed to it fail"
    )


def _unknown_providers(config: CompiledConfig) -> Iterable[Problem]:
    catalog = config.catalog
    for name, route in sorted(catalog.models.items()):
        if route.provider not in catalog.providers:
            yield Problem(
                _defined_in(config, name),
                PROVIDERS,
                f"models.{name}.provider",
                f"model {name!r}: " + _unknown_provider_text(route.provider, catalog),
            )
    for vm in config.routes.values():
        for target in _vm_targets(vm):
            if target.provider not in catalog.providers:
                yield Problem(
                    vm.name,
                    ROUTING,
                    "",
                    f"target '{target.provider}/{target.model}': "
                    + _unknown_provider_text(target.provider, catalog),
                )


def _unpriced_text(what: str) -> str:
    return (
        f"{what} has no price (not in genai-prices, no `price:` override): its requests are "
        "recorded with cost null, and hard budgets refuse them unless they set "
        "`unpriced: allow` or `unpriced: {price_as: MODEL}`"
    )


def _unpriced_models(config: CompiledConfig) -> Iterable[Problem]:
    catalog = config.catalog
    for name, route in sorted(catalog.models.items()):
        known = route.provider in catalog.providers
        if known and catalog.rate(route.provider, route.upstream_model, name) is None:
            yield Problem(
                _defined_in(config, name),
                PROVIDERS,
                f"models.{name}",
                _unpriced_text(f"model {name!r} ({route.provider}/{route.upstream_model})"),
            )
    for vm in config.routes.values():
        for target in _vm_targets(vm):
            known = target.provider in catalog.providers
            if known and catalog.rate(target.provider, target.model) is None:
                what = f"target '{target.provider}/{target.model}'"
                yield Problem(vm.name, ROUTING, "", _unpriced_text(what))


def _disappearing(new: CompiledConfig, old: CompiledConfig) -> Iterable[Problem]:
    gone = sorted(old.model_names() - new.model_names())
    if not gone:
        return
    shown = ", ".join(gone[:_SHOWN]) + (f" and {len(gone) - _SHOWN} more" if gone[_SHOWN:] else "")
    replacing = [doc.name for doc in new.providers_docs if doc.providers]
    if replacing and not any(doc.providers for doc in old.providers_docs):
        why = (
            f"; {PROVIDERS} {replacing[0]!r} defines providers, so it replaces the default "
            "catalogue: list the models you still want under its `models`"
        )
        document, type_name = replacing[0], PROVIDERS
    else:
        why, document, type_name = "", "config", None
    yield Problem(
        document,
        type_name,
        "",
        f"{len(gone)} model name{'s' if len(gone) != 1 else ''} would stop resolving "
        f"(requests naming them get 404): {shown}{why}",
    )
