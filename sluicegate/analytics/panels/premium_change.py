"""The `gateway-load-balancing-config` document that moves reviewed traffic to a cheaper
target: what premium-review hands to `sluicegate apply -f FILE --what-if 7d`.

A client asked for a model name (a virtual model, or a catalogue model); the document is
that name's virtual model with one route per reviewed group in front, matching the
group's values (`when: {metadata: {workflow_tag: review}}`) and sending it to the target:

    the name is a virtual model   its document as applied, its routes kept after the new
                                  ones (a one-rule-set document becomes a `default` route)
    the name is a catalogue model a new virtual model of that name whose `default` route
                                  is the account and model that serve it today, so other
                                  traffic is served as before

Every document is built as a dict and validated with the config's own model
(`LoadBalancingDocument`) before it is shown, so it is one `sluicegate apply` accepts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from sluicegate.analytics.dimensions import AnyDimension, Dimension, MetadataDimension
from sluicegate.config.live import ConfigSnapshot
from sluicegate.identity.envelope import envelope_field
from sluicegate.providers.catalog import Catalog
from sluicegate.router.documents import LoadBalancingDocument

ROUTING = "gateway-load-balancing-config"
ROUTE_PREFIX = "premium-review"
DEFAULT_ROUTE = "default"


@dataclass(frozen=True, slots=True)
class Move:
    """One group's traffic on a model name, to a target account and upstream model."""

    when: dict[str, str]  # condition name -> value
    provider: str
    model: str
    label: str  # the group, for the route's id


@dataclass(frozen=True, slots=True)
class Change:
    virtual_model: str
    existing: bool  # the name already has a load-balancing document
    yaml: str


def condition_name(dim: AnyDimension) -> str | None:
    """How a route's `when` names a grouped dimension; None when routes cannot match on it
    (the model, the status...)."""
    if isinstance(dim, MetadataDimension):
        return None if envelope_field(dim.key) is not None else dim.key
    if isinstance(dim, Dimension) and envelope_field(dim.name) == dim.name:
        return dim.name
    return None


def change_for(
    name: str,
    moves: Sequence[Move],
    config: ConfigSnapshot,
    served_by: tuple[str, str],
) -> Change:
    """The document routing `moves` of model name `name` (aliases resolved), which is
    served today by `served_by` (account, upstream model) when it is not a virtual
    model. Raises ValueError if the result would not validate (a bug: never shown)."""
    existing = _document(config, name)
    if existing is None:
        default = {"id": DEFAULT_ROUTE, "rules": [_rule(*served_by)]}
        data: dict[str, Any] = {
            "name": name,
            "type": ROUTING,
            "description": f"{ROUTE_PREFIX}: moves reviewed traffic off {served_by[1]}",
            "routes": [*_routes(moves, set()), default],
        }
    else:
        data = existing.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        if existing.rules is not None:
            kept = [{"id": DEFAULT_ROUTE, "rules": data.pop("rules")}]
        else:
            kept = data.pop("routes")
        taken = {str(route["id"]) for route in kept}
        data["routes"] = [*_routes(moves, taken), *kept]
    LoadBalancingDocument.model_validate(data)
    return Change(name, existing is not None, yaml.safe_dump(data, sort_keys=False))


def serving(
    config: ConfigSnapshot, catalog: Catalog, name: str, model: str
) -> tuple[str, str] | None:
    """(account, upstream model) by which model name `name` sends traffic to `model` as
    configured today: a rule of its virtual model, or the catalogue's route; None when it
    does not (the traffic reached `model` another way, by a fallback or an older config,
    and routing `name` would move other traffic)."""
    doc = _document(config, name)
    if doc is not None:
        rules = [*(doc.rules or []), *(r for route in doc.routes or [] for r in route.rules)]
        found = [rule.upstream() for rule in rules if rule.upstream()[1] == model]
        return found[0] if found else None
    route = catalog.model(name)
    if route is None or route.upstream_model != model:
        return None
    return route.provider, route.upstream_model


def _document(config: ConfigSnapshot, name: str) -> LoadBalancingDocument | None:
    found = [doc for doc in config.models_of(ROUTING, LoadBalancingDocument) if doc.name == name]
    return found[-1] if found else None


def _routes(moves: Sequence[Move], taken: set[str]) -> list[dict[str, Any]]:
    routes = []
    for move in moves:
        route_id = _unique(f"{ROUTE_PREFIX}-{_slug(move.label)}", taken)
        taken.add(route_id)
        routes.append(
            {
                "id": route_id,
                "when": {"metadata": dict(move.when)},
                "rules": [_rule(move.provider, move.model)],
            }
        )
    return routes


def _rule(provider: str, model: str) -> dict[str, Any]:
    return {"target": {"provider": provider, "model": model}}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:64] or "group"


def _unique(wanted: str, taken: set[str]) -> str:
    found, n = wanted, 2
    while found in taken:
        found, n = f"{wanted}-{n}", n + 1
    return found


def when_of(dims: Sequence[AnyDimension], values: Sequence[str]) -> dict[str, str] | None:
    """The `when.metadata` matching a group's values; None when some dimension cannot be
    matched by a route, or has no value (a route cannot match a missing value)."""
    when: dict[str, str] = {}
    for dim, value in zip(dims, values, strict=True):
        name = condition_name(dim)
        missing = dim.missing if isinstance(dim, Dimension) else ""
        if name is None or value in ("", missing):
            return None
        when[name] = value
    return when
