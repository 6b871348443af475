"""Edges a hostile or careless client finds, through a real `serve` process: the start-up
banner keeps a configured admin key secret, the config endpoint refuses an oversized body
from its declared length without waiting for it, and unknown paths answer JSON."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
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


def test_a_key_file_keeps_the_admin_key_across_restarts_and_is_never_printed(
    tmp_path: Path,
) -> None:
    """`make demo`'s key survives a restart, so an exported key keeps working; the banner
    says where the key is and which URL the CLI should use, never the key itself."""
    key_file = tmp_path / "admin-key"
    database = f"sqlite:///{tmp_path}/gw.db"
    no_env = {"SLUICEGATE_ADMIN_KEY": ""}
    with run_gateway(database, "--admin-key-file", str(key_file), env=no_env) as gateway:
        key = key_file.read_text().strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and len(key) >= 16
        headers = {"authorization": f"Bearer {key}"}
        assert httpx.get(gateway.url + "/api/keys", headers=headers, timeout=10).status_code == 200
        banner = gateway.proc.output()
        assert key not in banner and f"admin key: written to {key_file}" in banner
        assert f"export SLUICEGATE_URL={gateway.url}\n" in banner
        assert f"export SLUICEGATE_ADMIN_KEY=$(cat {key_file})" in banner
    with run_gateway(database, "--admin-key-file", str(key_file), env=no_env) as again:
        assert key_file.read_text().strip() == key
        assert httpx.get(again.url + "/api/keys", headers=headers, timeout=10).status_code == 200
        assert f"admin key: from {key_file}" in again.proc.output()


def test_a_key_file_open_to_others_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "admin-key"
    key_file.write_text("k" * 32 + "\n")
    key_file.chmod(0o644)
    done = subprocess.run(
        [sys.executable, "-m", "sluicegate.cli.main", "serve", "--admin-key-file", str(key_file),
         "--database-url", f"sqlite:///{tmp_path}/gw.db", "--port", "1"],
        env={**os.environ, "SLUICEGATE_ADMIN_KEY": "", "COLUMNS": "400"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "open to other users" in done.stderr and f"chmod 600 {key_file}" in done.stderr
