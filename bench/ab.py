"""A/B latency on ONE gateway: requests alternate between a baseline and a variant on one
connection, so host drift hits both sides equally.

    .venv/bin/python bench/ab.py --compare routing|policy|policy-redis|policy-redis-exact
                                 [--pairs 2000]

routing: a plain model vs a virtual model (three targets, breaker).
policy / policy-redis: the same model, with three rate-limit rules and two budgets that
match only the variant's requests (both sides send the same metadata header, with a
different value), counters in memory or in Redis (with capacity leases, as served by
default, or `-exact`: `--no-redis-leases`, one Redis call per admission and settlement).
Prints each side's p50/p90 and the median of the per-pair differences.
`--baseline REV` runs a second gateway on the code committed at REV and alternates between
the two as well, so a refactor's effect on what a control adds is read from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.run import _PIN, ADMIN, BODY, LOAD_CORE, PROVIDERS, ROUTING, serve  # noqa: E402
from bench.trees import export_tree, short_rev  # noqa: E402
from tests.support import REDIS_URL, ServerProcess, free_port  # noqa: E402

CHUNKS = 6  # with a baseline: turns per gateway
WARMUP_PAIRS = 100  # uncounted pairs at the start of each turn

POLICY_AB = """
name: ab-limits
type: gateway-rate-limit-config
rules:
  - {id: ab-session, when: {metadata: {ab: "on"}}, on_breach: hard_block,
     limit: {requests: 100000000, window: 1h, scope: session}}
  - {id: ab-tokens, when: {metadata: {ab: "on"}}, on_breach: hard_block,
     limit: {tokens: 100000000000, window: 1d, scope: project}}
  - {id: ab-user, when: {metadata: {ab: "on"}, subjects: {type: user}}, on_breach: hard_block,
     limit: {requests: 100000000, window: 1m, scope: user}}
---
name: ab-budgets
type: gateway-budget-config
budgets:
  - {id: ab-project, scope: {metadata: {ab: "on"}}, ceiling_usd: 1000000, window: monthly,
     on_exceed: hard_block}
  - {id: ab-daily, scope: {metadata: {ab: "on"}}, ceiling_usd: 1000000, window: daily,
     on_exceed: audit}
"""


def start_gateway(
    workdir: Path, config: Path, compare: str, tree: Path | None
) -> tuple[ServerProcess, str]:
    """One gateway on the working tree's code, or with `tree` on a baseline commit's."""
    port = free_port()
    name = "ab" if tree is None else "ab-baseline"
    redis = (
        ["--redis-url", REDIS_URL, "--redis-prefix", f"ab-{time.time_ns()}:"]
        if compare.startswith("policy-redis")
        else []
    )
    if compare == "policy-redis-exact":
        redis.append("--no-redis-leases")
    gateway = serve(port, workdir / f"{name}.db", config, redis, tree)
    return gateway, f"http://127.0.0.1:{port}"


def main(pairs: int, compare: str, baseline: str | None = None) -> None:
    if _PIN:
        os.sched_setaffinity(0, {1})
    workdir = Path(tempfile.mkdtemp(prefix="sluice-ab-"))
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
    )
    config = workdir / "ab.yaml"
    extra = ROUTING if compare == "routing" else POLICY_AB
    config.write_text(PROVIDERS.format(emu=f"http://127.0.0.1:{emu_port}") + "---\n" + extra)
    trees: dict[str, Path | None] = {"working tree": None}
    if baseline:
        trees[short_rev(baseline)] = export_tree(baseline)
    variant_model = "bench-virtual" if compare == "routing" else "gpt-4o-mini"
    bodies = {
        "base": json.dumps(BODY).encode(),
        "variant": json.dumps(dict(BODY, model=variant_model)).encode(),
    }
    headers = {
        "base": {"x-sluice-metadata": '{"ab": "off"}'},
        "variant": {"x-sluice-metadata": '{"ab": "on"}'},
    }
    samples = {tree: {"base": [], "variant": []} for tree in trees}
    gateways: list[ServerProcess] = []
    clients: dict[str, httpx.Client] = {}
    with emulator:
        try:
            for label, tree in trees.items():
                gateway, base = start_gateway(workdir, config, compare, tree)
                gateways.append(gateway)
                key = httpx.post(
                    base + "/api/keys",
                    json={"user_id": "bench"},
                    headers={"authorization": f"Bearer {ADMIN}"},
                ).json()["key"]
                clients[label] = httpx.Client(
                    base_url=base,
                    headers={
                        "authorization": f"Bearer {key}",
                        "content-type": "application/json",
                        "x-sluice-project": "bench",
                        "x-sluice-session-id": "ab",
                    },
                )
            # Pairs alternate within one gateway (host drift hits both sides alike); with a
            # baseline, the gateways take turns in chunks, each chunk warmed up first, so no
            # measured request follows a switch of process (two gateways share one core).
            labels = list(trees)
            chunks = CHUNKS if len(labels) > 1 else 1
            for chunk in range(chunks):
                for label in labels if chunk % 2 == 0 else reversed(labels):
                    count = pairs // chunks + (pairs % chunks if chunk == chunks - 1 else 0)
                    for i in range(WARMUP_PAIRS + count):
                        order = ("base", "variant") if i % 2 else ("variant", "base")
                        for name in order:
                            start = time.perf_counter()
                            response = clients[label].post(
                                "/v1/chat/completions", content=bodies[name], headers=headers[name]
                            )
                            assert response.status_code == 200, response.text
                            if i >= WARMUP_PAIRS:
                                samples[label][name].append((time.perf_counter() - start) * 1000)
        finally:
            for client in clients.values():
                client.close()
            for gateway in gateways:
                gateway.stop()
    print(f"\n{compare}: {pairs} alternating pairs per gateway (one connection, sequential)\n")
    for label, sides in samples.items():
        diffs = [v - b for v, b in zip(sides["variant"], sides["base"])]
        print(f"{label}:")
        for name, values in sides.items():
            values = sorted(values)
            print(
                f"  {name:<8} p50 {statistics.median(values):.3f} ms   "
                f"p90 {values[int(len(values) * 0.9)]:.3f} ms"
            )
        print(
            f"  variant - base, median of per-pair differences: {statistics.median(diffs):+.3f} ms"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=2000)
    parser.add_argument(
        "--compare",
        choices=["routing", "policy", "policy-redis", "policy-redis-exact"],
        default="routing",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also measure a gateway running the code committed at REV, alternating with it",
    )
    args = parser.parse_args()
    main(args.pairs, args.compare, args.baseline)
