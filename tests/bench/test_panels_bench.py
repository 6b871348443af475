"""The panel bench (bench/panels.py) at a small size: it generates the ledger into each
database, fills the rollups the gateway's way, and times every registered panel's every
query shape through a real `sluicegate serve`. Nothing is asserted about time."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest

from bench.panels import shapes_of
from sluicegate.analytics.panels import PANELS
from tests.support import require_postgres

ROOT = Path(__file__).resolve().parents[2]
ROWS = 10_000


def run_bench(tmp_path: Path, *extra: str) -> tuple[dict, str]:
    out = tmp_path / "figures.json"
    args = [sys.executable, str(ROOT / "bench" / "panels.py"), "--rows", str(ROWS)]
    args += ["--days", "7", "--repeats", "1", "--cache-dir", str(tmp_path / "cache")]
    done = subprocess.run(
        [*args, "--json", str(out), *extra], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return orjson.loads(out.read_bytes()), done.stdout + done.stderr


def assert_every_panel_answered(figures: dict, database: str) -> None:
    timed = {(t["panel"], t["query"]): t for t in figures["timings"] if t["database"] == database}
    expected = {(panel, label) for panel in PANELS for label, _ in shapes_of(panel)}
    assert set(timed) == expected
    assert all(t["status"] == 200 and t["p95_ms"] > 0 for t in timed.values())


def test_sqlite_generates_times_every_panel_and_reuses_its_cache(tmp_path: Path) -> None:
    figures, _ = run_bench(tmp_path, "--databases", "sqlite")
    assert_every_panel_answered(figures, "sqlite")
    database = tmp_path / "cache" / "sqlite.db"
    with sqlite3.connect(database) as db:
        raw = db.execute("SELECT count(*), sum(cost_usd), count(DISTINCT project) FROM requests")
        count, cost, projects = raw.fetchone()
        for grain in ("hour", "day"):
            rolled = db.execute(
                "SELECT sum(requests), sum(cost_usd) FROM rollup_usage WHERE grain = ?", (grain,)
            ).fetchone()
            assert rolled[0] == count and rolled[1] == pytest.approx(cost, rel=1e-9)
        untagged = db.execute("SELECT count(*) FROM requests WHERE project IS NULL").fetchone()
        outcomes = db.execute("SELECT count(*) FROM outcomes").fetchone()
    assert count == ROWS and projects > 20 and untagged[0] > 0 and outcomes[0] > 0
    written = database.stat().st_mtime_ns

    # one panel again, with and without the narrow users rollup: the same answers
    extra = ("--panels", "adoption", "--before-after", "rollup_tool_users")
    again, log = run_bench(tmp_path, "--databases", "sqlite", *extra)
    assert "reusing the cached" in log and database.stat().st_mtime_ns == written
    assert again["generated"] == figures["generated"]
    assert {t["panel"] for t in again["timings"]} == {"adoption"}
    compared = again["before_after"]
    assert [c["query"] for c in compared] == [label for label, _ in shapes_of("adoption")]
    assert all(c["same"] and c["before_p50_ms"] > 0 and c["after_p50_ms"] > 0 for c in compared)
    assert {(c["before_source"], c["after_source"]) for c in compared} == {
        ("rollup_users", "rollup_tool_users")
    }

    # another checkout's panel code (this one's, loaded beside it), in process only
    extra = ("--panels", "adoption", "--before-after", f"code:{ROOT}", "--in-process-only")
    code, _ = run_bench(tmp_path, "--databases", "sqlite", *extra)
    assert code["timings"] == [] and all(c["same"] for c in code["before_after"])
    assert len(code["before_after"]) == len(shapes_of("adoption"))

    # adoption three ways: it forces the old index for a side, and leaves none behind
    args = [sys.executable, str(ROOT / "bench" / "adoption_ab.py"), "--repeats", "1"]
    args += ["--url", f"sqlite:///{database}", "--before-tree", str(ROOT)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("same") == len(shapes_of("adoption"))
    with sqlite3.connect(database) as db:
        indexes = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'rollup_tool_users' AND sql IS NOT NULL"  # not the key's own
        ).fetchall()
    assert indexes == [("ix_rollup_tool_users_grain_bucket_team_client_tool_user_id",)]


@pytest.mark.postgres
def test_postgresql_generates_times_every_panel_and_drops_its_database(tmp_path: Path) -> None:
    require_postgres()
    name = f"sluice_bench_{uuid.uuid4().hex[:10]}"
    figures, _ = run_bench(
        tmp_path, "--databases", "postgresql", "--pg-database", name, "--drop-postgres"
    )
    assert_every_panel_answered(figures, "postgresql")
    assert figures["generated"][0]["rows"] == ROWS
    listed = subprocess.run(
        ["psql", figures["generated"][0]["url"], "-c", "SELECT 1"], capture_output=True
    )
    assert listed.returncode != 0  # dropped
