"""Same-wire streams: the observer forwards bytes untouched and learns usage, model, first
content and the end, parsing JSON only where it must."""

import orjson
import pytest

from sluicegate.model.usage import Usage
from sluicegate.wire import anthropic_messages as am
from sluicegate.wire import anthropic_stream, openai_stream
from sluicegate.wire import openai_chat as oc
from sluicegate.wire.common import string_bytes, string_marker
from sluicegate.wire.sse import SSEEvent
from tests.wire.fixtures import (
    ANTHROPIC_TEXT_STREAM,
    ANTHROPIC_TOOL_STREAM,
    OPENAI_TEXT_STREAM,
    OPENAI_TOOL_STREAM,
    parse_all,
)

OPENAI_STREAM_USAGE = Usage(
    input_tokens=100, output_tokens=20, cache_read_tokens=64, reasoning_tokens=5
)


def _count_parses(monkeypatch, module):
    calls = []
    real = module.load_object

    def counting(data):
        calls.append(data)
        return real(data)

    monkeypatch.setattr(module, "load_object", counting)
    return calls


def test_openai_usage_chunk_hidden_from_a_client_that_did_not_ask():
    observer = oc.PassthroughObserver(include_usage=False)
    events = parse_all(OPENAI_TOOL_STREAM)
    forwarded = [observer.observe(e) for e in events]
    assert forwarded == [True] * 9 + [False, True]
    assert orjson.loads(events[9].data)["choices"] == []
    assert observer.usage == OPENAI_STREAM_USAGE
    assert observer.model == "gpt-4o-2024-08-06"
    assert observer.finished and observer.error is None


def test_openai_usage_chunk_kept_for_a_client_that_asked():
    observer = oc.PassthroughObserver(include_usage=True)
    assert all(observer.observe(e) for e in parse_all(OPENAI_TOOL_STREAM))
    assert observer.usage == OPENAI_STREAM_USAGE


def test_openai_first_content_and_finish():
    observer = oc.PassthroughObserver(include_usage=False)
    events = parse_all(OPENAI_TEXT_STREAM)
    observer.observe(events[0])  # role chunk, empty content: no token yet
    assert not observer.first_content_seen
    observer.observe(events[1])
    assert observer.first_content_seen
    for event in events[2:-1]:
        observer.observe(event)
    assert not observer.finished
    observer.observe(events[-1])
    assert observer.finished
    assert observer.usage == Usage()  # never reported: stays None, not 0


def test_openai_first_content_can_be_a_tool_call():
    observer = oc.PassthroughObserver(include_usage=False)
    events = parse_all(OPENAI_TOOL_STREAM)
    observer.observe(events[0])
    observer.observe(events[3])
    assert observer.first_content_seen


def test_openai_hot_path_parses_only_what_it_must(monkeypatch):
    """OpenAI sends "usage":null on every chunk once usage is requested; those are not
    parsed after the first content."""
    events = parse_all(OPENAI_TOOL_STREAM)
    assert b'"usage":null' in events[4].data
    parses = _count_parses(monkeypatch, openai_stream)
    observer = oc.PassthroughObserver(include_usage=False)
    for event in events:
        observer.observe(event)
    assert len(parses) == 3  # the role chunk, the first content chunk, the usage chunk
    assert observer.usage == OPENAI_STREAM_USAGE


def test_openai_error_chunk_is_recorded_and_forwarded():
    observer = oc.PassthroughObserver(include_usage=False)
    observer.observe(parse_all(OPENAI_TEXT_STREAM)[1])
    error = SSEEvent(None, b'{"error":{"message":"The server had an error","type":"server_error"}}')
    assert observer.observe(error)
    assert observer.error is not None and observer.error.message == "The server had an error"


