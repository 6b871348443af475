"""Hypothesis over the parsers a client or an admin feeds directly: whatever arrives, the
answer is a parsed value or the gateway's own 4xx error, never another exception (which
the server would turn into a 500).

- the config document parser: any text, and the shipped examples with values replaced;
- each client API's request inspector (and translator, for chat APIs): any JSON, and
  bodies shaped like real requests with fields of any JSON type;
- the identity envelope's header reader: any value under any envelope header;
- the SSE parser: any split of the same bytes gives the same events.

Budgets are fixed and runs deterministic (`derandomize`), as in `make test`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluicegate.config.parse import parse_documents
from sluicegate.config.registry import DocumentRegistry
from sluicegate.errors import ConfigError, SluiceError
from sluicegate.identity.envelope import EnvelopeReader
from sluicegate.model.identity import Principal
from sluicegate.model.request import ClientApi
from sluicegate.providers.catalog import DEFAULT_MODELS
from sluicegate.wire.registry import WIRES, ClientWire
from sluicegate.wire.sse import SSEEvent, SSEParser
from tests.fuzz import strategies
from tests.fuzz.strategies import json_values, mutated_documents

# a longer, random hunt: SLUICEGATE_FUZZ_SCALE=20 SLUICEGATE_FUZZ_RANDOM=1 pytest tests/fuzz
SCALE = int(os.environ.get("SLUICEGATE_FUZZ_SCALE", "1"))
FUZZ = settings(
    max_examples=150 * SCALE,
    derandomize=os.environ.get("SLUICEGATE_FUZZ_RANDOM") != "1",
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def assert_client_error(exc: SluiceError) -> None:
    assert 400 <= exc.status < 500, f"{type(exc).__name__} {exc.status}: {exc}"


# -- config documents -------------------------------------------------------------------------

REGISTRY = DocumentRegistry()


def parses_or_config_error(text: str) -> None:
    try:
        parse_documents(text, REGISTRY)
    except ConfigError as exc:
        assert_client_error(exc)


@FUZZ
@given(st.binary(max_size=300).map(lambda raw: raw.decode("utf-8", "replace")))
def test_config_parser_takes_any_text(text: str) -> None:
    parses_or_config_error(text)


@FUZZ
@given(st.text(alphabet="{}[]:,-&*!|>'\"#?\n abc01.", max_size=120))
def test_config_parser_takes_any_yaml_punctuation(text: str) -> None:
    parses_or_config_error(text)


@FUZZ
@given(mutated_documents(), st.booleans())
def test_config_parser_takes_any_value_in_any_field(document: Any, as_json: bool) -> None:
    assert strategies.EXAMPLE_DOCUMENTS, f"no examples under {strategies.EXAMPLES_DIR}"
    text = yaml.safe_dump(document) if not as_json else _json_text(document)
    parses_or_config_error(text)


def _json_text(document: Any) -> str:
    return json.dumps(document)  # stdlib: integers past 64 bits too


# -- client API requests ----------------------------------------------------------------------

BODIES = {  # each client API's own request shape
    ClientApi.OPENAI_CHAT: strategies.openai_chat,
    ClientApi.ANTHROPIC_MESSAGES: strategies.anthropic_messages,
    ClientApi.OPENAI_EMBEDDINGS: strategies.openai_embeddings,
}
MODELS = st.sampled_from(sorted(DEFAULT_MODELS)) | st.sampled_from(["", " ", "x" * 300])


def request_bodies(api: ClientApi) -> st.SearchStrategy[Any]:
    """A request of this API (any model, of either provider), up to two places changed."""
    base = st.tuples(BODIES[api], MODELS).map(lambda pair: {**pair[0], "model": pair[1]})
    return strategies.mutated(base)


@pytest.mark.parametrize("wire", list(WIRES.values()), ids=lambda wire: wire.api.value)
@FUZZ
@given(data=st.data())
def test_request_inspectors_take_any_json(wire: ClientWire, data: st.DataObject) -> None:
    """What the pipeline does with a body first (inspect), and then for a chat API what
    a translation to another provider does (to canonical form and back)."""
    any_json = st.dictionaries(st.text(max_size=10), json_values, max_size=5)
    body = data.draw(request_bodies(wire.api) | any_json)
    try:
        wire.codec.inspect_request(body)
        if wire.chat is not None:
            canonical = wire.chat.to_canonical(body)
            for other in WIRES.values():
                if other.chat is not None:
                    other.chat.from_canonical(canonical, "some-model", stream=False)
    except SluiceError as exc:
        assert_client_error(exc)


# -- identity envelope headers ----------------------------------------------------------------

HEADER_SUFFIXES = st.sampled_from(
    ["project", "team", "user-id", "session-id", "workflow-tag", "environment", "cost-center"]
    + ["metadata", "user_id", "other"]
)
PRINCIPAL = Principal(key_id="k1", user_id="alice", team="search", project="p", pinned=("project",))
header_values = (
    st.binary(max_size=80)
    | st.text(max_size=40).map(lambda text: text.encode("utf-8"))
    | st.dictionaries(st.text(max_size=10), json_values, max_size=4).map(_json_text).map(str.encode)
)


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["x-sluice-", "x-tfy-"]).flatmap(
                lambda prefix: HEADER_SUFFIXES.map(lambda suffix: (prefix + suffix).encode())
            ),
            header_values,
        ),
        max_size=5,
    )
)
def test_envelope_reader_takes_any_header_value(headers: list[tuple[bytes, bytes]]) -> None:
    try:
        envelope = EnvelopeReader().read(PRINCIPAL, headers)
    except SluiceError as exc:
        assert_client_error(exc)
    else:
        assert envelope.user_id == "alice"  # pinned: never changed by a header


# -- server-sent events -----------------------------------------------------------------------

sse_lines = st.lists(
    st.sampled_from([b"data: ", b"data:", b"event: ", b": ping", b"id: 1", b"retry: 5", b""])
    .flatmap(lambda field: st.binary(max_size=12).map(lambda value: field + value))
    .map(lambda line: line.replace(b"\r", b"").replace(b"\n", b"")),
    max_size=12,
)


@st.composite
def sse_streams(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    ending = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    body = b"".join(line + ending for line in draw(sse_lines))
    cuts = draw(st.lists(st.integers(0, len(body)), max_size=8))
    return body, sorted(cuts)


def _events(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    return [event for chunk in chunks for event in parser.feed(chunk)]


@FUZZ
@given(sse_streams())
def test_sse_parser_gives_the_same_events_whatever_the_chunking(
    stream: tuple[bytes, list[int]],
) -> None:
    body, cuts = stream
    bounds = [0, *cuts, len(body)]
    chunks = [body[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    assert _events(chunks) == _events([body])
    assert _events(chunks) == _events([body[i : i + 1] for i in range(len(body))])
