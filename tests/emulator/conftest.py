"""One real emulator server on loopback for the whole emulator test package; each test
starts from a reset emulator (no faults, no stats, empty prompt cache)."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from tests.support import ServerProcess, free_port, python_module


@pytest.fixture(scope="package")
def emulator_url() -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = python_module("sluicegate.emulator", "--port", str(port))
    with ServerProcess(args, f"{url}/healthz"):
        yield url


@pytest.fixture(autouse=True)
def fresh_emulator(request: pytest.FixtureRequest) -> None:
    if "emulator_url" in request.fixturenames:
        url = request.getfixturevalue("emulator_url")
        httpx.post(f"{url}/_emulator/reset", timeout=10).raise_for_status()


@pytest.fixture
def oai(emulator_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{emulator_url}/v1", api_key="x", max_retries=0)


@pytest.fixture
def ant(emulator_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=emulator_url, api_key="x", max_retries=0)


@pytest.fixture
def admin(emulator_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emulator_url, timeout=10) as client:
        yield client
