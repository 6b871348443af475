"""The latency panel's statements on the rollup each read before and after the cuboids,
side by side in one run, interleaved, over the panel bench's cached ledger.

    .venv/bin/python bench/panel_sources.py [--databases sqlite,postgresql] [--repeats 10]

Needs the ledger of `bench/panels.py` (bench/.cache and the PostgreSQL database
`sluicegate_bench`, migrated to 0013 or later). "before": what the panel ran until 0013,
seven statements over `rollup_usage` day and hour rows (groups, total, series, two
breakdowns, providers, failing providers); "after": its three statements (groups,
control cells, series), each on the smallest rollup that holds it (`sources.choose`).
Prints the median wall time of each side per window and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from sluicegate.analytics.config import AnalyticsSettings  # noqa: E402
from sluicegate.analytics.dimensions import DIMENSIONS as D  # noqa: E402
from sluicegate.analytics.panels import latency  # noqa: E402
from sluicegate.analytics.query import Filter  # noqa: E402
from sluicegate.analytics.reader import Plan, statement  # noqa: E402
from sluicegate.analytics.sources import USAGE_SOURCE, choose  # noqa: E402
from sluicegate.analytics.window import Window, window_from  # noqa: E402
from sluicegate.db.engine import create_engine_for  # noqa: E402

URLS = {
    "sqlite": f"sqlite:///{ROOT / 'bench' / '.cache' / 'sqlite.db'}",
    "postgresql": "postgresql://postgres@127.0.0.1:5432/sluicegate_bench",
}
GROUP = [D["provider"], D["model"]]
PROVIDER, STATUS, ERROR = D["provider"], D["status_class"], D["error_type"]


def before(window: Window, dialect: str) -> list[Any]:
    """The statements the panel ran before: every one on rollup_usage."""
    usage, failing = (
        Plan(USAGE_SOURCE, window),
        Plan(USAGE_SOURCE, window, (Filter(STATUS, "5xx"),)),
    )
    m, lat = latency.MEASURES, ("requests", *latency.LATENCY)
    return [
        statement(usage, m, GROUP, dialect),
        statement(usage, m, (), dialect),
        statement(usage, latency.SERIES_MEASURES, (), dialect, step="day"),
        statement(usage, ("requests",), [STATUS], dialect),
        statement(usage, ("requests",), [ERROR], dialect, without_empty=ERROR),
        statement(usage, lat, [PROVIDER], dialect, without_empty=PROVIDER),
        statement(failing, ("requests",), [PROVIDER], dialect),
    ]


def after(window: Window, dialect: str) -> list[Any]:
    def on(group: list[Any], measures: tuple[str, ...]) -> Plan:
        settings = AnalyticsSettings()
        return Plan(choose(group, [], measures, window=window, settings=settings).source, window)

    cells = list(latency.CONTROL_CELLS)
    return [
        statement(on(GROUP, latency.MEASURES), latency.MEASURES, GROUP, dialect),
        statement(on(cells, latency.MEASURES), latency.MEASURES, cells, dialect),
        statement(
            on([], latency.SERIES_MEASURES), latency.SERIES_MEASURES, (), dialect, step="day"
        ),
    ]


async def timed(conn: Any, statements: list[Any]) -> float:
    started = time.perf_counter()
    for stmt in statements:
        (await conn.execute(stmt)).all()
    return (time.perf_counter() - started) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    with_data = await _ends()
    print(f"{'database':<11}{'window':<8}{'before ms':>10}{'after ms':>10}{'ratio':>8}")
    for name in args.databases.split(","):
        engine = create_engine_for(URLS[name])
        async with engine.connect() as conn:
            for since in ("7d", "30d", "90d"):
                window = window_from(since, None, with_data)
                old, new = before(window, name), after(window, name)
                await timed(conn, old)  # warm both
                await timed(conn, new)
                a, b = [], []
                for _ in range(args.repeats):  # interleaved: the host's load hits both
                    a.append(await timed(conn, old))
                    b.append(await timed(conn, new))
                ma, mb = statistics.median(a), statistics.median(b)
                print(f"{name:<11}{since:<8}{ma:>10.1f}{mb:>10.1f}{ma / mb:>7.1f}x")
        await engine.dispose()


async def _ends() -> float:
    """The end of the cached ledger (it ends when it was generated)."""
    engine = create_engine_for(URLS["sqlite"])
    async with engine.connect() as conn:
        end = (await conn.execute(text("SELECT max(bucket) FROM rollup_usage"))).scalar()
    await engine.dispose()
    return float(end) + 3600.0


if __name__ == "__main__":
    asyncio.run(main())
