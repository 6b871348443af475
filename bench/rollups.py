"""Rollup maintenance and rebuild, measured on a ledger of realistic shape.

    .venv/bin/python bench/rollups.py [--rows 100000] [--backends sqlite,postgres]

Generates `--rows` ledger records over `--days` (30; 20 teams, 40 projects and UNTAGGED, 15
workflows, 8 tools, 8 models on 3 providers, 300 users, sessions of ~20 requests, a
`customer_id` metadata key with a long tail of 2,000 values, 5% errors), writes them
through the ledger store in batches of 500 in arrival order, as the gateway's writer does
(rollups kept, `--metadata-keys` rolled up), then runs `rebuild-rollups` over the result
(which rolls up the keys of the config in force: none here). Prints the write cost per
record (wall and this process's CPU) and the rebuild's rate. PostgreSQL is the
shared server on loopback (a database of its own, dropped after).

`--before-after`: the writes only (no rebuild), in pairs on fresh databases, alternately
without the `rollup_tool_users` rows (the writer before migration 0015: their deltas are
neither computed nor written; `--without latency_cuboids`: the `status` and `model`
cuboids', before 0020) and with them; `--rounds` pairs, the median of each side.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from sluicegate.analytics import rollups  # noqa: E402
from sluicegate.analytics.rebuild import RollupRebuild  # noqa: E402
from sluicegate.db.engine import create_engine_for  # noqa: E402
from sluicegate.db.migrate import upgrade_engine  # noqa: E402
from sluicegate.ledger.sql_store import SqlLedgerStore  # noqa: E402
from sluicegate.model.record import LedgerRecord  # noqa: E402
from tests.support import POSTGRES_ADMIN_URL  # noqa: E402

DAYS = 30
MODELS = [("openai", m) for m in ("gpt-4o", "gpt-4o-mini", "o4-mini")] + [
    ("anthropic", m) for m in ("claude-opus-4-7", "claude-sonnet-4-6", "claude-haiku-4-5")
] + [("bedrock", m) for m in ("llama-3-70b", "mistral-large")]  # fmt: skip
TOOLS = ("cursor", "claude-code", "codex", "github-copilot", "openai-python", "langchain",
         "aider", None)  # fmt: skip


def ledger(rows: int, days: int = DAYS, seed: int = 1) -> list[LedgerRecord]:
    rng = random.Random(seed)
    start = time.time() - days * 86400
    customers = [f"cust-{i:04d}" for i in range(2000)]
    weights = [1 / (i + 1) for i in range(len(customers))]  # a long tail
    picked = rng.choices(customers, weights, k=rows)
    out = []
    for i in range(rows):
        session = i // 20
        srng = random.Random(session)  # a session keeps its identity
        ok = rng.random() > 0.05
        provider, model = rng.choice(MODELS)
        out.append(
            LedgerRecord(
                request_id=f"b-{seed}-{i:09d}",
                ts=start + (i + rng.random()) / rows * days * 86400,  # in arrival order
                user_id=f"user-{srng.randrange(300)}",
                team=f"team-{srng.randrange(20)}",
                project=None if srng.random() < 0.1 else f"proj-{srng.randrange(40)}",
                session_id=f"sess-{seed}-{session}",
                workflow_tag=f"wf-{srng.randrange(15)}",
                environment=srng.choice(("prod", "staging", "dev")),
                metadata={"customer_id": picked[i]},
                client_api="openai.chat",
                client_tool=srng.choice(TOOLS),
                requested_model=model,
                provider=provider,
                model=model,
                status_code=200 if ok else rng.choice((429, 500, 503)),
                error_type=None if ok else "upstream_error",
                input_tokens=rng.randint(100, 20_000) if ok else None,
                output_tokens=rng.randint(10, 2_000) if ok else None,
                cache_read_tokens=rng.choice((0, 0, 4096)),
                cost_usd=rng.random() / 20 if ok else None,
                latency_ms=rng.lognormvariate(6.5, 0.8),
                ttft_ms=rng.lognormvariate(5.5, 0.7) if ok else None,
                stream=rng.random() < 0.6,
                attempt_count=1 if rng.random() < 0.95 else 2,
            )
        )
    return out


async def written(
    url: str, records: list[LedgerRecord], keys: tuple[str, ...]
) -> tuple[float, float]:
    """Seconds of (wall, this process's CPU) to write `records` in batches of 500."""
    engine = create_engine_for(url)
    await upgrade_engine(engine)
    store = SqlLedgerStore(engine)
    store.set_rollup_keys(keys)
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(records), 500):
        await store.write_batch(records[start : start + 500])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await store.close()
    await engine.dispose()
    return wall, cpu


