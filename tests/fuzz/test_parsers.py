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
from pathlib import Path
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
from sluicegate.wire.registry import WIRES, ClientWire
from sluicegate.wire.sse import SSEEvent, SSEParser

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
# a longer, random hunt: SLUICEGATE_FUZZ_SCALE=20 SLUICEGATE_FUZZ_RANDOM=1 pytest tests/fuzz
SCALE = int(os.environ.get("SLUICEGATE_FUZZ_SCALE", "1"))
FUZZ = settings(
    max_examples=150 * SCALE,
    derandomize=os.environ.get("SLUICEGATE_FUZZ_RANDOM") != "1",
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def assert_client_error(exc: SluiceError) -> None:
    assert 400 <= exc.status < 500, f"{type(exc).__name__} {exc.status}: {exc}"


# -- config documents -------------------------------------------------------------------------

REGISTRY = DocumentRegistry()
EXAMPLE_DOCUMENTS = [
    document
    for path in sorted(EXAMPLES_DIR.glob("*.yaml"))
    for document in yaml.safe_load_all(path.read_text())
    if isinstance(document, dict)
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a document a value sits (dict keys and list indexes)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replaced(document: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        return {**document, head: _replaced(document[head], rest, new)}
    return [_replaced(item, rest, new) if i == head else item for i, item in enumerate(document)]


@st.composite
def mutated_documents(draw: st.DrawFn) -> Any:
    """A shipped example with one to three values replaced by any JSON value."""
    document = draw(st.sampled_from(EXAMPLE_DOCUMENTS))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(document)))
        document = _replaced(document, path, draw(json_values))
    return document


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
    assert EXAMPLE_DOCUMENTS, f"no examples under {EXAMPLES_DIR}"
    text = yaml.safe_dump(document) if not as_json else _json_text(document)
    parses_or_config_error(text)


def _json_text(document: Any) -> str:
    return json.dumps(document)  # stdlib: integers past 64 bits too


# -- client API requests ----------------------------------------------------------------------

ROLES = st.sampled_from(["user", "assistant", "system", "developer", "tool", "bogus"])
BLOCK_TYPES = st.sampled_from(["text", "image", "tool_use", "tool_result", "document", "thinking"])


def _maybe(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


blocks = st.recursive(
    _maybe(type=BLOCK_TYPES, text=json_values, source=json_values, id=json_values)
    | _maybe(type=BLOCK_TYPES, name=json_values, input=json_values, tool_use_id=json_values),
    lambda inner: _maybe(type=BLOCK_TYPES, content=st.lists(inner, max_size=3) | json_values),
    max_leaves=6,
)
messages = _maybe(
    role=ROLES,
    content=st.text(max_size=10) | st.lists(blocks, max_size=3) | json_values,
    tool_calls=json_values,
    tool_call_id=json_values,
    name=json_values,
)
request_bodies = st.fixed_dictionaries(
    {"model": st.sampled_from(["gpt-4o-mini", "claude-haiku-4-5", ""]) | json_values},
    optional={
        "messages": st.lists(messages, max_size=3) | json_values,
        "input": st.text(max_size=10) | st.lists(json_values, max_size=3) | json_values,
        "max_tokens": json_values,
        "max_completion_tokens": json_values,
        "stream": json_values,
        "stream_options": json_values,
        "system": json_values | st.lists(blocks, max_size=2),
        "tools": st.lists(json_values | blocks, max_size=2) | json_values,
        "tool_choice": json_values,
        "stop": json_values,
        "temperature": json_values,
        "metadata": json_values,
    },
)


@pytest.mark.parametrize("wire", list(WIRES.values()), ids=lambda wire: wire.api.value)
@FUZZ
@given(body=request_bodies | st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_request_inspectors_take_any_json(wire: ClientWire, body: dict[str, Any]) -> None:
    """What the pipeline does with a body first (inspect), and then for a chat API what
    a translation to another provider does (to canonical form and back)."""
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