def test_anthropic_observer(monkeypatch):
    parses = _count_parses(monkeypatch, anthropic_stream)
    observer = am.PassthroughObserver()
    events = parse_all(ANTHROPIC_TOOL_STREAM)
    observer.observe(events[0])
    assert observer.model == "claude-sonnet-4-5-20250929"
    assert observer.usage == Usage(
        input_tokens=100, output_tokens=1, cache_read_tokens=70, cache_write_tokens=20
    )
    assert not observer.first_content_seen
    forwarded = [observer.observe(e) for e in events[1:]]
    assert all(forwarded)
    assert observer.first_content_seen and observer.finished
    assert observer.usage == Usage(
        input_tokens=100, output_tokens=55, cache_read_tokens=70, cache_write_tokens=20
    )
    assert len(parses) == 3  # message_start, message_delta, message_stop


def test_anthropic_observer_not_finished_without_message_stop():
    observer = am.PassthroughObserver(include_usage=False)
    for event in parse_all(ANTHROPIC_TOOL_STREAM)[:-1]:
        observer.observe(event)
    assert not observer.finished


def test_anthropic_error_event_is_recorded_and_forwarded():
    observer = am.PassthroughObserver()
    event = SSEEvent(
        "error", b'{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}'
    )
    assert observer.observe(event)
    assert observer.error is not None and observer.error.upstream_status == 529


def _content_pieces(events: list[SSEEvent]) -> list[str]:
    """The generated content a stream carries: what a left-early estimate counts."""
    pieces = []
    for event in events:
        data = orjson.loads(event.data) if event.data != b"[DONE]" else {}
        for choice in data.get("choices") or []:
            delta = choice.get("delta") or {}
            pieces += [delta[k] for k in ("content", "refusal") if delta.get(k)]
            for call in delta.get("tool_calls") or []:
                pieces.append((call.get("function") or {}).get("arguments") or "")
        delta = data.get("delta") or {}
        if data.get("type") == "content_block_delta":
            pieces += [delta[k] for k in ("text", "partial_json", "thinking") if k in delta]
    return pieces


@pytest.mark.parametrize(
    ("wire", "raw", "reported"),
    [
        (oc, OPENAI_TEXT_STREAM, False),  # no usage chunk at all: always an estimate
        (oc, OPENAI_TOOL_STREAM, True),
        (am, ANTHROPIC_TEXT_STREAM, True),
        (am, ANTHROPIC_TOOL_STREAM, True),
    ],
    ids=["openai-text", "openai-tool", "anthropic-text", "anthropic-tool"],
)
def test_content_is_counted_for_the_estimate_and_usage_is_final_only_at_the_end(
    wire, raw, reported
):
    """Both the untouched relay (raw bytes, no parse) and the translating one count every
    piece of generated content; the provider's usage is final only once its closing
    report came, so a stream cut before that is estimated."""
    events = parse_all(raw)
    pieces = _content_pieces(events)
    assert pieces
    observer, decoder = wire.PassthroughObserver(include_usage=True), wire.StreamDecoder()
    for event in events[:-2]:
        observer.observe(event)
        decoder.feed(event)
    assert not observer.usage_final and not decoder.usage_final
    for event in events[-2:]:
        observer.observe(event)
        decoder.feed(event)
    assert observer.usage_final is decoder.usage_final is reported
    assert decoder.content_chars == sum(len(p) for p in pieces)
    as_written = sum(len(orjson.dumps(p)) - 2 for p in pieces)  # escapes count as written
    assert observer.content_chars == as_written


def test_string_bytes_reads_a_value_without_parsing():
    content, text = string_marker("content"), string_marker("text")
    assert string_bytes(b'{"delta":{"content":"Hello"}}', content) == 5
    assert string_bytes(b'{"delta":{"content":null}}', content) == 0
    assert string_bytes(b'{"type":"text","text":"a\\"b"}', text) == 4
    assert string_bytes(b'{"text": "a\\\\"}', text) == 3  # spaced JSON, escaped backslash
    assert string_bytes(b'{"other":"x"}', text) == 0
