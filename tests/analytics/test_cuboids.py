"""The cuboid registry: what a cuboid keeps, and that a bad definition is refused."""

from __future__ import annotations

import pytest

from sluicegate.analytics.cuboids import CUBOIDS, cuboid
from sluicegate.db.schema import CUBOID_DIMENSIONS, USAGE_DIMENSIONS


def test_a_cuboid_keeps_its_dimensions_and_blanks_the_others_in_column_order() -> None:
    control = cuboid("control", "provider", "status_class")
    row = tuple(f"v-{name}" for name in USAGE_DIMENSIONS)
    projected = control.project(row)
    assert len(projected) == len(CUBOID_DIMENSIONS)  # the table's dimension columns
    named = dict(zip(CUBOID_DIMENSIONS, projected, strict=True))
    assert named.pop("cuboid") == "control"
    assert named.pop("provider") == "v-provider" and named.pop("status_class") == "v-status_class"
    assert set(named.values()) == {""}
    assert control.holds(["provider"]) and not control.holds(["provider", "team"])


def test_a_cuboid_of_a_dimension_rollup_usage_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="user_id"):
        cuboid("people", "team", "user_id")


def test_cuboid_names_are_distinct() -> None:
    names = [c.name for c in CUBOIDS]
    assert len(set(names)) == len(names)
