"""Every control-room panel's API timed over a large realistic ledger, on SQLite and PostgreSQL.

    .venv/bin/python bench/panels.py                       # 10,000,000 rows, both databases
    .venv/bin/python bench/panels.py --rows 1000000 --databases sqlite

1. A ledger of `--rows` records over `--days` days ending now (bench/panel_ledger.py:
   teams, projects incl. UNTAGGED, workflows, client tools, agent-like sessions, users,
   models across providers and tiers, errors, a long tail of customer_id and feature
   values, outcomes for some sessions) is loaded into each database by bench/panel_load.py:
   `--workers` processes draw days and write their requests in bulk (COPY on PostgreSQL,
   executemany on SQLite, the rows the ledger store builds), and the rollups are the
   gateway's own (`rollup_deltas` over each day in the workers, merged, written with the
   store's upserts), so the bench measures what users get.
   Generated once per size and seed: the SQLite file and a marker live in `--cache-dir`
   (bench/.cache, git-ignored); the PostgreSQL database (`--pg-database`) is kept for the
   next run unless `--drop-postgres`.
2. A real `sluicegate serve` on each database (the analytics config rolls up customer_id
   and feature), and every panel in the registry (`PANELS`) asked each query shape
   `--repeats` times over HTTP: a table of p50/p95/max per panel and query per database.
   The target is p95 <= 300 ms; misses are marked. `--panels` times some panels only.
3. With `--before-after TABLE` (a rollup table, e.g. rollup_tool_users): each panel timed
   again in this process with and without that table among those the reader picks from,
   interleaved, with the ratio and whether the answers are equal (bench/panel_ab.py).
   `--before-after code:CHECKOUT` compares the panel modules of that checkout instead.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.panel_ab import Compared, compare  # noqa: E402
from bench.panel_ab import report as ab_report  # noqa: E402
from bench.panel_load import LoadPlan, load  # noqa: E402
from sluicegate.analytics.config import AnalyticsSettings  # noqa: E402
from sluicegate.analytics.panels import PANELS  # noqa: E402
from sluicegate.db.engine import create_engine_for  # noqa: E402
from tests.support import POSTGRES_ADMIN_URL, ServerProcess, free_port  # noqa: E402

ADMIN_KEY = "bench-panels-admin-key-0123456789"
METADATA_KEYS = ("customer_id", "feature")
ANALYTICS_CONFIG = f"""name: analytics
type: gateway-analytics-config
rollup_metadata_keys: [{", ".join(METADATA_KEYS)}]
raw_query_max_days: 7
"""
SETTINGS = AnalyticsSettings(rollup_metadata_keys=METADATA_KEYS, raw_query_max_days=7)
TARGET_P95_MS = 300.0
# Query shapes every panel is asked, then each panel's own (a panel merged later without
# an entry here is asked the common ones).
COMMON_SHAPES: tuple[tuple[str, dict[str, str]], ...] = (
    ("default (7d)", {}),
    ("30d", {"since": "30d"}),
    ("team filter", {"team": "search"}),
)
PANEL_SHAPES: dict[str, tuple[tuple[str, dict[str, str]], ...]] = {
    "adoption": (("90d", {"since": "90d"}),),
    "latency": (
        ("by team,model", {"group_by": "team,model"}),
        ("by client_tool 30d", {"since": "30d", "group_by": "client_tool"}),
        ("by status_class,error_type", {"group_by": "status_class,error_type"}),
        ("feature filter 24h (raw)", {"since": "24h", "metadata.feature": "feature-01"}),
    ),
    "tags": (
        ("by customer_id 30d", {"since": "30d", "group_by": "metadata.customer_id"}),
        ("by feature", {"group_by": "metadata.feature"}),
        ("by project,workflow_tag", {"group_by": "project,workflow_tag"}),
        ("customer filter by model", {"metadata.customer_id": "cust-0000", "group_by": "model"}),
        ("by ticket 24h (raw)", {"since": "24h", "group_by": "metadata.ticket"}),
    ),
}


@dataclass
class Generated:
    """What the cache marker records about one generated database."""

    kind: str
    url: str
    rows: int
    seed: int
    days: int
    end: float
    seconds: float
    size_bytes: int = 0


@dataclass
class Timing:
    database: str
    panel: str
    query: str
    status: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    error: str = ""


# -- generation -----------------------------------------------------------------------------


async def generate(targets: dict[str, str], args: argparse.Namespace) -> float:
    """Writes the same ledger into every target database (bench/panel_load.py: `--workers`
    processes draw and bulk-write days, the rollups merged and upserted by the gateway's
    code); returns the seconds it took."""
    end = float(int(time.time()) // 3600 * 3600)
    plan = LoadPlan(args.rows, args.days, end, args.seed, METADATA_KEYS, workers=args.workers)
    return await load(targets, plan)


async def database_size(url: str) -> int:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return Path(parsed.database or "").stat().st_size
    engine = create_engine_for(url)
    try:
        async with engine.connect() as conn:
            size = await conn.execute(text("SELECT pg_database_size(current_database())"))
            return int(size.scalar_one())
    finally:
        await engine.dispose()


async def _postgres_admin(statement: str, admin_url: str) -> None:
    engine = create_engine_for(admin_url)
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def _marker(cache: Path, kind: str, args: argparse.Namespace) -> Path:
    name = "sqlite" if kind == "sqlite" else f"postgresql-{args.pg_database}"
    return cache / f"{name}.json"


def _cached(marker: Path, args: argparse.Namespace) -> Generated | None:
    if args.regenerate or not marker.exists():
        return None
    info = Generated(**orjson.loads(marker.read_bytes()))
    if (info.rows, info.seed, info.days) != (args.rows, args.seed, args.days):
        return None
    if info.kind == "sqlite" and not Path(make_url(info.url).database or "").exists():
        return None
    return info


async def prepare(args: argparse.Namespace) -> list[Generated]:
    """The databases to time: cached ones as they are, the others generated (together)."""
    cache: Path = args.cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    ready: list[Generated] = []
    todo: dict[str, str] = {}
    for kind in args.databases:
        marker = _marker(cache, kind, args)
        info = _cached(marker, args)
        if info is not None:
            print(f"{kind}: reusing the cached {info.rows:,}-row database", file=sys.stderr)
            ready.append(info)
            continue
        marker.unlink(missing_ok=True)
        if kind == "sqlite":
            path = cache / "sqlite.db"
            for stale in cache.glob("sqlite.db*"):
                stale.unlink()
            todo[kind] = f"sqlite:///{path}"
        else:
            name = args.pg_database
            await _postgres_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", args.pg_admin)
            await _postgres_admin(f"CREATE DATABASE {name}", args.pg_admin)
            todo[kind] = args.pg_admin.rsplit("/", 1)[0] + "/" + name
    if todo:
        print(f"generating {args.rows:,} rows into {', '.join(todo)}", file=sys.stderr)
        seconds = await generate(todo, args)
        end = float(int(time.time()) // 3600 * 3600)
        for kind, url in todo.items():
            info = Generated(kind, url, args.rows, args.seed, args.days, end, round(seconds, 1))
            info.size_bytes = await database_size(url)
            _marker(cache, kind, args).write_bytes(orjson.dumps(asdict(info)))
            ready.append(info)
    return ready


# -- timing ---------------------------------------------------------------------------------


def shapes_of(panel: str) -> tuple[tuple[str, dict[str, str]], ...]:
    return COMMON_SHAPES + PANEL_SHAPES.get(panel, ())


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest rank: the smallest sample at or above `fraction` of them."""
    ordered = sorted(samples)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def time_panels(
    info: Generated,
    repeats: int,
    workdir: Path,
    panels: Sequence[str] = PANELS,
    tree: Path = ROOT,
    label: str = "",
) -> list[Timing]:
    """Every shape of `panels` timed against a server run from the source `tree` (another
    checkout: its code against the same database, for a before/after in one run)."""
    config = workdir / "analytics.yaml"
    config.write_text(ANALYTICS_CONFIG)
    port = free_port()
    args = [
        sys.executable, "-m", "sluicegate.cli.main", "serve",
        "--port", str(port), "--database-url", info.url,
        "--config", str(config), "--spool-dir", str(workdir / f"spool-{info.kind}"),
    ]  # fmt: skip
    out: list[Timing] = []
    server = ServerProcess(
        args,
        f"http://127.0.0.1:{port}/readyz",
        {"SLUICEGATE_ADMIN_KEY": ADMIN_KEY},
        timeout=120,
        cwd=str(tree),  # `-m` imports the package of the working directory first
    )
    with (
        server,
        httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
            timeout=60,
        ) as client,
    ):
        for panel in panels:
            for shape, params in shapes_of(panel):
                out.append(_time_one(client, info.kind + label, panel, shape, params, repeats))
    return out


