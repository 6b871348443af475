"""Gateway overhead benchmark: the same load directly against the provider emulator and
through the gateway, side by side in one run.

    .venv/bin/python bench/run.py [--duration 10] [--scenarios plain,policy,routing]

Throughput: wrk (closed loop, 16 connections). Added latency: a Python open-loop driver at a
fixed 200 requests/s, so queueing does not hide overhead, in short segments alternating
between the gateway and the emulator directly; "added" is the median over segment pairs.
The ledger is on (SQLite). The host drifts by tens of percent over minutes, so scenarios
run in interleaved rounds and every figure is the median over rounds of values taken
within a round.
Scenarios: `passthrough` (no gateway: a bare proxy on the same server and client stack,
bench/passthrough.py, the floor under every other row), `plain` (a concrete model),
`policy` (several rate-limit rules and budgets),
`policy-redis` (the same with counters in Redis, capacity leases on as served by default),
`policy-redis-exact` (`--no-redis-leases`: one Redis call per admission and settlement),
`routing` (a virtual model with three targets and a breaker).

`--baseline REV` also runs every gateway scenario on the code as committed at REV, in the
same rounds (rows named `SCENARIO@REV`), and prints the working tree against it: how a
refactor is shown to leave the figures unchanged (bench/trees.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.trees import export_tree, short_rev, tree_env  # noqa: E402
from tests.support import REDIS_URL, ServerProcess, free_port  # noqa: E402

ADMIN = "bench-admin-key"
REDIS_PREFIX = f"sluice-bench-{os.getpid()}:"
# The gateway gets core 0 to itself; the emulator, wrk and the latency driver share core 1,
# so the load never competes with what it measures (unpinned, figures drifted 40%+).
# BENCH_PIN=0 turns pinning off (the gateway's Rust I/O thread may then use the other core).
_PIN = (
    bool(shutil.which("taskset"))
    and (os.cpu_count() or 1) >= 2
    and os.environ.get("BENCH_PIN", "1") != "0"
)
GATEWAY_CORE = ["taskset", "-c", "0"] if _PIN else []
LOAD_CORE = ["taskset", "-c", "1"] if _PIN else []
CLK_TCK = os.sysconf("SC_CLK_TCK")
BODY = {
    "model": "gpt-4o-mini",
    "max_tokens": 32,
    "messages": [{"role": "user", "content": "Classify the intent: where is my order?"}],
}

PROVIDERS = """
name: bench-providers
type: gateway-providers
providers:
  - {{name: openai, kind: openai, base_url: "{emu}/v1", headers: {{authorization: Bearer x}}}}
  - {{name: openai-b, kind: openai, base_url: "{emu}/v1", headers: {{authorization: Bearer x}}}}
  - {{name: openai-c, kind: openai, base_url: "{emu}/v1", headers: {{authorization: Bearer x}}}}
models:
  gpt-4o-mini: {{provider: openai}}
  claude-haiku-4-5: {{provider: openai}}
aliases: {{haiku: claude-haiku-4-5}}
"""
POLICY = """
name: bench-limits
type: gateway-rate-limit-config
rules:
  - id: per-session
    limit: {requests: 100000000, window: 1h, scope: session}
    on_breach: hard_block
  - id: per-project-tokens
    limit: {tokens: 100000000000, window: 1d, scope: project}
    on_breach: hard_block
  - id: per-user
    when: {subjects: {type: user}}
    limit: {requests: 100000000, window: 1m, scope: user}
    on_breach: hard_block
---
name: bench-budgets
type: gateway-budget-config
budgets:
  - id: bench-project
    scope: {metadata: {project: bench}}
    ceiling_usd: 1000000
    window: monthly
    on_exceed: hard_block
  - id: everything-daily
    scope: {}
    ceiling_usd: 1000000
    window: daily
    on_exceed: audit
"""
ROUTING = """
name: bench-virtual
type: gateway-load-balancing-config
rule_type: weight-based
rules:
  - {id: a, weight: 60, target: {provider: openai, model: gpt-4o-mini}}
  - {id: b, weight: 30, target: {provider: openai-b, model: gpt-4o-mini}}
  - {id: c, weight: 10, target: {provider: openai-c, model: gpt-4o-mini}}
fallbacks:
  - {provider: openai-b, model: gpt-4o-mini}
