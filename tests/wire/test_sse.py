import random

import pytest

from sluicegate.wire.sse import SSEEvent, SSEParser, encode_sse
from tests.wire.fixtures import ANTHROPIC_TOOL_STREAM, OPENAI_TOOL_STREAM, parse_all


def _feed_in_pieces(raw: bytes, cuts: list[int]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    bounds = [0, *sorted(cuts), len(raw)]
    for start, end in zip(bounds, bounds[1:]):
        events.extend(parser.feed(raw[start:end]))
    return events


def test_parses_named_events_and_data():
    raw = b'event: message_start\ndata: {"a":1}\n\ndata: [DONE]\n\n'
    assert parse_all(raw) == [SSEEvent("message_start", b'{"a":1}'), SSEEvent(None, b"[DONE]")]


def test_comments_blank_lines_and_unknown_fields_are_ignored():
    raw = b": keep-alive\n\n\nid: 7\nretry: 100\nfoo: bar\ndata: x\n\n"
    assert parse_all(raw) == [SSEEvent(None, b"x")]


def test_multiline_data_joins_with_lf_and_optional_space():
    raw = b"data: line one\ndata:line two\ndata:\n\n"
    assert parse_all(raw) == [SSEEvent(None, b"line one\nline two\n")]


def test_event_name_resets_after_dispatch_and_without_data():
    raw = b"event: ping\n\ndata: a\n\n"
    assert parse_all(raw) == [SSEEvent(None, b"a")]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(newline):
    raw = b"event: e\ndata: 1\n\ndata: 2\n\n".replace(b"\n", newline)
    assert parse_all(raw) == [SSEEvent("e", b"1"), SSEEvent(None, b"2")]


def test_incomplete_event_waits_for_more():
    parser = SSEParser()
    assert parser.feed(b"data: par") == []
    assert parser.feed(b"tial\n") == []
    assert parser.feed(b"\n") == [SSEEvent(None, b"partial")]


def test_crlf_split_between_chunks_is_one_line_end():
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"") == []
    assert parser.feed(b"\n\r") == [SSEEvent(None, b"a")]
    assert parser.feed(b"\ndata: b\r\n\r\n") == [SSEEvent(None, b"b")]


@pytest.mark.parametrize(
    "raw",
    [OPENAI_TOOL_STREAM, ANTHROPIC_TOOL_STREAM, ANTHROPIC_TOOL_STREAM.replace(b"\n", b"\r\n")],
)
def test_every_single_split_point_gives_the_same_events(raw):
    expected = parse_all(raw)
    assert len(expected) > 5
    for cut in range(len(raw) + 1):
        assert _feed_in_pieces(raw, [cut]) == expected


@pytest.mark.parametrize(
    "raw",
    [
        OPENAI_TOOL_STREAM,
        ANTHROPIC_TOOL_STREAM.replace(b"\n", b"\r\n"),
        ANTHROPIC_TOOL_STREAM.replace(b"\n", b"\r"),
    ],
)
def test_random_chunk_boundaries_give_the_same_events(raw):
    expected = parse_all(raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
    rng = random.Random(1234)
    for _ in range(300):
        cuts = rng.sample(range(len(raw)), rng.randint(1, 40))
        assert _feed_in_pieces(raw, cuts) == expected


def test_byte_by_byte():
    raw = OPENAI_TOOL_STREAM.replace(b"\n", b"\r\n")
    assert _feed_in_pieces(raw, list(range(len(raw)))) == parse_all(OPENAI_TOOL_STREAM)


def test_encode_round_trips():
    assert encode_sse(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert encode_sse(b"x", "ping") == b"event: ping\ndata: x\n\n"
    multi = encode_sse(b"one\ntwo\r\nthree")
    assert multi == b"data: one\ndata: two\ndata: three\n\n"
    assert parse_all(multi) == [SSEEvent(None, b"one\ntwo\nthree")]
    event = SSEEvent("message_stop", b'{"type":"message_stop"}')
    assert parse_all(event.encode()) == [event]
