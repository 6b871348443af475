"""The four hooks and the rules at each, grouped once so a request never filters rules.

    request_input    the client's request, after admission, before any provider call
    tool_output      the tool results the client sends back (same point, same view)
    request_output   the model's answer: the whole reply, or each chunk of a stream
                     before it reaches the client
    tool_input       the tool calls the model emits (same point; a streamed call once
                     its arguments are complete)

`GuardrailPhases()` with no rules is what the pipeline holds until guardrails are
configured: it checks `on_request` / `on_reply` (two booleans) and does nothing else,
so same-wire pass-through pays no decode, no view and no wrapped stream.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, NoReturn, Protocol

from sluicegate.errors import GuardrailBlocked
from sluicegate.guardrails.verdicts import Allow, Block, Verdict
from sluicegate.guardrails.views import ReplyView, RequestView, StreamReader, StreamView
from sluicegate.model.chat import ChatRequest, ChatResponse
from sluicegate.model.request import ClientApi, GatewayRequest

Phase = Literal["request_input", "request_output", "tool_input", "tool_output"]
ContentView = RequestView | ReplyView | StreamView
GuardrailEvents = list[dict[str, Any]]  # LedgerRecord.guardrail_events


class Guardrail(Protocol):
    """One rule. `phases` names the hooks it runs at; `check` is shown that hook's view:
    a RequestView (request_input, tool_output), a ReplyView or, on a stream, a
    StreamView per chunk (request_output, tool_input). Async, so a rule may call out."""

    @property
    def name(self) -> str: ...

    @property
    def phases(self) -> frozenset[Phase]: ...

    async def check(self, phase: Phase, view: ContentView) -> Verdict: ...


class GuardrailPhases:
    def __init__(self, guardrails: Iterable[Guardrail] = ()) -> None:
        rules = tuple(guardrails)
        self.request_input = _at("request_input", rules)
        self.tool_output = _at("tool_output", rules)
        self.request_output = _at("request_output", rules)
        self.tool_input = _at("tool_input", rules)
        self.on_request = bool(self.request_input or self.tool_output)
        self.on_reply = bool(self.request_output or self.tool_input)

    async def check_request(self, request: GatewayRequest, events: GuardrailEvents) -> None:
        """Raises GuardrailBlocked; a Mutate rewrites `request.body` for later rules and
        the provider."""
        view = RequestView(request)
        for rule in self.request_input:
            _apply(await rule.check("request_input", view), rule, "request_input", view, events)
        if self.tool_output and view.tool_results:
            for rule in self.tool_output:
                _apply(await rule.check("tool_output", view), rule, "tool_output", view, events)

    async def check_reply(
        self, client_api: ClientApi, body: bytes, events: GuardrailEvents
    ) -> bytes:
        """The body to send (rewritten by a Mutate), or GuardrailBlocked."""
        view = ReplyView(client_api, body)
        for rule in self.request_output:
            _apply(await rule.check("request_output", view), rule, "request_output", view, events)
        if self.tool_input and view.tool_calls:
            for rule in self.tool_input:
                _apply(await rule.check("tool_input", view), rule, "tool_input", view, events)
        return view.body

    def watch_stream(self, client_api: ClientApi, events: GuardrailEvents) -> StreamWatch | None:
        """None when no rule looks at replies: the stream is relayed untouched."""
        return StreamWatch(self, client_api, events) if self.on_reply else None


class StreamWatch:
    """The reply rules over one stream, a chunk at a time, before the chunk is relayed."""

    def __init__(self, phases: GuardrailPhases, client_api: ClientApi, events: GuardrailEvents):
        self._phases = phases
        self._reader = StreamReader(client_api)
        self._events = events

    async def check(self, chunk: bytes) -> None:
        """Raises GuardrailBlocked: the chunk must not reach the client."""
        view, events = self._reader.read(chunk), self._events
        for rule in self._phases.request_output:
            _apply(await rule.check("request_output", view), rule, "request_output", view, events)
        if view.tool_calls:
            for rule in self._phases.tool_input:
                _apply(await rule.check("tool_input", view), rule, "tool_input", view, events)


def _at(phase: Phase, rules: tuple[Guardrail, ...]) -> tuple[Guardrail, ...]:
    return tuple(rule for rule in rules if phase in rule.phases)


def _apply(
    verdict: Verdict, rule: Guardrail, phase: Phase, view: ContentView, events: GuardrailEvents
) -> None:
    """Honour one verdict: nothing, a ledger event and GuardrailBlocked, or a rewrite."""
    if isinstance(verdict, Allow):
        return
    if isinstance(verdict, Block):
        _block(rule, phase, verdict.reason, events)
    if isinstance(view, StreamView):  # a Mutate: fail closed, see `Mutate`
        _block(rule, phase, "asked to rewrite a stream, which is not supported", events)
    _rewrite(rule, phase, view, verdict.content)
    events.append(_event(rule, phase, "mutate", verdict.detail))


def _rewrite(rule: Guardrail, phase: Phase, view: RequestView | ReplyView, content: object) -> None:
    if isinstance(view, RequestView) and isinstance(content, ChatRequest):
        view.replace(content)
        return
    if isinstance(view, ReplyView) and isinstance(content, ChatResponse):
        view.replace(content)
        return
    # a rule bug: the pipeline answers 500 and logs it
    raise TypeError(f"guardrail {rule.name!r} answered {phase} with a {type(content).__name__}")


def _block(rule: Guardrail, phase: Phase, reason: str, events: GuardrailEvents) -> NoReturn:
    events.append(_event(rule, phase, "block", reason))
    raise GuardrailBlocked(
        f"blocked by guardrail {rule.name!r} ({phase}): {reason}", guardrail=rule.name, phase=phase
    )


def _event(rule: Guardrail, phase: Phase, action: str, detail: str | None) -> dict[str, Any]:
    return {"guardrail": rule.name, "phase": phase, "action": action, "detail": detail}
