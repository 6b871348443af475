"""The emulator's composition root: one EmulatorState, the gate, and the routes.

Paths are relative to the app root, so it also works mounted under a prefix: the gateway
mounts it at /emulator (OpenAI base URL .../emulator/v1, Anthropic base URL .../emulator).
"""

from __future__ import annotations

import os
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sluicegate.emulator import ids
from sluicegate.emulator.admin import AdminEndpoints
from sluicegate.emulator.anthropic_messages import count_tokens, messages
from sluicegate.emulator.faults import load_faults_file, parse_fault_table
from sluicegate.emulator.gate import Gate, api_of_models_request
from sluicegate.emulator.model_catalog import list_models, retrieve_model
from sluicegate.emulator.openai_chat import chat_completions
from sluicegate.emulator.openai_embeddings import embeddings
from sluicegate.emulator.state import EmulatorState
from sluicegate.emulator.wire_errors import Api, error_response

FAULTS_FILE_ENV = "SLUICEGATE_EMULATOR_FAULTS"
SEED_ENV = "SLUICEGATE_EMULATOR_SEED"


def create_app(faults: dict[str, Any] | None = None, *, seed: int = 0) -> Starlette:
    state = EmulatorState(parse_fault_table(faults or {}), seed=seed)
    gate = Gate(state)
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route(
            "/v1/chat/completions", gate.endpoint(chat_completions, Api.OPENAI), methods=["POST"]
        ),
        Route("/v1/embeddings", gate.endpoint(embeddings, Api.OPENAI), methods=["POST"]),
        Route("/v1/messages", gate.endpoint(messages, Api.ANTHROPIC), methods=["POST"]),
        Route(
            "/v1/messages/count_tokens",
            gate.endpoint(count_tokens, Api.ANTHROPIC),
            methods=["POST"],
        ),
        Route("/v1/models", gate.endpoint(list_models, api_of_models_request), methods=["GET"]),
        Route(
            "/v1/models/{model_id:path}",
            gate.endpoint(retrieve_model, api_of_models_request),
            methods=["GET"],
        ),
        *AdminEndpoints(state).routes(),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.emulator = state
    return app


def create_app_from_env() -> Starlette:
    """Factory for granian, which starts workers from an import string: settings come
    from the environment that `serve` prepared."""
    path = os.environ.get(FAULTS_FILE_ENV)
    faults = load_faults_file(path) if path else {}
    return create_app(dict(faults), seed=int(os.environ.get(SEED_ENV, "0")))


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer in the caller's API's error shape."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    api = api_of_models_request(request)
    request_id = ids.anthropic_request_id() if api is Api.ANTHROPIC else ids.openai_request_id()
    message = (
        f"Invalid URL ({request.method} {request.url.path})"
        if status == 404
        else f"Method {request.method} is not allowed for {request.url.path}"
    )
    return error_response(api, status, message, request_id)
