"""Hypothesis strategies shared by the fuzz tests: arbitrary JSON, and inputs that are
valid first and then mutated (a value swapped for a boundary value, another type, another
field's value, or removed), so that most examples get past the first check and reach the
code behind it: validation, compilation, translation, the provider and back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"

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

# Values at the edges of what a field of each type may hold.
_BOUNDARIES: dict[type, list[Any]] = {
    bool: [True, False],
    int: [0, -1, 1, 2, 2**31, 2**63, 10**30, 1.5],
    float: [0.0, -0.5, 1e-9, 1e308, 0.999999],
    str: [
        "",
        " ",
        "0",
        "-1",
        "1e999",
        "*",
        "x" * 300,
        "\u00e9\u4e2d",
        "a\u0000b",
        "1h",
        "2026-01-01",
    ],
    list: [[], [None], ["x"]],
    dict: [{}, {"x": None}],
}


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


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


def _replaced(document: Any, path: tuple[Any, ...], new: Any, *, delete: bool = False) -> Any:
    head, rest = path[0], path[1:]
    if not rest and delete:
        if isinstance(document, dict):
            return {k: v for k, v in document.items() if k != head}
        return [item for i, item in enumerate(document) if i != head]
    new_value = new if not rest else _replaced(document[head], rest, new, delete=delete)
    if isinstance(document, dict):
        return {**document, head: new_value}
    return [new_value if i == head else item for i, item in enumerate(document)]


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[Any], most: int = 2) -> Any:
    """A valid value from `base` with up to `most` places changed."""
    value = draw(base)
    for _ in range(draw(st.integers(0, most))):
        paths = [p for p in _paths(value) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        old = _at(value, path)
        how = draw(st.sampled_from(["boundary", "boundary", "swap", "delete", "any"]))
        if how == "delete":
            value = _replaced(value, path, None, delete=True)
            continue
        if how == "boundary":
            new = draw(st.sampled_from(_BOUNDARIES.get(type(old), _BOUNDARIES[str])))
        elif how == "swap":
            new = _at(value, draw(st.sampled_from(paths)))
        else:
            new = draw(json_values)
        value = _replaced(value, path, new)
    return value


# -- config documents -------------------------------------------------------------------------

EXAMPLE_DOCUMENTS = [
    document
    for path in sorted(EXAMPLES_DIR.glob("*.yaml"))
    for document in yaml.safe_load_all(path.read_text())
    if isinstance(document, dict)
]


def mutated_documents() -> st.SearchStrategy[Any]:
    """A shipped example document (each validates) with up to three values changed."""
    return mutated(st.sampled_from(EXAMPLE_DOCUMENTS), most=3)


# -- client API requests ----------------------------------------------------------------------

_text = st.text(max_size=30)
_schema = st.sampled_from(
    [
        {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}},
        {"type": "object"},
        {"type": "array", "items": {"type": "number"}, "minItems": 2},
    ]
)
_png = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


def _maybe(required: dict[str, Any], **optional: st.SearchStrategy[Any]) -> Any:
    return st.fixed_dictionaries(required, optional=optional)


_openai_part = st.sampled_from(["text", "image_url"]).flatmap(
    lambda kind: (
        st.fixed_dictionaries({"type": st.just("text"), "text": _text})
        if kind == "text"
        else st.just({"type": "image_url", "image_url": {"url": f"data:image/png;base64,{_png}"}})
    )
)
_openai_message = st.one_of(
    _maybe({"role": st.sampled_from(["user", "system", "developer"]), "content": _text}),
    _maybe({"role": st.just("user"), "content": st.lists(_openai_part, min_size=1, max_size=3)}),
    _maybe({"role": st.just("assistant"), "content": _text}),
    _maybe(
        {
            "role": st.just("assistant"),
            "tool_calls": st.just(
                [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
            ),
        }
    ),
    _maybe({"role": st.just("tool"), "tool_call_id": st.just("call_1"), "content": _text}),
)
_openai_tool = _maybe(
    {"type": st.just("function"), "function": _maybe({"name": st.just("f")}, parameters=_schema)}
)
openai_chat = _maybe(
    {"messages": st.lists(_openai_message, min_size=1, max_size=4)},
    max_tokens=st.integers(1, 300),
    max_completion_tokens=st.integers(1, 300),
    temperature=st.floats(0, 2),
    top_p=st.floats(0, 1),
    stop=_text | st.lists(_text, max_size=3),
    tools=st.lists(_openai_tool, min_size=1, max_size=2),
    tool_choice=st.sampled_from(
        ["auto", "none", "required", {"type": "function", "function": {"name": "f"}}]
    ),
    parallel_tool_calls=st.booleans(),
    stream_options=st.just({"include_usage": True}),
    user=_text,
    n=st.integers(1, 3),
    response_format=st.sampled_from([{"type": "text"}, {"type": "json_object"}]),
)

_anthropic_block = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": _text}),
    st.just(
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": _png}}
    ),
)
_anthropic_message = st.one_of(
    _maybe({"role": st.sampled_from(["user", "assistant"]), "content": _text}),
    _maybe(
        {"role": st.just("user"), "content": st.lists(_anthropic_block, min_size=1, max_size=3)}
    ),
    st.just(
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}],
        }
    ),
    st.just(
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}],
        }
    ),
)
anthropic_messages = _maybe(
    {
        "messages": st.lists(_anthropic_message, min_size=1, max_size=4),
        "max_tokens": st.integers(1, 300),
    },
    system=_text | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": _text})),
    temperature=st.floats(0, 1),
    top_p=st.floats(0, 1),
    stop_sequences=st.lists(_text, max_size=3),
    tools=st.lists(_maybe({"name": st.just("f"), "input_schema": _schema}), min_size=1, max_size=2),
    tool_choice=st.sampled_from(
        [{"type": "auto"}, {"type": "any"}, {"type": "none"}, {"type": "tool", "name": "f"}]
    ),
    metadata=st.fixed_dictionaries({"user_id": _text}),
)
openai_embeddings = _maybe(
    {
        "input": _text
        | st.lists(_text, min_size=1, max_size=3)
        | st.lists(st.integers(0, 50_000), min_size=1, max_size=5)
    },
    encoding_format=st.sampled_from(["float", "base64"]),
    dimensions=st.integers(1, 64),
)
