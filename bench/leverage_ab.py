"""The leverage panel before and after its scoring moved into SQL, side by side in one run,
interleaved, in process (issue 12; the style of `bench/panel_ab.py`).

"after" is the panel as it runs: sessions scored in SQL and handed back per workflow and
score (`analytics/leverage_sql.py`), loop baselines cached per window start. "before" is
one of:

    python     every session read into Python and scored there, the baselines read on
               every answer: what the panel did until then (its tally, kept here)
    uncached   scored in SQL, the baselines read on every answer: the cache's share

Each pair of answers is checked equal (every figure, note and action).

    .venv/bin/python bench/leverage_ab.py --url sqlite:////work/bench2m-X/sqlite.db \\
        --url postgresql+asyncpg://postgres@127.0.0.1/sluicegate_bench2m_X --repeats 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.panel_ab import Compared, _pair, report
from bench.panels import COMMON_SHAPES, SETTINGS
from sluicegate.analytics import loop_baseline
from sluicegate.analytics.leverage_score import leverage_score
from sluicegate.analytics.leverage_sessions import Tally, score_inputs, session_rate
from sluicegate.analytics.loop_baseline import Baseline, is_loop
from sluicegate.analytics.panels import leverage
from sluicegate.analytics.panels.base import PanelContext
from sluicegate.analytics.reader import AnalyticsReader
from sluicegate.analytics.session_sql import SessionSelection, session_statement
from sluicegate.config.live import ConfigSnapshot
from sluicegate.db.engine import create_engine_for

SHAPES = (*COMMON_SHAPES, ("90d", {"since": "90d"}))
MODES = ("python", "uncached")


async def _uncached(reader: AnalyticsReader, selection: SessionSelection) -> dict[str, Baseline]:
    return await loop_baseline.read_baselines(reader, selection)


async def _scored_in_python(
    reader: AnalyticsReader, selection: SessionSelection, known: dict[str, Baseline]
) -> tuple[dict[str, Tally], float | None]:
    """The panel's tally as it was: the newest sessions read whole, each scored here."""
    stmt = session_statement(selection, reader.dialect, limit=leverage.MAX_SCORED)
    rows = await reader.run(stmt)
    tallies: dict[str, Tally] = defaultdict(Tally)
    for row in rows:
        workflow = row["workflow_tag"] or ""
        _add(tallies[workflow], row, known.get(workflow))
    return tallies, min((float(r["last_ts"]) for r in rows), default=None)


def _add(tally: Tally, row: Mapping[str, Any], baseline: Baseline | None) -> None:
    """`Tally.add` as it was (one session scored in Python and counted in)."""
    loop = is_loop(session_rate(row), baseline)
    rated = int(row["rated"])
    inputs = score_inputs(row, float(row["pass_rate_sum"]) / rated if rated else None, loop)
    score = leverage_score(inputs)
    tally.scores.append(score.score)
    sums = tally.sums
    outcomes = int(row["outcomes"])
    sums["traced"] += outcomes > 0
    sums["loops"] += bool(loop)
    sums["unchecked"] += loop is None
    sums["outcomes"] += outcomes
    sums["cost"] += inputs.cost_usd
    sums["tokens"] += int(row["input_tokens"]) + int(row["output_tokens"])
    sums["retry"] += inputs.retry_tokens
    sums["rate_limit"] += inputs.rate_limit_hits
    sums["budget"] += inputs.budget_hits
    sums["guardrail"] += inputs.guardrail_blocks
    sums["unused"] += inputs.unused_context_ratio
    sums["points"] += score.outcome_points
    sums["governance"] += score.governance_penalty
    sums["waste"] += score.waste_penalty


def before_side(mode: str) -> Any:
    @contextmanager
    def side() -> Iterator[None]:
        kept = leverage.baselines, leverage.scored
        leverage.baselines = _uncached  # type: ignore[assignment]
        if mode == "python":
            leverage.scored = _scored_in_python
        try:
            yield
        finally:
            leverage.baselines, leverage.scored = kept

    return side


async def run(urls: list[str], modes: list[str], repeats: int) -> list[tuple[str, Compared]]:
    out = []
    for url in urls:
        kind = url.split(":", 1)[0].split("+", 1)[0]
        engine = create_engine_for(url)
        snapshot = ConfigSnapshot.build(0, [], loaded_at=time.time())
        context = PanelContext(AnalyticsReader(engine), SETTINGS, snapshot)
        try:
            for mode in modes:
                side = before_side(mode)
                for label, params in SHAPES:
                    compared = await _pair(
                        context, kind, "leverage", label, params, lambda _: side(), repeats, False
                    )
                    out.append((mode, compared))
        finally:
            await engine.dispose()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", action="append", required=True, help="a bench database")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(modes) - set(MODES) or args.repeats < 1:
        parser.error(f"--modes: of {', '.join(MODES)}; --repeats >= 1")
    results = asyncio.run(run(args.url, modes, args.repeats))
    for mode in modes:
        picked = [c for m, c in results if m == mode]
        lines = report(picked, mode).splitlines()
        lines[0] = f"before = {mode}, after = as it runs; in process:"
        print("\n".join(lines))
        print()
    return 0 if all(c.same for _, c in results) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