def time_before(
    info: Generated, args: argparse.Namespace, workdir: Path, panels: Sequence[str]
) -> list[Timing]:
    """The panels timed by the server of `--before-tree`, the database stamped at that
    tree's newest migration (`--before-revision`) while it runs (its `serve` migrates to
    its own head and knows no later revision; the later tables stay, unread), then put
    back."""
    stamped = asyncio.run(_stamp(info.url, args.before_revision))
    try:
        return time_panels(info, args.repeats, workdir, panels, args.before_tree, " before")
    finally:
        asyncio.run(_stamp(info.url, stamped))


async def _stamp(url: str, revision: str) -> str:
    """Set the database's alembic revision; returns the one it had."""
    engine = create_engine_for(url)
    try:
        async with engine.begin() as conn:
            had = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
            await conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
            return str(had)
    finally:
        await engine.dispose()


def _time_one(
    client: httpx.Client, kind: str, panel: str, label: str, params: dict[str, str], repeats: int
) -> Timing:
    samples: list[float] = []
    response = client.get(f"/api/analytics/{panel}", params=params)  # warm the caches once
    if response.status_code != 200:
        message = response.json().get("error", {}).get("message", response.text[:200])
        return Timing(kind, panel, label, response.status_code, 0, 0, 0, message)
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(f"/api/analytics/{panel}", params=params)
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return Timing(
        kind,
        panel,
        label,
        200,
        round(statistics.median(samples), 1),
        round(percentile(samples, 0.95), 1),
        round(max(samples), 1),
    )


