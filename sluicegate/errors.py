"""The one exception tree. Foreign errors (aiohttp, drivers, providers) are translated into
these at the boundary where they arise; the server renders them in the error format of the
API the client spoke (see `sluicegate.server.errors`).

    SluiceError                      status, error_type, code, message, param
     +-- ClientError                 4xx: the request cannot be served as sent
     |    +-- AuthenticationError    401 missing / unknown / revoked / expired key
     |    +-- PermissionDenied       403 key may not use this model / action
     |    +-- InvalidRequest         400 malformed JSON or a bad field (param names it)
     |    +-- NotFound               404 unknown model or route
     |    +-- Conflict               409 the action contradicts the state (rotate a revoked key)
     |    +-- PayloadTooLarge        413 body over the configured limit
     |    +-- RequestTimeout         408 the body did not arrive within the body timeout
     |    +-- ClientDisconnected     499 the client left before its answer (never sent)
     |    +-- LimitExceeded          429 a rate limit or budget refused the call (rule_id);
     |    |                          403 for a budget refusing a model with no price
     |    |                          (policy.admission.UnpricedBlocked)
     |    +-- GuardrailBlocked       400 a guardrail refused the content (guardrail, phase)
     +-- UpstreamError               the provider could not serve the call
     |    +-- UpstreamHTTPError      provider answered with an error status
     |    +-- UpstreamUnavailable    502 connection refused / reset / dropped mid-stream
     |    +-- UpstreamTimeout        504 no answer within the target's timeout
     +-- Overloaded                  503 shed: every in-flight slot and queue place taken
     +-- InternalError               500 a bug; logged, recorded, answered in the API's format
     +-- NotInstalled                501 the feature needs an optional extra (pip install
     |                               'sluicegate[EXTRA]'), e.g. Parquet export and pyarrow
     +-- StoreUnavailable            a backing store (Redis, database) cannot be reached
     |    +-- StoreUnseeded          the counter store lost its data; budgets not rebuilt yet
     +-- ConfigError                 a config document is invalid (path names the field)
          (sluicegate.config.problems: ConfigValidationError 400, ConfigNotFound 404,
           ConfigConflict 409 changed concurrently, VersionConflict a store's version clash)
"""

from __future__ import annotations


class SluiceError(Exception):
    status: int = 500
    error_type: str = "api_error"
    code: str | None = None
    request_id: str | None = None  # set by the pipeline once the request has an id
    attempt_count: int | None = None  # provider attempts made before the error (a header)

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    @property
    def class_name(self) -> str:
        return type(self).__name__


class ClientError(SluiceError):
    status = 400
    error_type = "invalid_request_error"


class AuthenticationError(ClientError):
    status = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(ClientError):
    status = 403
    error_type = "permission_error"
    code = "model_not_allowed"


class InvalidRequest(ClientError):
    status = 400
    error_type = "invalid_request_error"


class NotFound(ClientError):
    status = 404
    error_type = "not_found_error"
    code = "model_not_found"


class Conflict(ClientError):
    status = 409
    error_type = "conflict_error"
    code = "conflict"


class PayloadTooLarge(ClientError):
    status = 413
    error_type = "request_too_large"
    code = "request_too_large"


class RequestTimeout(ClientError):
    """The client did not send its whole body in time (a slow or half-sent request)."""

    status = 408
    error_type = "timeout_error"
    code = "request_timeout"


class ClientDisconnected(ClientError):
    """The client left before its answer: recorded (nginx's 499), never rendered."""

    status = 499
    error_type = "client_disconnected"
    code = "client_disconnected"


class LimitExceeded(ClientError):
    """A policy refused the call before the provider was reached."""

    status = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(
        self,
        message: str,
        *,
        rule_id: str,
        retry_after: float | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message, code=code)
        self.rule_id = rule_id
        self.retry_after = retry_after
        self.headers = headers or {}


class GuardrailBlocked(ClientError):
    """A guardrail refused the request's content, or the model's answer to it. Not named
    by `rule_id`: that attribute means a policy rule to the ledger."""

    status = 400
    error_type = "invalid_request_error"
    code = "guardrail_blocked"

    def __init__(self, message: str, *, guardrail: str, phase: str):
        super().__init__(message)
        self.guardrail = guardrail
        self.phase = phase


class UpstreamError(SluiceError):
    status = 502
    error_type = "api_error"
    code = "upstream_error"


class UpstreamHTTPError(UpstreamError):
    """The provider answered with an error status. `status` is what the client gets:
    provider 4xx pass through (the request was bad or throttled), 5xx become 502."""

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int,
        retry_after: float | None = None,
        provider_error_type: str | None = None,
    ):
        super().__init__(message)
        self.upstream_status = upstream_status
        self.retry_after = retry_after
        self.provider_error_type = provider_error_type
        self.status = upstream_status if 400 <= upstream_status < 500 else 502
        self.error_type = _ERROR_TYPE_BY_STATUS.get(self.status, "api_error")
        self.code = provider_error_type or "upstream_error"


class UpstreamUnavailable(UpstreamError):
    status = 502
    code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504
    error_type = "timeout_error"
    code = "upstream_timeout"


class Overloaded(SluiceError):
    """Admission control shed the request: the worker is at its in-flight limit and its
    queue is full (or the queue wait ran out). Answered at once, with a Retry-After."""

    status = 503
    error_type = "overloaded_error"
    code = "overloaded"

    def __init__(self, message: str, *, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class InternalError(SluiceError):
    """A bug: recorded in the ledger and answered as a 500 in the client's format."""

    status = 500
    code = "internal_error"


class NotInstalled(SluiceError):
    """The gateway can do this only with an optional extra installed (the message names
    it): a fault of the installation, not of the request."""

    status = 501
    error_type = "api_error"
    code = "extra_not_installed"


class StoreUnavailable(SluiceError):
    status = 503
    error_type = "api_error"
    code = "store_unavailable"


class StoreUnseeded(StoreUnavailable):
    """The counter store answers but lost its data (restarted empty): admissions that
    check a budget wait for the spend to be rebuilt from the ledger (milliseconds)."""


class ConfigError(SluiceError):
    status = 400
    error_type = "invalid_request_error"
    code = "invalid_config"


_ERROR_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
}
