"""The adoption panel three ways, interleaved in one process on one bench database:

    main      a checkout's adoption panel (`--before-tree`, e.g. /work/main) with the
              old (grain, bucket) index of rollup_tool_users: the panel as it was
    code      this tree's panel with that old index: the new statements alone
    index     this tree's panel with the covering index of migration 0019: as it runs

"With the old index" is forced, not rebuilt: on SQLite every read of rollup_tool_users
says `INDEXED BY` the old index (created for the run if the database has it no longer,
and dropped after); on PostgreSQL index-only scans are turned off on that side's
connections, so the covering index is read as the old one was, with each row fetched
from the table. Every answer of the three is checked equal (but for `source`).

    .venv/bin/python bench/adoption_ab.py --url sqlite:////work/bench2m-x/sqlite.db \\
        --before-tree /work/main --repeats 10

The database must be at migration 0019 or later (`sluicegate serve` migrates it).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.panel_ab import _ask, _figures, _load_panel, _p95  # noqa: E402
from bench.panels import SETTINGS, shapes_of  # noqa: E402
from sluicegate.analytics.panels import PANELS  # noqa: E402
from sluicegate.analytics.panels.base import PanelContext  # noqa: E402
from sluicegate.analytics.reader import AnalyticsReader  # noqa: E402
from sluicegate.config.live import ConfigSnapshot  # noqa: E402
from sluicegate.db.engine import create_engine_for  # noqa: E402

TABLE = "rollup_tool_users"
OLD_INDEX = "ix_rollup_tool_users_grain_bucket"
SIDES = ("main", "code", "index")


def _old_index_engine(url: str) -> AsyncEngine:
    """An engine whose reads of TABLE go through the old index only."""
    engine = create_engine_for(url)
    if engine.dialect.name == "sqlite":

        def forced(conn: Any, cursor: Any, stmt: str, params: Any, context: Any, many: Any) -> Any:
            return stmt.replace(f"FROM {TABLE} ", f"FROM {TABLE} INDEXED BY {OLD_INDEX} "), params

        event.listen(engine.sync_engine, "before_cursor_execute", forced, retval=True)
    else:

        def no_index_only(dbapi_connection: Any, record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("SET enable_indexonlyscan = off")
            cursor.close()

        event.listen(engine.sync_engine, "connect", no_index_only)
    return engine


async def _with_old_index(engine: AsyncEngine) -> bool:
    """SQLite: the old index there for the run; whether it was made here (to drop)."""
    if engine.dialect.name != "sqlite":
        return False
    async with engine.begin() as conn:
        made = await conn.execute(
            text("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = :n"), {"n": OLD_INDEX}
        )
        if made.first() is not None:
            return False
        await conn.execute(text(f"CREATE INDEX {OLD_INDEX} ON {TABLE} (grain, bucket)"))
        return True


async def run(url: str, before_tree: Path, repeats: int) -> list[dict[str, Any]]:
    new_engine, old_engine = create_engine_for(url), _old_index_engine(url)
    made = await _with_old_index(new_engine)
    snapshot = ConfigSnapshot.build(0, [], loaded_at=time.time())
    contexts = {
        side: PanelContext(AnalyticsReader(e), SETTINGS, snapshot)
        for side, e in (("main", old_engine), ("code", old_engine), ("index", new_engine))
    }
    current, old_panel = (
        PANELS["adoption"],
        _load_panel(before_tree, type(PANELS["adoption"]).__module__),
    )
    out = []
    try:
        for label, params in shapes_of("adoption"):
            now = time.time()  # one window for every side
            times: dict[str, list[float]] = {side: [] for side in SIDES}
            answers: dict[str, Any] = {}
            for i in range(repeats + 1):  # the first round warms each side, untimed
                for side in SIDES:
                    PANELS["adoption"] = old_panel if side == "main" else current
                    started = time.perf_counter()
                    answers[side] = await _ask(contexts[side], "adoption", params, now)
                    if i:
                        times[side].append((time.perf_counter() - started) * 1000)
                PANELS["adoption"] = current
            same = len({repr(_figures(a)) for a in answers.values()}) == 1
            out.append({"query": label, "times": times, "same": same})
    finally:
        PANELS["adoption"] = current
        if made:
            async with new_engine.begin() as conn:
                await conn.execute(text(f"DROP INDEX {OLD_INDEX}"))
        await new_engine.dispose()
        await old_engine.dispose()
    return out


def report(kind: str, rows: Sequence[dict[str, Any]]) -> str:
    header = (
        f"{'database':<11}{'query':<16}"
        + "".join(f"{side + ' p50':>11}{'p95':>8}" for side in SIDES)
        + f"{'main/index':>12}{'code/index':>12}  answers"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        t = row["times"]
        p50 = {side: statistics.median(t[side]) for side in SIDES}
        cells = "".join(f"{p50[s]:>11.1f}{_p95(t[s]):>8.1f}" for s in SIDES)
        ratios = f"{p50['main'] / p50['index']:>11.1f}x{p50['code'] / p50['index']:>11.1f}x"
        lines.append(
            f"{kind:<11}{row['query']:<16}{cells}{ratios}  {'same' if row['same'] else 'DIFFER'}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the bench database (at 0019 or later)")
    parser.add_argument("--before-tree", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    rows = asyncio.run(run(args.url, args.before_tree, args.repeats))
    kind = "sqlite" if args.url.startswith("sqlite") else "postgresql"
    print(report(kind, rows))
    return 0 if all(row["same"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
