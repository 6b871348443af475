"""One planned call sent to the gateway the way its tool would send it: the official
openai or anthropic SDK (with the tool's User-Agent), or plain httpx. Each answer is
reduced to its HTTP status (0: no answer: refused connection or timeout) and reply text;
a session keeps its last few turns as the next call's conversation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import openai

from sluicegate.demo.plan import PlannedCall, PlannedSession

CALL_TIMEOUT_S = 30.0
HISTORY_MESSAGES = 6  # of a session's conversation resent each turn: bounds prompt growth


@dataclass
class Answer:
    status: int
    text: str = ""


@dataclass
class SessionDriver:
    """Sends one session's calls in order over one client."""

    url: str
    key: str
    session: PlannedSession
    history: list[dict[str, str]] = field(default_factory=list)
    _openai: openai.AsyncOpenAI | None = None
    _anthropic: anthropic.AsyncAnthropic | None = None
    _http: httpx.AsyncClient | None = None

    def __post_init__(self) -> None:
        headers = self._identity_headers()
        client = self.session.tool.client
        if client == "openai":
            self._openai = openai.AsyncOpenAI(
                base_url=f"{self.url}/v1",
                api_key=self.key,
                max_retries=0,
                timeout=CALL_TIMEOUT_S,
                default_headers=headers,
            )
        elif client == "anthropic":
            self._anthropic = anthropic.AsyncAnthropic(
                base_url=self.url,
                api_key=self.key,
                max_retries=0,
                timeout=CALL_TIMEOUT_S,
                default_headers=headers,
            )
        else:
            self._http = httpx.AsyncClient(
                base_url=self.url,
                timeout=CALL_TIMEOUT_S,
                headers={**headers, "authorization": f"Bearer {self.key}"},
            )

    def _identity_headers(self) -> dict[str, str]:
        session = self.session
        headers = {"X-Sluice-Session-ID": session.session_id}
        if session.tool.user_agent:
            headers["User-Agent"] = session.tool.user_agent
        if session.workflow is not None:
            headers["X-Sluice-Project"] = session.workflow.project
            headers["X-Sluice-Workflow-Tag"] = session.workflow.tag
        return headers

    async def send(self, call: PlannedCall) -> Answer:
        self.history.append({"role": "user", "content": call.prompt})
        del self.history[:-HISTORY_MESSAGES]
        if self.history[0]["role"] != "user":  # both APIs want a user turn first
            del self.history[0]
        extra = {"X-Sluice-Metadata": json.dumps(dict(call.metadata))} if call.metadata else {}
        try:
            answer = await self._send(call, extra)
        except (openai.APIStatusError, anthropic.APIStatusError) as exc:
            answer = Answer(exc.status_code)
        except httpx.HTTPStatusError as exc:
            answer = Answer(exc.response.status_code)
        except (openai.APIConnectionError, anthropic.APIConnectionError, httpx.TransportError):
            answer = Answer(0)
        if answer.text:
            self.history.append({"role": "assistant", "content": answer.text})
        return answer

    async def _send(self, call: PlannedCall, extra: dict[str, str]) -> Answer:
        if self._openai is not None:
            return await self._send_openai(self._openai, call, extra)
        if self._anthropic is not None:
            return await self._send_anthropic(self._anthropic, call, extra)
        assert self._http is not None
        body = {"model": call.model, "messages": self.history, "max_tokens": call.max_tokens}
        response = await self._http.post("/v1/chat/completions", json=body, headers=extra)
        response.raise_for_status()
        return Answer(response.status_code, _openai_text(response.json()))

    async def _send_openai(
        self, client: openai.AsyncOpenAI, call: PlannedCall, extra: dict[str, str]
    ) -> Answer:
        messages: Any = list(self.history)
        if call.stream:
            stream = await client.chat.completions.create(
                model=call.model,
                messages=messages,
                max_tokens=call.max_tokens,
                stream=True,
                stream_options={"include_usage": True},
                extra_headers=extra,
            )
            parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
            return Answer(200, "".join(parts))
        reply = await client.chat.completions.create(
            model=call.model, messages=messages, max_tokens=call.max_tokens, extra_headers=extra
        )
        return Answer(200, reply.choices[0].message.content or "")

    async def _send_anthropic(
        self, client: anthropic.AsyncAnthropic, call: PlannedCall, extra: dict[str, str]
    ) -> Answer:
        messages: Any = list(self.history)
        if call.stream:
            async with client.messages.stream(
                model=call.model,
                messages=messages,
                max_tokens=call.max_tokens,
                extra_headers=extra,
            ) as stream:
                text = "".join([part async for part in stream.text_stream])
            return Answer(200, text)
        reply = await client.messages.create(
            model=call.model, messages=messages, max_tokens=call.max_tokens, extra_headers=extra
        )
        return Answer(200, "".join(b.text for b in reply.content if b.type == "text"))

    async def close(self) -> None:
        if self._openai is not None:
            await self._openai.close()
        if self._anthropic is not None:
            await self._anthropic.close()
        if self._http is not None:
            await self._http.aclose()


def _openai_text(body: dict[str, Any]) -> str:
    try:
        return str(body["choices"][0]["message"]["content"] or "")
    except (KeyError, IndexError, TypeError):
        return ""