circuit_breaker: {failure_threshold: 5, window_seconds: 60, cooldown_seconds: 30}
"""


def wrk(
    url: str, key: str, body: dict, duration: int, connections: int = 16, pid: int | None = None
) -> dict:
    """Closed-loop throughput; with `pid`, also the CPU that process (and its children)
    and the Redis server spent per request: throughput on a shared 2-core host moves with
    the neighbours, CPU per request much less."""
    env = {**os.environ, "BENCH_KEY": key, "BENCH_BODY": json.dumps(body)}
    redis_pid = _pidof("redis-server")
    before = (
        tree_cpu_seconds(pid) if pid else 0.0,
        tree_cpu_seconds(redis_pid) if redis_pid else 0.0,
    )
    out = subprocess.run(
        [
            *LOAD_CORE,
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "chat.lua"),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    cpu = {}
    if pid:
        cpu["cpu_us"] = (tree_cpu_seconds(pid) - before[0]) / max(1, requests) * 1e6
    if redis_pid:
        cpu["redis_us"] = (tree_cpu_seconds(redis_pid) - before[1]) / max(1, requests) * 1e6
    return {
        "rps": rps,
        "errors": int(non2xx.group(1)) if non2xx else 0,
        "p50": _wrk_pct(out, "50%"),
        "p99": _wrk_pct(out, "99%"),
        **cpu,
    }


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by a process and all its descendants."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(stat[11]) + int(stat[12])) / CLK_TCK  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def _pidof(name: str) -> int | None:
    found = subprocess.run(["pidof", "-s", name], capture_output=True, text=True).stdout.split()
    return int(found[0]) if found else None


def _wrk_pct(out: str, label: str) -> float:
    value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def open_loop(url: str, key: str, body: dict, rate: int, seconds: float) -> dict:
    """Fire requests on a fixed schedule regardless of answers (no coordinated omission)."""
    latencies: list[float] = []
    errors = 0
    headers = {
        "authorization": f"Bearer {key}",
        "x-sluice-project": "bench",
        "x-sluice-session-id": "bench-session",
    }
    payload = json.dumps(body).encode()
    async with aiohttp.ClientSession(headers=headers) as session:

        async def one() -> None:
            nonlocal errors
            start = time.perf_counter()
            async with session.post(
                url, data=payload, headers={"content-type": "application/json"}
            ) as r:
                await r.read()
                if r.status != 200:
                    errors += 1
            latencies.append((time.perf_counter() - start) * 1000)

        for _ in range(20):  # warm the pools
            await one()
        latencies.clear()
        tasks = []
        begin = time.perf_counter()
        for i in range(int(rate * seconds)):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    latencies.sort()
    return {
        "p50": statistics.median(latencies),
        "p99": latencies[int(len(latencies) * 0.99) - 1],
        "errors": errors,
    }


def start_passthrough(emulator_url: str) -> tuple[ServerProcess, str]:
    """The same server and client stack with no gateway logic (bench/passthrough.py)."""
    port = free_port()
    proc = ServerProcess(
        [
            *GATEWAY_CORE,
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--loop",
            "uvloop",
            "--no-ws",
            "--http",
            "1",
            "--port",
            str(port),
            "bench.passthrough:app",
        ],
        f"http://127.0.0.1:{port}/readyz",
        env={"BENCH_UPSTREAM": emulator_url, "PYTHONPATH": str(ROOT)},
    ).start()
    return proc, "x"


def serve(
    port: int, database: Path, config: Path, extra: list[str], tree: Path | None
) -> ServerProcess:
    """`sluicegate serve` pinned to the gateway's core, its ledger in SQLite at `database`,
    running the working tree's code or, with `tree`, a baseline commit's."""
    args = [
        *GATEWAY_CORE,
        sys.executable,
        "-m",
        "sluicegate.cli.main",
        "serve",
        "--port",
        str(port),
        "--no-emulator",
        "--database-url",
        f"sqlite:///{database}",
        "--config",
        str(config),
        *extra,
    ]
    return ServerProcess(
        args,
        f"http://127.0.0.1:{port}/readyz",
        env={"SLUICEGATE_ADMIN_KEY": ADMIN, **tree_env(tree)},
        cwd=None if tree is None else str(tree),
    ).start()


def start_gateway(
    emulator_url: str, workdir: Path, scenario: str, tree: Path | None = None
) -> tuple[ServerProcess, str]:
    """One gateway for `scenario`, running the working tree's code or, with `tree`, the
    code unpacked there (a baseline commit)."""
    if scenario == "passthrough":
        return start_passthrough(emulator_url)
    port = free_port()
    docs = PROVIDERS.format(emu=emulator_url)
    if scenario.startswith("policy"):
        docs += "---\n" + POLICY
    if scenario == "routing":
        docs += "---\n" + ROUTING
    name = scenario if tree is None else f"{scenario}-baseline"
    config = workdir / f"{name}.yaml"
    config.write_text(docs)
    extra = []
    if scenario.startswith("policy-redis"):
        extra += ["--redis-url", REDIS_URL, "--redis-prefix", REDIS_PREFIX]
    if scenario == "policy-redis-exact":
        extra.append("--no-redis-leases")
    proc = serve(port, workdir / f"{name}.db", config, extra, tree)
    url = f"http://127.0.0.1:{port}"
    key = httpx.post(
        url + "/api/keys",
        json={"user_id": "bench", "team": "perf"},
        headers={"authorization": f"Bearer {ADMIN}"},
    ).json()["key"]
    return proc, key


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument(
        "--scenarios", default="passthrough,plain,policy,policy-redis,policy-redis-exact,routing"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--open-loop-seconds", type=float, default=10)
    parser.add_argument(
        "--segments",
        type=int,
        default=5,
        help="open-loop segments alternating gateway and direct, per scenario",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run each gateway scenario on the code committed at REV, in the same rounds",
    )
    args = parser.parse_args()
    args.baseline_tree = export_tree(args.baseline) if args.baseline else None
    args.baseline_name = short_rev(args.baseline) if args.baseline else None
    if _PIN:
        os.sched_setaffinity(0, {1})  # the open-loop driver runs here
    if not shutil.which("wrk"):
        sys.exit("wrk is needed: apt-get install wrk")
    workdir = Path(tempfile.mkdtemp(prefix="sluice-bench-"))
    emu_port = free_port()
    emulator = ServerProcess(
        [
            *LOAD_CORE,
            sys.executable,
            "-m",
            "sluicegate.emulator",
            "--port",
            str(emu_port),
        ],
        f"http://127.0.0.1:{emu_port}/healthz",
    ).start()
    emu = f"http://127.0.0.1:{emu_port}"
    rounds: list[dict] = []
    try:
        for _ in range(args.rounds):  # interleaved rounds: host drift hits every scenario
            rounds.append(run_round(emu, workdir, args))
    finally:
        emulator.stop()
    report(median_of(rounds), args)


def measure(
    url: str, key: str, body: dict, args, direct_url: str | None = None, pid: int | None = None
) -> dict:
    """wrk throughput, then the open-loop latency. With `direct_url`, the open loop
    alternates short segments against the gateway and directly against the emulator, and
    `ol_added` is the median over segment pairs of the difference of their p50s: host
    drift over the run hits both sides of each pair alike."""
    figures = wrk(url, key, body, args.duration, pid=pid)
    if direct_url is None:
        return figures | {
            f"ol_{k}": v
            for k, v in asyncio.run(
                open_loop(url, key, body, args.rate, args.open_loop_seconds)
            ).items()
        }
    segments = max(1, args.segments)
    seconds = args.open_loop_seconds / segments
    gateway, direct = [], []
    for _ in range(segments):
        gateway.append(asyncio.run(open_loop(url, key, body, args.rate, seconds)))
        direct.append(asyncio.run(open_loop(direct_url, "x", BODY, args.rate, seconds)))
    return figures | {
        "ol_p50": statistics.median(g["p50"] for g in gateway),
        "ol_p99": statistics.median(g["p99"] for g in gateway),
        "ol_errors": sum(g["errors"] for g in gateway),
        "ol_added": statistics.median(g["p50"] - d["p50"] for g, d in zip(gateway, direct)),
    }


def run_round(emu: str, workdir: Path, args) -> dict:
    results = {"direct": measure(emu + "/v1/chat/completions", "x", BODY, args)}
    runs: list[tuple[str, str, Path | None]] = []
    for scenario in args.scenarios.split(","):
        runs.append((scenario, scenario, None))
        if args.baseline_tree is not None and scenario != "passthrough":
            runs.append((f"{scenario}@{args.baseline_name}", scenario, args.baseline_tree))
    for name, scenario, tree in runs:
        proc, key = start_gateway(emu, workdir, scenario, tree)
        body = dict(BODY, model="bench-virtual") if scenario == "routing" else BODY
        try:
            results[name] = measure(
                proc.ready_url.replace("/readyz", "/v1/chat/completions"),
                key,
                body,
                args,
                direct_url=emu + "/v1/chat/completions",
                pid=proc.proc.pid,
            )
        finally:
            proc.stop()
            if scenario.startswith("policy-redis"):
                drop_redis_keys(REDIS_PREFIX)
    return results


def drop_redis_keys(prefix: str) -> None:
    """The benchmark's counters (the Redis is shared with the tests; never FLUSHDB)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def median_of(rounds: list[dict]) -> dict:
    """Per scenario and figure, the median over rounds; `added` and ratios are taken within
    each round first (against that round's direct run), then the median of those."""
    out = {}
    for name in rounds[0]:
        figures = {
            k: statistics.median(r[name][k] for r in rounds if k in r[name])
            for k in rounds[0][name]
        }
        figures["ratio"] = statistics.median(r[name]["rps"] / r["direct"]["rps"] for r in rounds)
        figures["added"] = statistics.median(r[name].get("ol_added", 0.0) for r in rounds)
        figures["vs_plain_rps"] = (
            statistics.median(r[name]["rps"] / r["plain"]["rps"] for r in rounds)
            if "plain" in rounds[0]
            else None
        )
        figures["vs_plain_cpu"] = (
            statistics.median(r[name]["cpu_us"] / r["plain"]["cpu_us"] for r in rounds)
            if "plain" in rounds[0] and "cpu_us" in rounds[0][name]
            else None
        )
        figures["vs_plain_p50"] = (
            statistics.median(r[name]["ol_p50"] - r["plain"]["ol_p50"] for r in rounds)
            if "plain" in rounds[0]
            else None
        )
        out[name] = figures
    return out


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def report(results: dict, args) -> None:
    print(
        f"\nnon-streamed chat; wrk 16 connections {args.duration}s; open loop {args.rate} req/s"
        f" for {args.open_loop_seconds}s in {args.segments} segments alternating with direct;"
        f" one gateway process, ledger on (SQLite); {'pinned' if _PIN else 'not pinned'};"
        f" median of {args.rounds} interleaved rounds\n"
    )
    print(
        f"{'path':<28}{'req/s':>9}{'ratio':>7}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'@rate p50':>11}{'@rate p99':>11}{'added p50':>11}{'errors':>8}"
        f"{'cpu us/req':>12}{'redis us/req':>14}"
    )
    for name, r in results.items():
        print(
            f"{name:<28}{r['rps']:>9.0f}{r['ratio']:>7.2f}{r['p50']:>8.2f}{r['p99']:>8.2f}"
            f"{r['ol_p50']:>11.2f}{r['ol_p99']:>11.2f}{r['added']:>11.2f}"
            f"{r['errors'] + r['ol_errors']:>8.0f}"
            f"{_us(r.get('cpu_us')):>12}{_us(r.get('redis_us')):>14}"
        )
    if "passthrough" in results and "plain" in results:
        floor, plain = results["passthrough"], results["plain"]
        print(
            f"plain over passthrough (sluicegate's own share): p50 at {args.rate}/s "
            f"{plain['added'] - floor['added']:+.3f} ms; throughput "
            f"{plain['rps'] / floor['rps']:.2f}x"
        )
    if args.baseline_name:
        print(f"\nthe working tree against {args.baseline_name} (same rounds):")
        for name, r in results.items():
            base = results.get(f"{name}@{args.baseline_name}")
            if base is None:
                continue
            cpu = (
                f", gateway CPU per request {r['cpu_us'] / base['cpu_us']:.2f}x"
                if r.get("cpu_us") and base.get("cpu_us")
                else ""
            )
            print(
                f"{name}: throughput {r['rps'] / base['rps']:.2f}x, "
                f"added p50 at {args.rate}/s {r['added'] - base['added']:+.3f} ms{cpu}"
            )
        print()
    for name, r in results.items():
        if "@" in name:
            continue
        if name not in ("direct", "plain", "passthrough") and r["vs_plain_rps"] is not None:
            print(
                f"{name} vs plain (same round): throughput {r['vs_plain_rps']:.2f}x, "
                f"p50 at {args.rate}/s {r['vs_plain_p50']:+.3f} ms, gateway CPU per "
                f"request {r['vs_plain_cpu']:.2f}x"
            )


if __name__ == "__main__":
    main()
