"""The whole path of one request, top to bottom.

    identify  key -> principal; envelope from headers; body parsed and checked
    admit     every matching rate limit and budget reserves before the call
    route     virtual model -> ordered targets, skipping open circuits
    attempt   one provider call per target, with retry and fallback
    settle    usage -> cost -> reconcile reservations
    record    one ledger row, whatever happened

Streams settle and record when the last byte has gone out (or the client has left).
Per-request work touches memory only: keys, config and prices are loaded ahead of time.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable

import msgspec

from sluicegate.errors import (
    InternalError,
    InvalidRequest,
    PayloadTooLarge,
    PermissionDenied,
    SluiceError,
    UpstreamError,
)
from sluicegate.identity.envelope import EnvelopeReader
from sluicegate.identity.keys import KeyService
from sluicegate.ledger.writer import LedgerWriter
from sluicegate.model.identity import Envelope
from sluicegate.model.record import LedgerRecord, PolicyEvent
from sluicegate.model.request import ClientApi, GatewayRequest
from sluicegate.model.usage import Usage
from sluicegate.policy.admission import PolicyBlocked, PolicyUnavailable
from sluicegate.policy.engine import Admission, AdmissionInput, PolicyEngine
from sluicegate.providers.base import ProviderCall, ProviderResult, ProviderStream
from sluicegate.providers.catalog import Catalog
from sluicegate.router.attempts import AttemptsOutcome, run_attempts
from sluicegate.router.plan import RoutePlan, Router, Target
from sluicegate.settle import price_usage, write_usage
from sluicegate.wire import anthropic_messages, openai_chat, openai_embeddings
from sluicegate.wire.common import request_object

log = logging.getLogger(__name__)

REQUEST_INSPECTORS = {
    ClientApi.OPENAI_CHAT: openai_chat.inspect_request,
    ClientApi.ANTHROPIC_MESSAGES: anthropic_messages.inspect_request,
    ClientApi.OPENAI_EMBEDDINGS: openai_embeddings.inspect_request,
}
DEFAULT_MAX_OUTPUT_TOKENS = 4096
# what the attempts produced: a ProviderStream when the request streams, else a ProviderResult
Attempted = AttemptsOutcome[ProviderResult | ProviderStream]


class IncomingCall(msgspec.Struct, kw_only=True):
    """What the HTTP edge hands over: nothing parsed yet but the route."""

    client_api: ClientApi
    body: bytes
    raw_headers: list[tuple[bytes, bytes]]
    api_key: str | None
    too_large: bool = False  # the edge stopped reading past the body size limit


class Reply(msgspec.Struct, kw_only=True):
    status: int
    body: bytes
    headers: dict[str, str]


class StreamReply(msgspec.Struct, kw_only=True):
    headers: dict[str, str]
    chunks: AsyncIterator[bytes]


class Pipeline:
    def __init__(
        self,
        *,
        keys: KeyService,
        envelopes: EnvelopeReader,
        policy: PolicyEngine,
        router: Router,
        ledger: LedgerWriter,
        catalog: Callable[[], Catalog],
        render_stream_error: Callable[[ClientApi, SluiceError, str], bytes],
    ):
        self._keys = keys
        self._envelopes = envelopes
        self._policy = policy
        self._router = router
        self._ledger = ledger
        self._catalog = catalog  # the live catalogue; swapped on config change
        self._render_stream_error = render_stream_error

    # --- the story --------------------------------------------------------------------
    async def handle(self, call: IncomingCall) -> Reply | StreamReply:
        started = time.perf_counter()
        record = _new_record(call.client_api)
        admission: Admission | None = None
        try:
            request = self._identify(call, record, started)
            plan, admission = await self._admit(request, record)
            outcome = await self._attempts(request, plan, record)
            if request.stream:
                return self._stream_reply(request, plan, outcome, admission, record)
            result, target = outcome.result, outcome.final_target
            assert isinstance(result, ProviderResult) and target is not None  # no stream; answered
            self._settle(admission, record, result.usage, target)
            self._router.latency.record_generation(
                plan.key_for(target),
                result.usage.output_tokens,
                outcome.attempts[-1].latency_ms,
            )
            record.response_model = result.response_model
            return Reply(
                status=200,
                body=result.body,
                headers=self._headers(record, admission, with_cost=True),
            )
        except SluiceError as exc:
            self._release(admission)
            _fail(record, exc)
            exc.request_id = record.request_id
            exc.attempt_count = record.attempt_count
            raise
        except Exception as exc:  # a bug: still one ledger row and an answer in format
            log.exception("request %s failed", record.request_id)
            self._release(admission)
            _fail(record, exc)
            error = InternalError("internal error; see the gateway log for " + record.request_id)
            error.request_id = record.request_id
            error.attempt_count = record.attempt_count
            raise error from exc
        except BaseException as exc:  # cancelled (client left): release and record
            self._release(admission)
            _fail(record, exc)
            raise
        finally:
            if not record.stream or record.status_code != 200:
                self._finish(record, started)

    # --- identity ---------------------------------------------------------------------
    def _identify(self, call: IncomingCall, record: LedgerRecord, started: float) -> GatewayRequest:
        if call.too_large:
            raise PayloadTooLarge("the request body is larger than the gateway accepts")
        principal = self._keys.authenticate(call.api_key)
        record.key_id = principal.key_id
        envelope = self._envelopes.read(principal, call.raw_headers)
        _write_envelope(record, envelope)
        body = request_object(call.body)
        facts = REQUEST_INSPECTORS[call.client_api](body)
        record.requested_model = facts.model
        record.stream = facts.stream
        if not principal.may_use(facts.model):
            raise PermissionDenied(f"this key may not use model {facts.model!r}", param="model")
        return GatewayRequest(
            request_id=record.request_id,
            received_at=record.ts,
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
        whose action is a fallback re-plans with the fallback model and admits again.
        No admission (None) when no rule or budget is configured."""
        model = self._catalog().resolve_alias(request.requested_model)  # rules see one name
        if not self._policy.enforcing:
            return await self._router.plan(model, request.envelope), None
        exempt: frozenset[str] = frozenset()
        events: list[PolicyEvent] = []
        for _ in range(4):
            plan = await self._router.plan(model, request.envelope)
            inp = AdmissionInput(
                request_id=request.request_id,
                envelope=request.envelope,
                principal=request.principal,
                model=model,
                estimated_input_tokens=request.estimated_input_tokens,
                max_output_tokens=request.max_output_tokens,
                worst_case_cost_usd=self._worst_case(plan, request),
                exempt_rule_ids=exempt,
                cheaper_model=self._router.cheaper_model(model),
            )
            try:
                admission = await self._policy.admit(inp)
            except (PolicyBlocked, PolicyUnavailable) as blocked:  # the ledger names the rules
                record.policy_events = [*events, *blocked.events]
                raise
            events += admission.events
            rule_id = admission.fallback_rule_id
            if rule_id is None:  # no fallback wanted
                record.policy_events = events
                return plan, admission
            fallback = admission.fallback_model
            if fallback is None:
                raise InvalidRequest(
                    f"rule {rule_id!r} asks for a cheaper model than "
                    f"{model!r} but none is configured",
                    code="no_fallback_model",
                )
            model = self._catalog().resolve_alias(fallback)
            exempt = exempt | {rule_id}
        raise InvalidRequest("policy fallbacks did not settle on a model", code="fallback_loop")

    def _worst_case(self, plan: RoutePlan, request: GatewayRequest) -> float | None:
        catalog = self._catalog()
        max_out = request.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS
        costs = []
        for target in plan.candidates:
            provider = catalog.provider(target.provider)
            if provider is None:
                continue
            cost = catalog.prices.worst_case(
                provider.kind, target.model, request.estimated_input_tokens, max_out
            )
            if cost is not None:
                costs.append(cost)
        return max(costs) if costs else None

    # --- router + provider ----------------------------------------------------------
    async def _attempts(
        self, request: GatewayRequest, plan: RoutePlan, record: LedgerRecord
    ) -> Attempted:
        record.routing_rule = plan.rule_id
        catalog = self._catalog()

        async def attempt(target: Target, reason: str) -> ProviderResult | ProviderStream:
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
            if request.stream:
                return await provider.open_stream(call)
            return await provider.complete(call)

        outcome = await run_attempts(
            plan, attempt, breakers=self._router.breakers, latency=self._router.latency
        )
        _write_attempts(record, outcome)
        if outcome.error is not None:
            raise outcome.error
        target = outcome.final_target
        assert target is not None  # no error: a target answered
        record.provider = target.provider
        record.model = target.model
        return outcome

    # --- settle + record ------------------------------------------------------------
    def _price(self, record: LedgerRecord, usage: Usage, target: Target | None) -> float | None:
        catalog = self._catalog()
        provider = catalog.provider(target.provider) if target else None
        priced = price_usage(
            catalog.prices, provider.kind if provider else None, record.model, usage
        )
        write_usage(record, usage, priced)
        return priced.cost_usd

    def _settle(
        self, admission: Admission | None, record: LedgerRecord, usage: Usage, target: Target | None
    ) -> None:
        """Price the usage and reconcile the reservation with it. Reconciling is queued,
        not awaited: the client need not wait for a Redis round trip."""
        cost = self._price(record, usage, target)
        if admission is not None:
            self._policy.settle_soon(admission, usage, cost)

    def _release(self, admission: Admission | None) -> None:
        if admission is not None:
            self._policy.settle_soon(admission, None, None)

    def _finish(self, record: LedgerRecord, started: float) -> None:
        record.latency_ms = round((time.perf_counter() - started) * 1000, 3)
        self._ledger.record(record)

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
        plan: RoutePlan,
        outcome: Attempted,
        admission: Admission | None,
        record: LedgerRecord,
    ) -> StreamReply:
        headers = self._headers(record, admission, with_cost=False)
        return StreamReply(
            headers=headers, chunks=self._relay(request, plan, outcome, admission, record)
        )

    async def _relay(
        self,
        request: GatewayRequest,
        plan: RoutePlan,
        outcome: Attempted,
        admission: Admission | None,
        record: LedgerRecord,
    ) -> AsyncIterator[bytes]:
        """Relay the stream; whatever ends it (done, provider broke, client left), settle
        with the usage known so far and write the ledger row."""
        stream, target = outcome.result, outcome.final_target
        assert stream is not None and not isinstance(stream, ProviderResult) and target is not None
        error: SluiceError | None = None
        try:
            async for chunk in stream:
                yield chunk
        except UpstreamError as exc:
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
                    self._router.latency.record_generation(
                        plan.key_for(target),
                        stream.usage.output_tokens,
                        (time.perf_counter() - stream.first_token_at) * 1000,
                    )
            record.response_model = stream.response_model
            if error is not None:
                _fail(record, error)
            elif record.client_disconnected:
                record.status_code, record.error_type = 499, "client_disconnected"
            try:
                self._settle(admission, record, stream.usage, target)
            finally:
                self._finish(record, request.started)

    async def drain(self) -> None:
        """Wait for settlements still queued (shutdown; admin reads of budgets)."""
        await self._policy.flush()


