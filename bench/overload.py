"""Overload bench (issue 11): does the gateway shed instead of queueing, and does its memory
stay flat under client-chosen ids? One gateway worker (core 0), the emulator and the load
driver on core 1, ledger on (SQLite); figures side by side in one run:

    .venv/bin/python bench/overload.py [--overload-seconds 10] [--rss-requests 1000000]
    .venv/bin/python bench/overload.py --baseline main --rounds 3 --rss-requests 0

1. unloaded: open loop at 200 req/s: the p99 admitted requests are compared with;
2. capacity: closed loop, 32 connections: peak goodput (200s per second);
3. overload: open loop at 3x that peak for 10 s. Goodput against peak, p99 of the 503
   answers, p99 of the admitted requests against the unloaded p99. One request in ten
   comes from a client that writes it and closes the connection in the same instant
   (they use a model of their own, so the emulator's count tells): the figure is the
   upstream calls begun for them, each cancelled as soon as the close is seen (bench/
   README.md: why it cannot be zero for this race); none may be answered 200. Every other
   upstream call must have its ledger row;
4. memory: `--rss-requests` requests, each with a new session id, under a per-session
   rate-limit rule: RSS of the gateway (server and worker) after a warm-up and at the end.

The load driver speaks HTTP/1.1 over raw asyncio connections (a pool, one request at a
time on each, new ones opened as needed, at most MAX_CONNECTIONS): an aiohttp client
could not offer 3x the gateway's rate from one core. Open loop means requests are sent on
schedule whatever the answers (no coordinated omission); one still unanswered 5 s after the
phase ends counts as unanswered.

`--baseline REV` runs phases 1-3 on the code as committed at REV too, on a gateway of its
own, alternating with the working tree's for `--rounds` rounds in one run (so both see
the same host), and prints the figures side by side (medians over the rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.run import _PIN, ADMIN, LOAD_CORE, PROVIDERS, serve  # noqa: E402
from bench.trees import export_tree, short_rev  # noqa: E402
from tests.support import ServerProcess, free_port  # noqa: E402

MAX_CONNECTIONS = 4000
LIMITS = """
name: bench-overload-limits
type: gateway-rate-limit-config
rules:
  - id: per-session
    limit: {requests: 100000000, window: 1h, scope: session}
    on_breach: hard_block
"""
MODELS = ("ov-load", "ov-gone", "ov-cap", "ov-rss")
# A 503 whose queue wait ran out says so (server/overload.py); the others were refused at once
# (the queue full, or no slot expected within the deadline).
QUEUE_TIMEOUT_MARK = b"no in-flight slot freed within"
SHED_AFTER_WAIT = 1503  # the driver's own status for those


@dataclass
class Tally:
    ok: list[float] = field(default_factory=list)  # latency ms of 200s
    shed: list[float] = field(default_factory=list)  # latency ms of 503s
    at_once: list[float] = field(default_factory=list)  # 503s refused without queueing
    waited: list[float] = field(default_factory=list)  # 503s whose queue wait ran out
    other: Counter[int] = field(default_factory=Counter)  # any other status (0: no answer)


class _Conn(asyncio.Protocol):
    """One keep-alive connection: a request at a time, its answer parsed to the status."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        head = self.buffer[:head_end].lower()
        start = head.find(b"content-length:")
        length = 0
        if start >= 0:
            end = head.find(b"\r\n", start)
            length = int(head[start + 15 : end if end >= 0 else len(head)])
        if len(self.buffer) < head_end + 4 + length:
            return
        status = int(self.buffer[9:12])
        if status == 503 and QUEUE_TIMEOUT_MARK in self.buffer[head_end : head_end + 4 + length]:
            status = SHED_AFTER_WAIT
        self.buffer = self.buffer[head_end + 4 + length :]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(0)
        self.transport = None


def _expire(waiter: asyncio.Future[int]) -> None:
    if not waiter.done():
        waiter.set_result(0)  # no answer in time


