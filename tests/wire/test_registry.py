"""The client-wire registry: every client API is one registered `ClientWire`."""

from __future__ import annotations

import pytest

from sluicegate.errors import InternalError, LimitExceeded
from sluicegate.model.request import ClientApi
from sluicegate.wire import anthropic_messages as am
from sluicegate.wire import openai_chat as oc
from sluicegate.wire import openai_embeddings as emb
from sluicegate.wire.registry import WIRES, Operation, client_wire, render_stream_error


def test_every_client_api_has_one_registered_wire():
    assert set(WIRES) == set(ClientApi)
    assert all(wire.api is api for api, wire in WIRES.items())
    paths = [wire.path for wire in WIRES.values()]
    assert len(set(paths)) == len(paths)


def test_chat_wires_translate_and_embeddings_do_not():
    chat = client_wire(ClientApi.OPENAI_CHAT)
    assert (chat.path, chat.operation, chat.codec, chat.chat) == (
        "/v1/chat/completions",
        Operation.CHAT,
        oc,
        oc,
    )
    messages = client_wire(ClientApi.ANTHROPIC_MESSAGES)
    assert (messages.path, messages.codec, messages.chat) == ("/v1/messages", am, am)
    embeddings = client_wire(ClientApi.OPENAI_EMBEDDINGS)
    assert (embeddings.operation, embeddings.codec, embeddings.chat) == (
        Operation.EMBEDDINGS,
        emb,
        None,
    )


def test_stream_errors_in_the_client_format():
    exc = LimitExceeded("slow down", rule_id="r1")
    assert render_stream_error(ClientApi.ANTHROPIC_MESSAGES, exc, "req_1") == (
        am.render_stream_error(exc, "req_1")
    )
    assert render_stream_error(ClientApi.OPENAI_CHAT, exc, "req_1").startswith(b"data: {")
    with pytest.raises(InternalError, match="openai.embeddings"):
        render_stream_error(ClientApi.OPENAI_EMBEDDINGS, exc, "req_1")
