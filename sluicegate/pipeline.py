"""The whole path of one request, top to bottom.

    identify    key -> principal; envelope from headers; body parsed and checked
    admit       plan the route (virtual model -> ordered targets, skipping open
                circuits), then every matching rate limit and budget reserves
    guardrails  request input and tool output rules (none configured: a boolean check)
    attempts    the router runs the plan: one provider call per target, retry, fallback
    guardrails  request output and tool input rules on the reply
    settle      usage -> cost -> reconcile reservations (`settle.py`; a blocked reply
                still settles)
    record      the finished request goes to every record sink (the ledger first)

Streams pass their chunks through the output guardrails as they are relayed, and settle
and record when the last byte has gone out (or the client has left: then with usage
estimated from what was relayed, if the provider's report had not come). An answer sent
whole is settled before it is sent and recorded once the edge has sent it (`delivered`),
as 499 when the client had already left. Whatever fails, the reservation is released and
the request is recorded once.
Per-request work touches memory only: keys, config and prices are loaded ahead of time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TypeVar

import msgspec

from sluicegate.errors import (
    ClientDisconnected,
    GuardrailBlocked,
    InternalError,
    PayloadTooLarge,
    PermissionDenied,
    SluiceError,
    UpstreamError,
    UpstreamTimeout,
)
from sluicegate.guardrails import GuardrailPhases
from sluicegate.identity.client_tool import ClientToolReader
from sluicegate.identity.envelope import EnvelopeReader
from sluicegate.identity.keys import KeyService
from sluicegate.model.identity import Envelope
from sluicegate.model.record import LedgerRecord, PolicyEvent
from sluicegate.model.request import ClientApi, GatewayRequest
from sluicegate.model.usage import Usage
from sluicegate.policy.admission import PolicyBlocked, PolicyUnavailable
from sluicegate.policy.engine import Admission, AdmissionInput, PolicyEngine
from sluicegate.policy.fallbacks import admit_following_fallbacks
from sluicegate.pricing import worst_case
from sluicegate.providers.base import Provider, ProviderCall, ProviderResult, ProviderStream
from sluicegate.providers.catalog import Catalog
from sluicegate.router.attempts import AttemptsOutcome
from sluicegate.router.plan import RoutePlan, Router, Target
from sluicegate.settle import ESTIMATED, PROVIDER, Settlement, estimate_usage
from sluicegate.sinks import RecordSink, hand_to_sinks
from sluicegate.wire.common import request_object
from sluicegate.wire.registry import WIRES, render_stream_error

log = logging.getLogger(__name__)

DEFAULT_MAX_OUTPUT_TOKENS = 4096
NO_GUARDRAILS = GuardrailPhases()
T = TypeVar("T")
Send = Callable[[Provider, ProviderCall], Awaitable[T]]  # one provider call: answer or stream


class IncomingCall(msgspec.Struct, kw_only=True):
    """What the HTTP edge hands over: nothing parsed yet but the route."""

    client_api: ClientApi
    body: bytes
    raw_headers: list[tuple[bytes, bytes]]
    api_key: str | None
    too_large: bool = False  # the edge stopped reading past the body size limit
    # Has the client gone? Awaited just before the provider is called (a last look that
    # lets the server deliver a close it has already seen: server/overload.py Departure).
    client_left: Callable[[], Awaitable[bool]] | None = None


class Reply(msgspec.Struct, kw_only=True):
    """A whole answer, already settled. Its record is not written yet: the edge calls
    `Pipeline.delivered` once it has sent it (or found the client gone), exactly once."""

    status: int
    body: bytes
    headers: dict[str, str]
    record: LedgerRecord
    started: float  # perf_counter() at arrival, for the recorded latency


class StreamReply(msgspec.Struct, kw_only=True):
    headers: dict[str, str]
    chunks: AsyncGenerator[bytes, None]  # the relay: settles and records when closed


class Pipeline:
    def __init__(
        self,
        *,
        keys: KeyService,
        envelopes: EnvelopeReader,
        policy: PolicyEngine,
        router: Router,
        sinks: tuple[RecordSink, ...],
        catalog: Callable[[], Catalog],
        guardrails: GuardrailPhases = NO_GUARDRAILS,
        client_tools: ClientToolReader | None = None,
    ):
        self._keys = keys
        self._envelopes = envelopes
        self._client_tools = client_tools or ClientToolReader()
        self._policy = policy
        self._settlement = Settlement(policy, catalog)
        self._router = router
        self._sinks = sinks  # every finished request goes to each, the ledger first
        self._catalog = catalog  # the live catalog; swapped on config change
        self._render_stream_error = render_stream_error  # in-band, in the client's format
        self._guardrails = guardrails

    def set_guardrails(self, guardrails: GuardrailPhases) -> None:
        """Swap in new guardrail rules (config change); requests under way keep theirs."""
        self._guardrails = guardrails

    # --- the story --------------------------------------------------------------------
    async def handle(self, call: IncomingCall) -> Reply | StreamReply:
        started = time.perf_counter()
        record = _new_record(call.client_api)
        admission: Admission | None = None
        request: GatewayRequest | None = None
        handed_over = False  # the reply records the request: `delivered` or the relay
        try:
            request = self._identify(call, record, started)
            plan, admission = await self._admit(request, record)
            guardrails = self._guardrails
            if guardrails.on_request:
                await guardrails.check_request(request, record.guardrail_events)
            if call.client_left is not None and await call.client_left():
                raise ClientDisconnected("the client left before the provider was called")
            reply: Reply | StreamReply
            if request.stream:
                stream = await self._attempts(request, plan, record, _open_stream)
                reply = self._stream_reply(request, stream, admission, record, guardrails)
            else:
                answer = await self._attempts(request, plan, record, _complete)
                reply = await self._reply(request, answer, admission, record, guardrails)
            handed_over = True
            return reply
        except SluiceError as exc:
            self._failed(record, admission, exc)
            raise
        except Exception as exc:  # a bug: still one ledger row and an answer in format
            log.exception("request %s failed", record.request_id)
            self._failed(record, admission, exc)
            raise _internal_error(record) from exc
        except BaseException as exc:  # cancelled (client left): release and record
            if request is not None and record.provider is not None:
                self._charge_cut_call(request, record, admission)
            self._failed(record, admission, exc)
            raise
        finally:
            if not handed_over:
                self._finish(record, started)

    def delivered(self, reply: Reply, *, client_left: bool) -> None:
        """The edge has sent a whole answer, or found its client gone before it could: the
        answer was generated and is billed either way (settled already), and the record
        says which (499 `client_disconnected`)."""
        record = reply.record
        if client_left:
            record.status_code, record.error_type = 499, "client_disconnected"
            record.client_disconnected = True
        self._finish(record, reply.started)

    def refuse(self, call: IncomingCall, error: SluiceError) -> None:
        """A request the edge turned away before its turn (shed, body too slow, client
        gone while queued): one ledger row saying why, no admission, no provider call. The
        key, envelope and model are recorded when they can be read."""
        started = time.perf_counter()
        record = _new_record(call.client_api)
        with contextlib.suppress(SluiceError):  # the refusal is the answer, whatever else
            self._identify(call, record, started)
        self._failed(record, None, error)
        self._finish(record, started)

    # --- identity ---------------------------------------------------------------------
    def _identify(self, call: IncomingCall, record: LedgerRecord, started: float) -> GatewayRequest:
        # first, so that every refusal below (401, 413, 400...) still says who sent it
        record.client_tool = self._client_tools.read(call.raw_headers)
        if call.too_large:
            raise PayloadTooLarge("the request body is larger than the gateway accepts")
        principal = self._keys.authenticate(call.api_key)
        record.key_id = principal.key_id
        envelope = self._envelopes.read(principal, call.raw_headers)
        _write_envelope(record, envelope)
        body = request_object(call.body)
        facts = WIRES[call.client_api].codec.inspect_request(body)
        record.requested_model = facts.model
        record.stream = facts.stream
        if not principal.may_use(facts.model):
            raise PermissionDenied(f"this key may not use model {facts.model!r}", param="model")
        return GatewayRequest(
            request_id=record.request_id,
            started=started,
            client_api=call.client_api,
            body=body,
            requested_model=facts.model,
            stream=facts.stream,
            principal=principal,
            envelope=envelope,
            max_output_tokens=facts.max_output_tokens,
            estimated_input_tokens=facts.estimated_input_tokens,
            client_wants_stream_usage=facts.include_usage,
        )

    # --- policy -----------------------------------------------------------------------
    async def _admit(
        self, request: GatewayRequest, record: LedgerRecord
    ) -> tuple[RoutePlan, Admission | None]:
        """Plan the route, then reserve against every matching limit and budget. A breach
        whose action is a fallback re-plans with the fallback model and admits again
        (`policy.fallbacks`). No admission (None) when no rule or budget is configured."""
        model = self._catalog().resolve_alias(request.requested_model)  # rules see one name
        if not self._policy.enforcing:
            return await self._router.plan(model, request.envelope), None

        async def prepare(model: str, exempt: frozenset[str]) -> tuple[RoutePlan, AdmissionInput]:
            plan = await self._router.plan(model, request.envelope)
            worst, unpriced = self._worst_case(plan, request)
            return plan, AdmissionInput(
                request_id=request.request_id,
                arrived_at=record.ts,  # budgets split their spend by it (the ledger's ts)
                envelope=request.envelope,
                principal=request.principal,
                model=model,
                estimated_input_tokens=request.estimated_input_tokens,
                max_output_tokens=request.max_output_tokens,
                worst_case_cost_usd=worst,
                unpriced_model=unpriced,
                exempt_rule_ids=exempt,
                cheaper_model=self._router.cheaper_model(model),
            )

        try:
            plan, admission = await admit_following_fallbacks(
                self._policy, model, prepare, self._catalog().resolve_alias
            )
        except (PolicyBlocked, PolicyUnavailable) as blocked:  # the ledger names the rules
            record.policy_events = blocked.events
            raise
        record.policy_events = admission.events
        return plan, admission

    def _worst_case(
        self, plan: RoutePlan, request: GatewayRequest
    ) -> tuple[float | None, str | None]:
        """The most any candidate can cost (None: no candidate has a price), and the first
        candidate without a price (budgets decide what unpriced traffic may do)."""
        catalog = self._catalog()
        max_out = request.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS
        costs = []
        unpriced = None
        for target in plan.candidates:
            if catalog.provider(target.provider) is None:
                continue
            rate = catalog.rate(target.provider, target.model, plan.model)
            if rate is not None:
                costs.append(worst_case(rate, request.estimated_input_tokens, max_out))
            elif unpriced is None:  # named as the client asked, and as it is served
                served = f"{target.provider}/{target.model}"
                unpriced = served if plan.model == target.model else f"{plan.model} ({served})"
        return (max(costs) if costs else None), unpriced

    # --- router + provider ----------------------------------------------------------
    async def _attempts(
        self, request: GatewayRequest, plan: RoutePlan, record: LedgerRecord, send: Send[T]
    ) -> AttemptsOutcome[T]:
        """The router runs the plan, calling `send` once per attempt; the ledger gets every
        attempt. Returns only an answered outcome: a failed one raises its error."""
        record.routing_rule = plan.rule_id
        catalog = self._catalog()

        async def attempt(target: Target, reason: str) -> T:
            provider = catalog.provider(target.provider)
            if provider is None:
                raise UpstreamError(
                    f"target {target.id!r} names unknown provider {target.provider!r}"
                )
            call = ProviderCall(
                client_api=request.client_api,
                body=request.body,
                model=target.model,
                stream=request.stream,
                timeout_s=(target.timeout_ms / 1000)
                if target.timeout_ms
                else provider.default_timeout_s,
                ttft_timeout_s=(target.ttft_timeout_ms / 1000) if target.ttft_timeout_ms else None,
                client_wants_stream_usage=request.client_wants_stream_usage,
                override_params=target.override_params,
                headers_set=target.headers_set,
                headers_remove=tuple(target.headers_remove),
                request_id=request.request_id,
            )
            record.provider, record.model = target.provider, target.model
            record.attempt_count += 1  # so far: a call cut short (client gone) still shows
            return await send(provider, call)

        outcome = await self._router.run(plan, attempt)
        _write_attempts(record, outcome)
        if outcome.error is not None:
            raise outcome.error
        if outcome.final_target is not None:
            record.provider = outcome.final_target.provider
            record.model = outcome.final_target.model
        return outcome

    # --- the reply: output guardrails, then settle ------------------------------------
    async def _reply(
        self,
        request: GatewayRequest,
        answer: AttemptsOutcome[ProviderResult],
        admission: Admission | None,
        record: LedgerRecord,
        guardrails: GuardrailPhases,
    ) -> Reply:
        result = answer.unwrap()
        body = result.body
        try:
            if guardrails.on_reply:
                body = await guardrails.check_reply(
                    request.client_api, body, record.guardrail_events
                )
        finally:  # a blocked answer was still generated: its tokens are settled and learnt
            self._settlement.settle(admission, record, result.usage, answer.final_target)
            self._router.record_generation(
                answer, result.usage.output_tokens, answer.attempts[-1].latency_ms
            )
            record.response_model = result.response_model
            record.upstream_request_id = result.upstream_request_id
        return Reply(
            status=200,
            body=body,
            headers=self._headers(record, admission, with_cost=True),
            record=record,
            started=request.started,
        )

    # --- settle + record ------------------------------------------------------------
    def _charge_cut_call(
        self, request: GatewayRequest, record: LedgerRecord, admission: Admission | None
    ) -> None:
        """A provider call cancelled under way (its client left): the provider may still
        bill all of it, and nothing of it was seen, so it is counted at what admission
        reserved for it, the request's input and its most output (marked estimated)."""
        usage = Usage(
            input_tokens=request.estimated_input_tokens,
            output_tokens=request.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS,
        )
        target = self._router.plain_target(record.provider or "", record.model or "")
        self._settlement.settle(admission, record, usage, target, ESTIMATED)

    def _failed(
        self, record: LedgerRecord, admission: Admission | None, exc: BaseException
    ) -> None:
        """Whatever stopped the request: release what admission reserved (a no-op once
        settled) and say why in the ledger row; an error the client gets names it."""
        self._settlement.release(admission)
        _fail(record, exc)
        if isinstance(exc, SluiceError):
            exc.request_id = record.request_id
            exc.attempt_count = record.attempt_count

    def _finish(self, record: LedgerRecord, started: float) -> None:
        """The one end of every request, streamed or not: the record goes to the sinks."""
        record.latency_ms = round((time.perf_counter() - started) * 1000, 3)
        hand_to_sinks(self._sinks, record)

    def _headers(
        self, record: LedgerRecord, admission: Admission | None, *, with_cost: bool
    ) -> dict[str, str]:
        headers = {
            "x-sluice-request-id": record.request_id,
            "x-sluice-attempts": str(record.attempt_count),
        }
        if record.provider and record.model:
            headers["x-sluice-resolved-model"] = f"{record.provider}/{record.model}"
        if with_cost and record.cost_usd is not None:
            headers["x-sluice-cost-usd"] = f"{record.cost_usd:.8f}"
        if record.fallback_used:
            headers["x-sluice-fallback"] = "true"
        if admission is not None:
            headers.update(admission.headers)
        return headers

    # --- streams ----------------------------------------------------------------------
    def _stream_reply(
        self,
        request: GatewayRequest,
        opened: AttemptsOutcome[ProviderStream],
        admission: Admission | None,
        record: LedgerRecord,
        guardrails: GuardrailPhases,
    ) -> StreamReply:
        headers = self._headers(record, admission, with_cost=False)
        chunks = self._relay(request, opened, admission, record, guardrails)
        return StreamReply(headers=headers, chunks=chunks)

    async def _relay(
        self,
        request: GatewayRequest,
        opened: AttemptsOutcome[ProviderStream],
        admission: Admission | None,
        record: LedgerRecord,
        guardrails: GuardrailPhases,
    ) -> AsyncGenerator[bytes, None]:
        """Relay the stream, each chunk past the output guardrails first (if any); whatever
        ends it (done, provider broke, a guardrail blocked, client left), settle with the
        usage known so far and hand the record to the sinks."""
        stream = opened.unwrap()
        watch = guardrails.watch_stream(request.client_api, record.guardrail_events)
        error: SluiceError | None = None
        try:
            async for chunk in stream:
                if watch is not None:
                    await watch.check(chunk)
                yield chunk
        except (UpstreamError, GuardrailBlocked) as exc:
            error = exc
            yield self._render_stream_error(request.client_api, exc, record.request_id)
        except (asyncio.CancelledError, GeneratorExit):
            record.client_disconnected = True
            raise
        finally:
            stream.close()
            if stream.first_token_at is not None:
                record.ttft_ms = round((stream.first_token_at - request.started) * 1000, 3)
                if error is None and not record.client_disconnected:
                    self._router.record_generation(
                        opened,
                        stream.usage.output_tokens,
                        (time.perf_counter() - stream.first_token_at) * 1000,
                    )
            record.response_model = stream.response_model
            record.upstream_request_id = stream.upstream_request_id
            if error is not None:
                _fail(record, error)
            elif record.client_disconnected:
                record.status_code, record.error_type = 499, "client_disconnected"
            # cut short by the gateway (client gone, guardrail, its own timeout) rather
            # than ended or broken by the provider, which may bill the whole generation
            record.upstream_cancelled = not stream.finished and not _provider_broke(error)
            usage, source = stream.usage, PROVIDER
            if not stream.usage_final:  # its report never came: count what was relayed
                usage, source = (
                    estimate_usage(usage, stream.content_chars, request.estimated_input_tokens),
                    ESTIMATED,
                )
            try:
                self._settlement.settle(admission, record, usage, opened.final_target, source)
            finally:
                self._finish(record, request.started)

    async def drain(self) -> None:
        """Wait for settlements still queued (shutdown; admin reads of budgets)."""
        await self._policy.flush()