class Driver:
    """Requests over a pool of raw connections to one gateway."""

    def __init__(self, port: int, key: str) -> None:
        self.port = port
        self.key = key
        self.idle: list[_Conn] = []
        self.open = 0

    def request(self, model: str, session: str) -> bytes:
        body = json.dumps(
            {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
        ).encode()
        return (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {self.key}\r\nContent-Type: application/json\r\n"
            f"X-Sluice-Session-Id: {session}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def _conn(self) -> _Conn | None:
        while self.idle:
            conn = self.idle.pop()
            if conn.transport is not None:
                return conn
            self.open -= 1
        if self.open >= MAX_CONNECTIONS:
            return None
        self.open += 1
        try:
            _, conn = await asyncio.get_running_loop().create_connection(
                _Conn, "127.0.0.1", self.port
            )
        except OSError:
            self.open -= 1
            return None
        return conn

    async def send(self, raw: bytes, tally: Tally, timeout: float) -> None:
        started = time.perf_counter()
        conn = await self._conn()
        if conn is None or conn.transport is None:
            tally.other[0] += 1
            return
        loop = asyncio.get_running_loop()
        waiter = conn.waiter = loop.create_future()
        conn.transport.write(raw)
        timer = loop.call_later(timeout, _expire, waiter)
        status = await waiter
        timer.cancel()
        ms = (time.perf_counter() - started) * 1000
        if status == 0 or conn.transport is None:
            if conn.transport is not None:
                conn.transport.close()
            self.open -= 1
        else:
            self.idle.append(conn)
        if status == 200:
            tally.ok.append(ms)
        elif status in (503, SHED_AFTER_WAIT):
            tally.shed.append(ms)
            (tally.waited if status == SHED_AFTER_WAIT else tally.at_once).append(ms)
        else:
            tally.other[status] += 1

    async def send_and_leave(self, raw: bytes) -> None:
        """A client that sends its request and is gone before any answer."""
        try:
            transport, _ = await asyncio.get_running_loop().create_connection(
                asyncio.Protocol, "127.0.0.1", self.port
            )
        except OSError:
            return
        transport.write(raw)
        transport.close()

    async def open_loop(
        self, rate: float, seconds: float, model: str, leave_every: int = 0
    ) -> Tally:
        tally = Tally()
        tasks: set[asyncio.Task[None]] = set()
        total = int(rate * seconds)
        begin = time.perf_counter()
        sent = 0
        while sent < total:
            due = min(total, int((time.perf_counter() - begin) * rate) + 1)
            for i in range(sent, due):
                if leave_every and i % leave_every == 0:
                    raw = self.request("ov-gone", f"gone-{i}")
                    task = asyncio.ensure_future(self.send_and_leave(raw))
                else:
                    remaining = seconds - (time.perf_counter() - begin) + 5
                    raw = self.request(model, "bench")
                    task = asyncio.ensure_future(self.send(raw, tally, remaining))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            sent = due
            await asyncio.sleep(0.001)
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        return tally

    async def closed_loop(
        self, connections: int, model: str, *, seconds: float = 0, count: int = 0
    ) -> tuple[Tally, float]:
        """`connections` clients in a loop, for `seconds` or until `count` requests;
        each request with a new session id when `count` is given."""
        tally = Tally()
        deadline = time.perf_counter() + seconds if seconds else float("inf")
        issued = 0

        async def client() -> None:
            nonlocal issued
            while time.perf_counter() < deadline and (not count or issued < count):
                issued += 1
                session = f"rss-{issued}" if count else "bench"
                await self.send(self.request(model, session), tally, 10)

        begin = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(connections)))
        return tally, time.perf_counter() - begin


def p99(values: list[float], q: float = 0.99) -> float:
    return sorted(values)[max(0, int(len(values) * q) - 1)] if values else float("nan")


