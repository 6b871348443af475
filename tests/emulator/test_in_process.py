"""The app object itself: mounted under a prefix inside another Starlette app, with state
per app and faults given to create_app; driven in-process through the SDKs."""

from __future__ import annotations

from pathlib import Path

import anthropic
import httpx2
import openai
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from sluicegate.emulator import create_app
from sluicegate.emulator.faults import FaultTableError, load_faults_file

HELLO = [{"role": "user", "content": "Hello there"}]


def mounted(emulator: Starlette) -> httpx2.AsyncClient:
    outer = Starlette(routes=[Mount("/emulator", app=emulator)])
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=outer), base_url="http://gateway")


async def test_openai_sdk_through_a_prefix_mount() -> None:
    async with mounted(create_app()) as http:
        client = openai.AsyncOpenAI(
            base_url="http://gateway/emulator/v1", api_key="x", http_client=http, max_retries=0
        )
        completion = await client.chat.completions.create(model="gpt-4o", messages=HELLO)
        assert "Hello there" in completion.choices[0].message.content
        async with client.chat.completions.stream(
            model="gpt-4o", messages=HELLO, stream_options={"include_usage": True}
        ) as stream:
            final = await stream.get_final_completion()
        assert final.choices[0].message.content == completion.choices[0].message.content
        models = await client.models.list()
        assert models.data
        stats = (await http.get("/emulator/_emulator/stats")).json()
        assert stats["requests"]["gpt-4o"] == 2


async def test_anthropic_sdk_through_a_prefix_mount() -> None:
    async with mounted(create_app()) as http:
        client = anthropic.AsyncAnthropic(
            base_url="http://gateway/emulator", api_key="x", http_client=http, max_retries=0
        )
        message = await client.messages.create(
            model="claude-haiku-4-5", max_tokens=100, messages=HELLO
        )
        assert message.stop_reason == "end_turn"
        async with client.messages.stream(
            model="claude-haiku-4-5", max_tokens=100, messages=HELLO
        ) as stream:
            final = await stream.get_final_message()
        assert final.content[0].text == message.content[0].text
        page = await client.models.list()
        assert page.data[0].type == "model"
        unknown = await http.get(
            "/emulator/v1/nowhere", headers={"anthropic-version": "2023-06-01"}
        )
        assert unknown.status_code == 404 and unknown.json()["type"] == "error"


async def test_faults_given_to_create_app_and_state_is_per_app() -> None:
    failing = create_app({"gpt-4o": {"status": 500}}, seed=1)
    healthy = create_app()
    assert failing.state.emulator is not healthy.state.emulator
    async with mounted(failing) as http:
        client = openai.AsyncOpenAI(
            base_url="http://gateway/emulator/v1", api_key="x", http_client=http, max_retries=0
        )
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="gpt-4o", messages=HELLO)
    async with mounted(healthy) as http:
        client = openai.AsyncOpenAI(
            base_url="http://gateway/emulator/v1", api_key="x", http_client=http, max_retries=0
        )
        assert (await client.chat.completions.create(model="gpt-4o", messages=HELLO)).choices
    assert healthy.state.emulator.stats()["total"] == 1


def test_faults_file_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "faults.yaml"
    yaml_file.write_text('"*":\n  ttft_ms: 50\n  inter_chunk_ms: 5\n', encoding="utf-8")
    assert load_faults_file(yaml_file)["*"].ttft_ms == 50
    json_file = tmp_path / "faults.json"
    json_file.write_text('{"m": {"failure_rate": 0.25}}', encoding="utf-8")
    fault = load_faults_file(json_file)["m"]
    assert fault.status == 500 and fault.failure_rate == 0.25  # a rate alone means 500s
    json_file.write_text('{"m": {"status": "x"}}', encoding="utf-8")
    with pytest.raises(FaultTableError, match="status"):
        load_faults_file(json_file)
