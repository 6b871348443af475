"""The control room's panels: one module each, registered here by name (the name is the
API path `/api/analytics/NAME` and the CLI's `sluicegate report NAME`). A new panel is a
module with a `PANEL` implementing `base.Panel`, and one line in `PANELS`."""

from __future__ import annotations

from sluicegate.analytics.panels import (
    adoption,
    burn_rate,
    latency,
    leverage,
    outcomes,
    premium_review,
    tags,
)
from sluicegate.analytics.panels.base import Panel

PANELS: dict[str, Panel] = {
    panel.name: panel
    for panel in (
        latency.PANEL,
        tags.PANEL,
        adoption.PANEL,
        burn_rate.PANEL,
        premium_review.PANEL,
        outcomes.PANEL,
        leverage.PANEL,
    )
}
