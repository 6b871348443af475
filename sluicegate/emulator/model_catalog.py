"""GET /v1/models (and /v1/models/{id}) in the OpenAI and Anthropic list formats.

The catalogue is only what the list endpoints show; chat requests accept any model name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from sluicegate.emulator.gate import ApiCall
from sluicegate.emulator.wire_errors import Api, RequestInvalid

_OPENAI_CREATED = 1_715_367_049  # a fixed timestamp keeps listings byte-identical


@dataclass(frozen=True)
class _AnthropicModel:
    id: str
    display_name: str
    created_at: str
    max_input_tokens: int
    max_tokens: int


OPENAI_MODELS: tuple[str, ...] = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-5",
    "gpt-5-mini",
    "o3",
    "o4-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
)

ANTHROPIC_MODELS: tuple[_AnthropicModel, ...] = (  # newest first, as the API lists them
    # Release dates of the newest models are placeholders: listings only need them ordered.
    _AnthropicModel("claude-opus-4-7", "Claude Opus 4.7", "2026-04-01T00:00:00Z", 200_000, 64_000),
    _AnthropicModel(
        "claude-sonnet-4-6", "Claude Sonnet 4.6", "2026-02-01T00:00:00Z", 200_000, 64_000
    ),
    _AnthropicModel(
        "claude-opus-4-5-20251101", "Claude Opus 4.5", "2025-11-01T00:00:00Z", 200_000, 64_000
    ),
    _AnthropicModel(
        "claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-01T00:00:00Z", 200_000, 64_000
    ),
    _AnthropicModel(
        "claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z", 200_000, 64_000
    ),
)


def list_models(call: ApiCall) -> Response:
    if call.api is Api.ANTHROPIC:
        return call.json(_anthropic_page(call))
    return call.json({"object": "list", "data": [_openai_model(m) for m in OPENAI_MODELS]})


def retrieve_model(call: ApiCall) -> Response:
    model_id = str(call.request.path_params["model_id"])
    if call.api is Api.OPENAI:
        return call.json(_openai_model(model_id))
    known = next((m for m in ANTHROPIC_MODELS if m.id == model_id), None)
    return call.json(
        _anthropic_model(
            known or _AnthropicModel(model_id, model_id, "2025-01-01T00:00:00Z", 200_000, 64_000)
        )
    )


def _openai_model(model_id: str) -> dict[str, Any]:
    owner = "openai" if model_id.startswith(("o", "text-")) else "system"
    return {"id": model_id, "object": "model", "created": _OPENAI_CREATED, "owned_by": owner}


def _anthropic_model(model: _AnthropicModel) -> dict[str, Any]:
    return {
        "type": "model",
        "id": model.id,
        "display_name": model.display_name,
        "created_at": model.created_at,
        "lifecycle": "active",
        "max_input_tokens": model.max_input_tokens,
        "max_tokens": model.max_tokens,
    }


def _anthropic_page(call: ApiCall) -> dict[str, Any]:
    """Newest first, paged by limit / after_id / before_id like the real endpoint."""
    query = dict(call.request.query_params)
    limit = _limit(query.get("limit"))
    models = list(ANTHROPIC_MODELS)
    ids = [m.id for m in models]
    start, stop = 0, len(models)
    if query.get("after_id") in ids:
        start = ids.index(query["after_id"]) + 1
    if query.get("before_id") in ids:
        stop = ids.index(query["before_id"])
        start = max(start, stop - limit)
    page = models[start:stop][:limit]
    return {
        "data": [_anthropic_model(m) for m in page],
        "has_more": start + len(page) < stop if "before_id" not in query else start > 0,
        "first_id": page[0].id if page else None,
        "last_id": page[-1].id if page else None,
    }


def _limit(raw: str | None) -> int:
    if raw is None:
        return 20
    try:
        value = int(raw)
    except ValueError:
        raise RequestInvalid("limit: Input should be a valid integer", param="limit") from None
    if not 1 <= value <= 1000:
        raise RequestInvalid("limit: Input should be between 1 and 1000", param="limit")
    return value