def report(generated: list[Generated], timings: list[Timing]) -> str:
    lines = []
    for info in generated:
        lines.append(
            f"{info.kind}: {info.rows:,} rows over {info.days} days, generated in "
            f"{info.seconds:,.0f} s, {info.size_bytes / 2**30:.2f} GiB"
        )
    lines.append("")
    w = max(len(name) for name in PANELS) + 1  # the panel column fits every name
    header = f"{'database':<18}{'panel':<{w}}{'query':<30}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}"
    lines += [header, "-" * len(header)]
    for t in timings:
        if t.status != 200:
            lines.append(f"{t.database:<18}{t.panel:<{w}}{t.query:<30}  HTTP {t.status}: {t.error}")
            continue
        miss = "  MISS" if t.p95_ms > TARGET_P95_MS else ""
        lines.append(
            f"{t.database:<18}{t.panel:<{w}}{t.query:<30}"
            f"{t.p50_ms:>8.1f}{t.p95_ms:>8.1f}{t.max_ms:>8.1f}{miss}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2, help="processes generating days")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per query")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "bench" / ".cache")
    parser.add_argument("--regenerate", action="store_true", help="ignore the cache")
    parser.add_argument(
        "--pg-admin", default=POSTGRES_ADMIN_URL, help="a database to create ours from"
    )
    parser.add_argument("--pg-database", default="sluicegate_bench")
    parser.add_argument("--drop-postgres", action="store_true", help="drop it after the run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--panels", help="only these panels (comma-separated)")
    parser.add_argument(
        "--before-tree",
        type=Path,
        help="also time the panels with the server run from this checkout (rows 'before')",
    )
    parser.add_argument(
        "--before-revision", default="0014", help="the --before-tree's newest migration"
    )
    parser.add_argument(
        "--before-after",
        metavar="TABLE",
        help="also time each panel with and without this rollup table (or cuboids, e.g. "
        "rollup_cuboids:status,rollup_cuboids:model; or, as code:CHECKOUT, with that "
        "checkout's panel modules), side by side",
    )
    parser.add_argument(
        "--one-at-a-time-before",
        action="store_true",
        help="with --before-after: a panel's reads one after the other on the 'before' side",
    )
    parser.add_argument(
        "--no-serve",
        "--in-process-only",
        dest="no_serve",
        action="store_true",
        help="skip the timing through `sluicegate serve` (with --before-after: the "
        "side-by-side alone)",
    )
    args = parser.parse_args()
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    unknown = set(args.databases) - {"sqlite", "postgresql"}
    if unknown or not args.databases or args.rows < 1 or args.workers < 1:
        parser.error(
            f"--databases: sqlite and/or postgresql, not {sorted(unknown)}; --rows, --workers >= 1"
        )
    panels = [p.strip() for p in args.panels.split(",")] if args.panels else list(PANELS)
    if set(panels) - set(PANELS):
        parser.error(f"--panels: not panels: {sorted(set(panels) - set(PANELS))}")
    generated = asyncio.run(prepare(args))
    timings: list[Timing] = []
    compared: list[Compared] = []
    try:
        with tempfile.TemporaryDirectory(prefix="sluice-bench-panels-") as workdir:
            for info in generated if not args.no_serve else []:
                if args.before_tree:
                    timings += time_before(info, args, Path(workdir), panels)
                timings += time_panels(info, args.repeats, Path(workdir), panels)
        shapes = {panel: shapes_of(panel) for panel in panels}
        for info in generated if args.before_after else []:
            compared += asyncio.run(
                compare(
                    info.kind,
                    info.url,
                    SETTINGS,
                    panels,
                    shapes,
                    args.before_after,
                    args.repeats,
                    one_at_a_time=args.one_at_a_time_before,
                )
            )
    finally:
        if args.drop_postgres and "postgresql" in args.databases:
            drop = f"DROP DATABASE IF EXISTS {args.pg_database} WITH (FORCE)"
            asyncio.run(_postgres_admin(drop, args.pg_admin))
            _marker(args.cache_dir, "postgresql", args).unlink(missing_ok=True)
    print(report(generated, timings))
    if args.before_after:
        print()
        print(ab_report(compared, args.before_after, one_at_a_time=args.one_at_a_time_before))
    if args.json:
        figures = {
            "generated": [asdict(g) for g in generated],
            "timings": [asdict(t) for t in timings],
            "before_after": [asdict(c) for c in compared],
        }
        args.json.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    failed = [t for t in timings if t.status != 200]
    return 1 if failed or any(not c.same for c in compared) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
