"""Cuboids: narrower aggregates of `rollup_usage` that keep every usage figure over a few
of its dimensions (aggregate navigation, as OLAP engines do it).

`rollup_usage` is keyed by twelve dimensions, so a day holds thousands of its wide rows
(~1,850 at 2M requests over 90 days); most panel queries group and filter by two or
three. A cuboid sums the same records over fewer dimensions: a handful of rows a day.
All cuboids live in one table, `rollup_cuboids` (column `cuboid` names one; the
dimensions it does not keep are ""). They are kept by the ledger writer's own path
(`rollups.bucket_deltas` projects each batch's usage hour rows onto every cuboid) and
rebuilt with the other rollups, so their figures are those of `rollup_usage`, exactly.

A query reads the first cuboid in `CUBOIDS` that holds every dimension it groups or
filters by (`sources.choose`): list them smallest first. Adding one is a line here
(rows for the past come from `sluicegate ledger rebuild-rollups`; until then a new
cuboid would answer with nothing for the past, so add one together with a migration
that derives its rows, as 0013 does).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sluicegate.db.schema import USAGE_DIMENSIONS

NONE = ""


@dataclass(frozen=True, slots=True)
class Cuboid:
    name: str
    dimensions: frozenset[str]  # the rollup_usage dimensions it keeps
    keeps: tuple[bool, ...]  # per USAGE_DIMENSIONS entry: kept

    def holds(self, dimensions: Collection[str]) -> bool:
        return all(d in self.dimensions for d in dimensions)

    def project(self, values: tuple[str, ...]) -> tuple[str, ...]:
        """A rollup_usage row's dimension values (USAGE_DIMENSIONS order) as this
        cuboid's: (name, the values it keeps, "" for the others)."""
        return (self.name, *[v if keep else NONE for v, keep in zip(values, self.keeps)])


def cuboid(name: str, *dimensions: str) -> Cuboid:
    unknown = [d for d in dimensions if d not in USAGE_DIMENSIONS]
    if unknown:
        raise ValueError(f"cuboid {name}: {unknown} are not rollup_usage dimensions")
    return Cuboid(name, frozenset(dimensions), tuple(d in dimensions for d in USAGE_DIMENSIONS))


# Smallest first: the first that holds a query's dimensions answers it.
CUBOIDS: tuple[Cuboid, ...] = (
    # the latency panel's control cells (totals, breakdowns, provider checks) and every
    # unfiltered total or series: a few dozen rows an hour (0020)
    cuboid("status", "provider", "status_class", "error_type"),
    # the latency panel's groups by provider and model (its default), by team and model,
    # and either filtered by team (0020)
    cuboid("model", "team", "provider", "model"),
    # adoption's friction figures, latency by client tool
    cuboid("tool", "team", "client_tool", "status_class"),
    # the latency panel (the control layer): by provider and model, status and error
    cuboid("control", "team", "provider", "model", "status_class", "error_type"),
    # spend: burn rate, tags' totals
    cuboid("spend", "team", "project", "workflow_tag", "model"),
    # the premium-model review: which workflows reach which models, through which alias
    # and provider (0023; it read rollup_usage's thousands of rows a day before)
    cuboid("premium", "team", "workflow_tag", "requested_model", "model", "provider"),
)