def rss_kb(pid: int) -> int:
    """Resident memory of a process and its children (granian's server and worker)."""
    total = 0
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(c) for c in (task / "children").read_text().split()]
    for one in pids:
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def ledger_rows(db: Path, settle_s: float = 15) -> list[sqlite3.Row]:
    """The ledger rows once the writer has flushed (row count steady for a second)."""
    last, steady_since = -1, time.monotonic()
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as conn:
            count = conn.execute("select count(*) from requests").fetchone()[0]
        if count != last:
            last, steady_since = count, time.monotonic()
        elif time.monotonic() - steady_since > 1:
            break
        time.sleep(0.2)
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(
            "select requested_model, status_code, error_type, attempt_count, "
            "upstream_cancelled from requests"
        ).fetchall()


def emulator_counts(emu: str) -> Counter[str]:
    return Counter(httpx.get(f"{emu}/_emulator/stats", timeout=10).json()["requests"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--overload-seconds", type=float, default=10)
    parser.add_argument("--factor", type=float, default=3.0, help="offered load / capacity")
    parser.add_argument("--rss-requests", type=int, default=1_000_000, help="0: no memory phase")
    parser.add_argument(
        "--upstream-ms",
        type=int,
        default=200,
        help="the emulator's answer time (a fault delay): capacity is then set by the "
        "in-flight limit, as with real providers; 0: CPU-bound",
    )
    parser.add_argument(
        "--gateway-flags",
        default="--max-in-flight 128 --max-queued 8 --queue-timeout-ms 5",
        help="admission limits the gateway runs with",
    )
    parser.add_argument("--capacity-connections", type=int, default=128)
    parser.add_argument("--baseline", help="also run phases 1-3 on this commit, alternating")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of phases 1-3 per tree")
    args = parser.parse_args()
    if _PIN:
        os.sched_setaffinity(0, {1})
    trees: dict[str, Path | None] = {"working tree": None}
    if args.baseline:
        trees[short_rev(args.baseline)] = export_tree(args.baseline)
    workdir = Path(tempfile.mkdtemp(prefix="sluice-overload-"))
    emu_port = free_port()
    emulator = ServerProcess(
        [*LOAD_CORE, sys.executable, "-m", "sluicegate.emulator", "--port", str(emu_port)],
        f"http://127.0.0.1:{emu_port}/healthz",
    ).start()
    emu = f"http://127.0.0.1:{emu_port}"
    providers = PROVIDERS.format(emu=emu).replace(
        "models:\n", "models:\n" + "".join(f"  {m}: {{provider: openai}}\n" for m in MODELS)
    )
    config = workdir / "overload.yaml"
    config.write_text(providers + "---\n" + LIMITS)
    results: dict[str, list[dict]] = {name: [] for name in trees}
    try:
        if args.upstream_ms:
            delay = {"delay_ms": args.upstream_ms}
            faults = {m: delay for m in ("ov-cap", "ov-load", "ov-gone")}
            httpx.put(f"{emu}/_emulator/faults", json=faults, timeout=10).raise_for_status()
        for round_ in range(args.rounds):
            for name, tree in trees.items():
                last = round_ == args.rounds - 1 and tree is None
                db = workdir / f"ledger-{round_}-{len(results[name])}-{tree is None}.db"
                rss = args.rss_requests if last else 0
                results[name].append(one_gateway(emu, config, db, tree, rss, args))
                print(f"{name} round {round_ + 1}: {summary(results[name][-1])}", flush=True)
    finally:
        emulator.stop()
    print(f"\nhost load average at the end: {os.getloadavg()[0]:.1f} (2 cores)")
    report(results["working tree"][-1], args)
    if args.baseline:
        side_by_side(results)


def one_gateway(
    emu: str, config: Path, db: Path, tree: Path | None, rss: int, args: argparse.Namespace
) -> dict:
    """Phases 1-3 (and 4 when `rss`) on a new gateway running `tree` (None: this one)."""
    port = free_port()
    gateway = serve(port, db, config, args.gateway_flags.split(), tree)
    try:
        key = httpx.post(
            f"http://127.0.0.1:{port}/api/keys",
            json={"user_id": "bench", "team": "perf"},
            headers={"authorization": f"Bearer {ADMIN}"},
        ).json()["key"]
        assert gateway.proc is not None
        return uvloop.run(run(port, key, emu, db, gateway.proc.pid, rss, args))
    finally:
        gateway.stop()


async def run(
    port: int, key: str, emu: str, db: Path, pid: int, rss: int, args: argparse.Namespace
) -> dict:
    driver = Driver(port, key)
    await driver.closed_loop(16, "ov-cap", seconds=2)  # warm-up
    unloaded = await driver.open_loop(200, 5, "ov-cap")
    connections = args.capacity_connections
    capacity, elapsed = await driver.closed_loop(connections, "ov-cap", seconds=5)
    peak = len(capacity.ok) / elapsed
    before = emulator_counts(emu)
    offered = peak * args.factor
    overload = await driver.open_loop(offered, args.overload_seconds, "ov-load", leave_every=10)
    await asyncio.sleep(1)
    calls = emulator_counts(emu) - before
    rows = ledger_rows(db)
    load_rows = [r for r in rows if r["requested_model"] == "ov-load"]
    gone_rows = [r for r in rows if r["requested_model"] == "ov-gone"]
    figures = {
        "unloaded_p50": statistics.median(unloaded.ok),
        "unloaded_p99": p99(unloaded.ok),
        "peak": peak,
        "offered": offered,
        "goodput": len(overload.ok) / args.overload_seconds,
        "overload": overload,
        "calls": calls,
        "load_rows_with_call": sum(1 for r in load_rows if r["attempt_count"] > 0),
        "gone_sent": int(offered * args.overload_seconds) // 10 + 1,
        "gone_rows": Counter((r["status_code"], r["attempt_count"] > 0) for r in gone_rows),
        "gone_cancelled": sum(1 for r in gone_rows if r["upstream_cancelled"]),
        "gone_200": sum(1 for r in gone_rows if r["status_code"] == 200),
    }
    if not rss:
        return figures
    await driver.closed_loop(32, "ov-rss", count=min(50_000, rss // 10))
    rss_start = rss_kb(pid)
    rss_tally, rss_s = await driver.closed_loop(32, "ov-rss", count=rss)
    return {
        **figures,
        "rss_start": rss_start,
        "rss_end": rss_kb(pid),
        "rss_requests": len(rss_tally.ok) + len(rss_tally.shed) + sum(rss_tally.other.values()),
        "rss_rate": rss / rss_s,
        "rss_errors": len(rss_tally.shed) + sum(rss_tally.other.values()),
    }


def shed_percentiles(r: dict) -> str:
    return "/".join(f"{p99(r['overload'].shed, q):.1f}" for q in (0.5, 0.9, 0.99))


def summary(r: dict) -> str:
    return (
        f"503 p50/p90/p99 {shed_percentiles(r)} ms, goodput/peak {r['goodput'] / r['peak']:.3f}, "
        f"admitted p99 {p99(r['overload'].ok):.0f} ms, "
        f"calls for closing clients {r['calls']['ov-gone']}"
    )


def side_by_side(results: dict[str, list[dict]]) -> None:
    """Medians over the rounds, tree by tree."""
    names = list(results)
    figures = {
        "503 p50 (ms)": lambda r: p99(r["overload"].shed, 0.5),
        "503 p90 (ms)": lambda r: p99(r["overload"].shed, 0.9),
        "503 p99 (ms)": lambda r: p99(r["overload"].shed),
        "  p50 of those refused at once": lambda r: p99(r["overload"].at_once, 0.5),
        "  p99 of those refused at once": lambda r: p99(r["overload"].at_once),
        "  p50 of those that waited it out": lambda r: p99(r["overload"].waited, 0.5),
        "  p99 of those that waited it out": lambda r: p99(r["overload"].waited),
        "goodput / peak": lambda r: r["goodput"] / r["peak"],
        "admitted p99 / unloaded p99": lambda r: p99(r["overload"].ok) / r["unloaded_p99"],
        "calls for clients closing as they sent": lambda r: r["calls"]["ov-gone"],
    }
    rounds = len(results[names[0]])
    print(f"\nside by side, median of {rounds} round(s) each, alternating:")
    print(f"{'figure':40}" + "".join(f"{n:>14}" for n in names))
    for label, figure in figures.items():
        values = [statistics.median(figure(r) for r in results[n]) for n in names]
        print(f"{label:40}" + "".join(f"{v:>14.3f}" for v in values))


def report(r: dict, args: argparse.Namespace) -> None:
    o: Tally = r["overload"]
    admitted_p99, unloaded_p99 = p99(o.ok), r["unloaded_p99"]
    print(f"gateway flags: {args.gateway_flags}")
    print(f"unloaded (200 req/s): p50 {r['unloaded_p50']:.2f} ms, p99 {unloaded_p99:.2f} ms")
    print(
        f"upstream answers in {args.upstream_ms} ms; capacity (closed loop, "
        f"{args.capacity_connections} connections): {r['peak']:.0f} req/s"
    )
    print(
        f"overload: {r['offered']:.0f} req/s offered for {args.overload_seconds:g} s "
        f"({args.factor:g}x): {len(o.ok)} ok, {len(o.shed)} shed (503), "
        f"other {dict(o.other) or 0} (0 = no answer)"
    )
    print(f"503 answers p50/p90/p99: {shed_percentiles(r)} ms")
    at_once = o.at_once
    print(
        f"  of which {len(at_once)} refused at once: "
        f"{'/'.join(f'{p99(at_once, q):.1f}' for q in (0.5, 0.9, 0.99))} ms; "
        f"{len(o.waited)} waited out --queue-timeout-ms: "
        f"{'/'.join(f'{p99(o.waited, q):.1f}' for q in (0.5, 0.9, 0.99))} ms"
    )
    print(
        f"ledger: {r['load_rows_with_call']} rows with an upstream call; clients closing as "
        f"they sent: {r['gone_sent']}, rows (status, upstream call) {dict(r['gone_rows'])}, "
        f"calls cancelled {r['gone_cancelled']}, answered 200: {r['gone_200']}"
    )
    lines = [
        ("goodput / peak", r["goodput"] / r["peak"], ">= 0.90"),
        ("p99 of 503 answers (ms)", p99(o.shed), "<= 10"),
        ("admitted p99 / unloaded p99", admitted_p99 / unloaded_p99, "<= 5"),
        ("upstream calls for clients closing as they sent", r["calls"]["ov-gone"], "0"),
        ("  of which answered 200 (not cancelled)", r["gone_200"], "0"),
        (
            "upstream calls without a ledger row",
            r["calls"]["ov-load"] - r["load_rows_with_call"],
            "0",
        ),
    ]
    print(f"admitted p99 {admitted_p99:.2f} ms")
    if "rss_start" in r:
        growth = r["rss_end"] / r["rss_start"] - 1
        lines.append((f"RSS growth over {r['rss_requests']:,} unique sessions", growth, "< 0.10"))
        print(
            f"RSS {r['rss_start'] / 1024:.0f} -> {r['rss_end'] / 1024:.0f} MiB at "
            f"{r['rss_rate']:.0f} req/s, {r['rss_errors']} non-200"
        )
    print(f"\n{'figure':44} {'value':>10}  target")
    for name, value, target in lines:
        print(f"{name:44} {value:>10.3f}  {target}")


if __name__ == "__main__":
    main()
