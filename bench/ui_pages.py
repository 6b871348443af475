"""The web UI's pages timed against the API answers they render, side by side in one run,
over a generated ledger (bench/panel_load.py, as bench/panels.py makes it).

    .venv/bin/python bench/ui_pages.py --rows 1000000          # SQLite
    .venv/bin/python bench/ui_pages.py --rows 1000000 --databases postgresql

A real `sluicegate serve` on the database; one signed-in session; for every panel in the
registry and each common query shape, `--repeats` rounds alternating GET
/api/analytics/{panel} (the admin key) and GET /ui/panels/{panel} (the session), so host
drift hits both alike. Prints p50 / p95 of each and the page's p50 over the API's (the
cost of templating and the page's extra reads), then the overview (the checklist: four
panel answers) and the request explorer. Target: every page p95 under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.panels import ADMIN_KEY, ANALYTICS_CONFIG, COMMON_SHAPES, percentile, prepare  # noqa: E402
from sluicegate.analytics.panels import PANELS  # noqa: E402
from tests.support import POSTGRES_ADMIN_URL, ServerProcess, free_port  # noqa: E402

TARGET_MS = 1000.0
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in(client: httpx.Client) -> None:
    form = client.get("/ui/sign-in")
    token = CSRF.search(form.text)
    assert token, form.text[:300]
    done = client.post("/ui/sign-in", data={"csrf_token": token.group(1), "token": ADMIN_KEY})
    assert done.status_code == 303, done.text[:300]


def timed(client: httpx.Client, path: str, params: dict[str, str], **kw: object) -> float:
    started = time.perf_counter()
    response = client.get(path, params=params, **kw)  # type: ignore[arg-type]
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{path} {params}: {response.status_code} {response.text[:300]}")
    return elapsed


def row(name: str, api: list[float], page: list[float]) -> str:
    a50, p50 = statistics.median(api), statistics.median(page)
    return (
        f"{name:<40}{a50:>9.1f}{percentile(api, 0.95):>9.1f}"
        f"{p50:>9.1f}{percentile(page, 0.95):>9.1f}{p50 / a50:>8.2f}x"
        + ("  MISS" if percentile(page, 0.95) > TARGET_MS else "")
    )


def run(url: str, repeats: int, workdir: Path) -> None:
    config = workdir / "analytics.yaml"
    config.write_text(ANALYTICS_CONFIG)
    port = free_port()
    args = [
        sys.executable, "-m", "sluicegate.cli.main", "serve", "--port", str(port),
        "--database-url", url, "--config", str(config), "--spool-dir", str(workdir / "spool"),
    ]  # fmt: skip
    server = ServerProcess(
        args, f"http://127.0.0.1:{port}/readyz", {"SLUICEGATE_ADMIN_KEY": ADMIN_KEY}, timeout=120
    )
    base = f"http://127.0.0.1:{port}"
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    with server, httpx.Client(base_url=base, timeout=120) as client:
        sign_in(client)
        print(f"{'panel / query':<40}{'api p50':>9}{'p95':>9}{'page p50':>9}{'p95':>9}{'ratio':>9}")
        for panel in PANELS:
            for shape, params in COMMON_SHAPES:
                api: list[float] = []
                page: list[float] = []
                timed(client, f"/api/analytics/{panel}", params, headers=admin)  # warm once
                for _ in range(repeats):
                    api.append(timed(client, f"/api/analytics/{panel}", params, headers=admin))
                    page.append(timed(client, f"/ui/panels/{panel}", params))
                print(row(f"{panel} {shape}", api, page))
        for name, path in (("overview (checklist)", "/ui/"), ("requests", "/ui/requests")):
            samples = [timed(client, path, {}) for _ in range(repeats)]
            print(
                f"{name:<40}{'':>18}{statistics.median(samples):>9.1f}"
                f"{percentile(samples, 0.95):>9.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--databases", nargs="+", default=["sqlite"])
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "bench" / ".cache" / "ui")
    parser.add_argument("--pg-database", default="sluicegate_bench_ui")
    parser.add_argument("--pg-admin", default=POSTGRES_ADMIN_URL)
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args()
    generated = asyncio.run(prepare(args))
    for info in generated:
        print(f"{info.kind}: {info.rows:,} rows over {info.days} days")
        with tempfile.TemporaryDirectory(prefix="sluice-ui-bench-") as workdir:
            run(info.url, args.repeats, Path(workdir))


if __name__ == "__main__":
    main()