# --- small helpers ------------------------------------------------------------------
async def _complete(provider: Provider, call: ProviderCall) -> ProviderResult:
    return await provider.complete(call)


async def _open_stream(provider: Provider, call: ProviderCall) -> ProviderStream:
    return await provider.open_stream(call)


def _new_record(client_api: ClientApi) -> LedgerRecord:
    # 128 random bits, as a uuid4 has; `random` (reseeded in forked workers) rather than
    # the OS generator, whose syscall per request showed in profiles. Ids need not be secret.
    return LedgerRecord(
        request_id=f"req_{random.getrandbits(128):032x}",
        ts=time.time(),
        client_api=client_api.value,
        status_code=200,
    )


def _internal_error(record: LedgerRecord) -> InternalError:
    error = InternalError("internal error; see the gateway log for " + record.request_id)
    error.request_id = record.request_id
    error.attempt_count = record.attempt_count
    return error


def _write_envelope(record: LedgerRecord, envelope: Envelope) -> None:
    record.user_id, record.team, record.project = envelope.user_id, envelope.team, envelope.project
    record.session_id, record.workflow_tag = envelope.session_id, envelope.workflow_tag
    record.environment, record.cost_center = envelope.environment, envelope.cost_center
    record.metadata = envelope.metadata


def _write_attempts(record: LedgerRecord, outcome: AttemptsOutcome[T]) -> None:
    record.attempts = list(outcome.attempts)
    record.attempt_count = len(outcome.attempts)
    record.fallback_used = outcome.fallback_used
    record.retry_used = outcome.retry_used
    if outcome.fallback_used or outcome.retry_used or outcome.error is not None:
        record.route_reason = outcome.reason[:1000] or None


def _fail(record: LedgerRecord, exc: BaseException) -> None:
    if isinstance(exc, SluiceError):
        record.status_code = exc.status
        record.error_type = exc.code or exc.error_type
        record.error_message = exc.message[:500]
        record.client_disconnected = isinstance(exc, ClientDisconnected)
        rule_id = getattr(exc, "rule_id", None)
        if rule_id and not any(e.rule_id == rule_id for e in record.policy_events):
            record.policy_events.append(
                PolicyEvent(kind="policy", rule_id=rule_id, action="hard_block")
            )
    elif isinstance(exc, asyncio.CancelledError):
        record.status_code, record.error_type = 499, "client_disconnected"
        record.client_disconnected = True
        record.upstream_cancelled = record.provider is not None  # a call was under way
    else:
        record.status_code, record.error_type = 500, "internal_error"
        record.error_message = f"{type(exc).__name__}: {exc}"[:500]


def _provider_broke(error: SluiceError | None) -> bool:
    """The provider failed the stream itself (an error event, a dropped connection), as
    opposed to the gateway stopping it (a guardrail, its own timeout)."""
    return isinstance(error, UpstreamError) and not isinstance(error, UpstreamTimeout)
