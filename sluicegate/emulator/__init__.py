"""A deterministic emulator of the OpenAI and Anthropic HTTP APIs, for tests and benchmarks.

`create_app()` gives the ASGI app (mountable under a prefix); `serve()` runs it with
granian. The official SDKs talk to it unchanged. Modules, in request order:

    app            composition root: state, gate, routes
    gate           per-request path: count, auth, faults, body, errors
    openai_prompt / openai_chat / openai_embeddings    the OpenAI endpoints
    anthropic_prompt / anthropic_messages              the Anthropic endpoints
    model_catalog  GET /v1/models for both
    replies        the API-neutral, deterministic answer (text or tool call)
    schema_instance, tokens, prompt_cache, sse, faults, ids, fields, wire_errors
    admin          /_emulator/* control endpoints
"""

from sluicegate.emulator.app import create_app
from sluicegate.emulator.server import serve

__all__ = ["create_app", "serve"]