async def measure(url: str, records: list[LedgerRecord], keys: tuple[str, ...]) -> None:
    wall, cpu = await written(url, records, keys)
    engine = create_engine_for(url)
    rebuild_wall = time.perf_counter()
    report = await RollupRebuild(engine).run()
    rebuild_wall = time.perf_counter() - rebuild_wall
    await engine.dispose()
    n = len(records)
    print(
        f"{url.split(':')[0]:<10} write {wall / n * 1e6:6.1f} us/record wall, "
        f"{cpu / n * 1e6:6.1f} us CPU here; rebuild {report.rows:,} rows in "
        f"{rebuild_wall:.1f} s ({report.rows / rebuild_wall:,.0f} rows/s, {report.pieces} pieces)"
    )


@contextmanager
def without_tool_users() -> Iterator[None]:
    """The writer as before rollup_tool_users: no deltas of it computed, none written."""
    projected = rollups._tool_user_hours
    rollups._tool_user_hours = lambda user_hours: {}
    try:
        yield
    finally:
        rollups._tool_user_hours = projected


@contextmanager
def without_latency_cuboids() -> Iterator[None]:
    """The writer as before migration 0020: no `status` or `model` cuboid rows computed
    or written."""
    kept = rollups.CUBOIDS
    rollups.CUBOIDS = tuple(c for c in kept if c.name not in ("status", "model"))
    try:
        yield
    finally:
        rollups.CUBOIDS = kept


WITHOUT = {"tool_users": without_tool_users, "latency_cuboids": without_latency_cuboids}


def before_after(
    database: Callable[[], Iterator[str]],
    records: list[LedgerRecord],
    keys: tuple[str, ...],
    rounds: int,
    left_out: str = "tool_users",
) -> None:
    """Writes without and with `left_out` (WITHOUT), alternately, each on a fresh
    database."""
    sides: dict[str, list[float]] = {"before": [], "after": []}
    name = ""
    for _ in range(rounds):
        for side in sides:
            with contextmanager(database)() as url:
                name = url.split(":")[0]
                if side == "before":
                    with WITHOUT[left_out]():
                        _, cpu = asyncio.run(written(url, records, keys))
                else:
                    _, cpu = asyncio.run(written(url, records, keys))
            sides[side].append(cpu / len(records) * 1e6)
    old, new = statistics.median(sides["before"]), statistics.median(sides["after"])
    print(
        f"{name:<10} write CPU here: {old:6.1f} us/record without {left_out}, "
        f"{new:6.1f} with it ({new - old:+.1f} us, {new / old - 1:+.1%}; medians of {rounds})"
    )


def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as directory:
        yield f"sqlite:///{directory}/bench.db"


def postgres_database() -> Iterator[str]:
    name = f"sluice_bench_{uuid.uuid4().hex[:8]}"
    psql = ["psql", POSTGRES_ADMIN_URL, "-qc"]
    subprocess.run([*psql, f"CREATE DATABASE {name}"], check=True)
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        subprocess.run([*psql, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])


DATABASES = {"sqlite": sqlite_database, "postgres": postgres_database}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=DAYS, help="the ledger's span")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--metadata-keys", default="customer_id", help="rolled up (comma-separated; '' none)"
    )
    parser.add_argument(
        "--before-after", action="store_true", help="writes without and with --without's rows"
    )
    parser.add_argument("--rounds", type=int, default=3, help="pairs of writes (--before-after)")
    parser.add_argument(
        "--without", choices=sorted(WITHOUT), default="tool_users", help="--before-after's 'before'"
    )
    args = parser.parse_args()
    keys = tuple(k for k in args.metadata_keys.split(",") if k)
    backends = args.backends.split(",")
    unknown = [b for b in backends if b not in DATABASES]
    if unknown or args.rounds < 1:
        parser.error(f"--backends: sqlite and/or postgres, not {unknown}; --rounds >= 1")
    records = ledger(args.rows, args.days)
    for backend in backends:
        if args.before_after:
            before_after(DATABASES[backend], records, keys, args.rounds, args.without)
            continue
        with contextmanager(DATABASES[backend])() as url:
            asyncio.run(measure(url, records, keys))


if __name__ == "__main__":
    main()
