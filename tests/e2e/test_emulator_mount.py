"""The provider emulator is a development tool: a plain `serve` does not mount it (its fault
endpoints take no key), `serve --emulator` does and says so in its banner."""

from __future__ import annotations

import httpx

from tests.e2e.gateway import run_gateway


def test_a_default_serve_does_not_answer_under_emulator(tmp_path) -> None:
    with run_gateway(f"sqlite:///{tmp_path / 'prod.db'}", emulator=False) as gateway:
        for method, path in [
            ("PUT", "/emulator/_emulator/faults"),
            ("GET", "/emulator/_emulator/stats"),
            ("POST", "/emulator/v1/chat/completions"),
            ("GET", "/emulator/v1/models"),
        ]:
            response = httpx.request(method, gateway.url + path, json={}, timeout=10)
            assert response.status_code == 404, (method, path)
            assert response.headers["content-type"] == "application/json"
            error = response.json()["error"]
            assert error["code"] == "emulator_not_mounted"
            assert "--emulator" in error["message"]
        output = gateway.proc.output()
    assert "emulator: off" in output
    assert "/emulator (" not in output and "emulator: mounted" not in output


def test_serve_with_emulator_mounts_it_and_says_so(gateway) -> None:
    """`gateway` is the e2e session's gateway, started with `--emulator`."""
    stats = httpx.get(f"{gateway.url}/emulator/_emulator/stats", timeout=10)
    assert stats.status_code == 200 and "requests" in stats.json()
    models = httpx.get(
        f"{gateway.url}/emulator/v1/models", headers={"authorization": "Bearer x"}, timeout=10
    )
    assert models.status_code == 200
    output = gateway.proc.output()
    assert f"emulator: mounted at {gateway.url}/emulator" in output
    assert "development tool" in output
