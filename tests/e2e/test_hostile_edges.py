"""Edges a hostile or careless client finds, through a real `serve` process: the start-up
banner keeps a configured admin key secret, the config endpoint refuses an oversized body
from its declared length without waiting for it, and unknown paths answer JSON."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import httpx

from sluicegate.server.admin_config import MAX_CONFIG_BYTES
from tests.e2e.gateway import ADMIN_KEY, run_gateway


def test_a_configured_admin_key_is_not_printed_and_big_bodies_are_refused_at_once(
    tmp_path: Path,
) -> None:
    with run_gateway(f"sqlite:///{tmp_path}/gw.db") as gateway:
        port = int(gateway.url.rsplit(":", 1)[1])
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(  # declares 100 MB and sends none of it
                b"POST /api/config HTTP/1.1\r\nhost: gw\r\n"
                + f"authorization: Bearer {ADMIN_KEY}\r\n".encode()
                + b"content-type: application/yaml\r\ncontent-length: 100000000\r\n\r\n"
            )
            head = sock.recv(65536).decode("latin-1")
        assert time.monotonic() - started < 3.0
        assert head.startswith("HTTP/1.1 413"), head
        # the admin gate refuses it from its declared length, before the config route's own
        # smaller limit (MAX_CONFIG_BYTES) is reached
        assert "request_too_large" in head and MAX_CONFIG_BYTES < 100_000_000

        unknown = httpx.get(gateway.url + "/no/such/page", timeout=10)
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "route_not_found"
    banner = gateway.proc.output()
    assert "admin key: from SLUICEGATE_ADMIN_KEY (not shown)" in banner
    assert ADMIN_KEY not in banner


def test_a_generated_admin_key_is_printed_and_works(tmp_path: Path) -> None:
    with run_gateway(f"sqlite:///{tmp_path}/gw.db", env={"SLUICEGATE_ADMIN_KEY": ""}) as gateway:
        banner = gateway.proc.output()
        match = re.search(r"admin key: (\S+) \(generated; set SLUICEGATE_ADMIN_KEY", banner)
        assert match, banner
        assert f"export SLUICEGATE_ADMIN_KEY={match.group(1)}" in banner
        headers = {"authorization": f"Bearer {match.group(1)}"}
        assert httpx.get(gateway.url + "/api/keys", headers=headers, timeout=10).status_code == 200
