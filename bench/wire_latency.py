"""Server-side answer latency from a loopback packet capture: for each HTTP/1.1 answer,
the time from the request's first packet to the answer's first packet, as the kernel
stamped them. It leaves out the client's own delays (its loop, its core), so set beside a
client's figures it tells which side the milliseconds are on.

    tcpdump -i lo -s 128 -w run.pcap --time-stamp-precision=nano tcp &
    ... run the load ...
    .venv/bin/python bench/wire_latency.py run.pcap [--since S] [--until S]

One line per server port (the gateway's, the emulator's) and answer status: count and
p50/p90/p99/max in ms. Requests are the packets that start with an HTTP method; answers
pair with them in order on each connection (no pipelining in these benches).
"""

from __future__ import annotations

import argparse
import struct
from collections import defaultdict, deque
from pathlib import Path

METHODS = (b"POST ", b"GET ", b"PUT ", b"DELETE ", b"PATCH ")


def packets(path: Path):  # type: ignore[no-untyped-def]
    """(time s, src port, dst port, payload head) of each TCP packet with a payload."""
    data = path.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    scale = 1e-9 if magic == 0xA1B23C4D else 1e-6
    link = struct.unpack("<I", data[20:24])[0]
    link_len = 14 if link == 1 else 16 if link == 113 else 0
    at = 24
    while at + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack("<IIII", data[at : at + 16])
        frame = data[at + 16 : at + 16 + caplen]
        at += 16 + caplen
        ip = frame[link_len:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
            continue
        tcp = ip[(ip[0] & 15) * 4 :]
        if len(tcp) < 20:
            continue
        src, dst = struct.unpack("!HH", tcp[:4])
        payload = tcp[(tcp[12] >> 4) * 4 :]
        if payload:
            yield sec + frac * scale, src, dst, payload


def latencies(path: Path, since: float, until: float) -> dict[tuple[int, int], list[float]]:
    """Latency ms by (server port, status), for requests sent in [since, until) seconds
    after the first packet."""
    pending: dict[tuple[int, int], deque[float]] = defaultdict(deque)
    out: dict[tuple[int, int], list[float]] = defaultdict(list)
    start = None
    for t, src, dst, payload in packets(path):
        start = t if start is None else start
        if payload.startswith(METHODS):
            pending[(dst, src)].append(t)  # keyed by (server port, client port)
        elif payload.startswith(b"HTTP/1.1 ") and pending[(src, dst)]:
            sent = pending[(src, dst)].popleft()
            if since <= sent - start < until:
                out[(src, int(payload[9:12]))].append((t - sent) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    return sorted(values)[max(0, int(len(values) * q) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pcap", type=Path)
    parser.add_argument("--since", type=float, default=0.0)
    parser.add_argument("--until", type=float, default=float("inf"))
    args = parser.parse_args()
    print(f"{'port':>6} {'status':>6} {'count':>7}  {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7}")
    for (port, status), values in sorted(latencies(args.pcap, args.since, args.until).items()):
        figures = " ".join(f"{pct(values, q):7.2f}" for q in (0.5, 0.9, 0.99))
        print(f"{port:>6} {status:>6} {len(values):>7}  {figures} {max(values):7.2f}")


if __name__ == "__main__":
    main()