# --- small helpers ------------------------------------------------------------------
def _new_record(client_api: ClientApi) -> LedgerRecord:
    # 128 random bits, as a uuid4 has; `random` (reseeded in forked workers) rather than
    # the OS generator, whose syscall per request showed in profiles. Ids need not be secret.
    return LedgerRecord(
        request_id=f"req_{random.getrandbits(128):032x}",
        ts=time.time(),
        client_api=client_api.value,
        status_code=200,
    )


def _write_envelope(record: LedgerRecord, envelope: Envelope) -> None:
    record.user_id, record.team, record.project = envelope.user_id, envelope.team, envelope.project
    record.session_id, record.workflow_tag = envelope.session_id, envelope.workflow_tag
    record.environment, record.cost_center = envelope.environment, envelope.cost_center
    record.metadata = envelope.metadata


def _write_attempts(record: LedgerRecord, outcome: Attempted) -> None:
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
        rule_id = getattr(exc, "rule_id", None)
        if rule_id and not any(e.rule_id == rule_id for e in record.policy_events):
            record.policy_events.append(
                PolicyEvent(kind="policy", rule_id=rule_id, action="hard_block")
            )
    elif isinstance(exc, asyncio.CancelledError):
        record.status_code, record.error_type = 499, "client_disconnected"
        record.client_disconnected = True
    else:
        record.status_code, record.error_type = 500, "internal_error"
        record.error_message = f"{type(exc).__name__}: {exc}"[:500]
