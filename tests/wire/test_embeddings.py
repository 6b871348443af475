import pytest

from sluicegate.errors import InvalidRequest
from sluicegate.model.usage import Usage
from sluicegate.wire import openai_chat
from sluicegate.wire import openai_embeddings as emb


@pytest.mark.parametrize(
    ("value", "tokens"),
    [
        ("a" * 400, 100),
        (["a" * 400, "b" * 40], 110),
        ([1, 2, 3, 4], 4),
        ([[1, 2], [3, 4, 5]], 5),
    ],
)
def test_inputs_and_estimates(value, tokens):
    facts = emb.inspect_request(
        {"model": "text-embedding-3-small", "input": value, "dimensions": 256}
    )
    assert facts.model == "text-embedding-3-small"
    assert facts.estimated_input_tokens == tokens
    assert (facts.stream, facts.max_output_tokens, facts.include_usage) == (False, 0, False)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": 5}, "input"),
        ({"model": "m", "input": []}, "input"),
        ({"model": "m", "input": ["a", [1]]}, "input"),
        ({"model": "m", "input": [{"text": "a"}]}, "input[0]"),
    ],
)
def test_bad_bodies(body, param):
    with pytest.raises(InvalidRequest) as caught:
        emb.inspect_request(body)
    assert caught.value.param == param


def test_usage_and_model():
    body = {
        "object": "list",
        "data": [],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
    assert emb.usage_from_response(body) == Usage(input_tokens=8)
    assert emb.usage_from_response({"data": []}) == Usage()
    assert emb.response_model(body) == "text-embedding-3-small"
    assert emb.render_error is openai_chat.render_error


def test_passthrough():
    body = {"model": "small", "input": "x"}
    assert emb.prepare_passthrough(body, "text-embedding-3-small") == {
        "model": "text-embedding-3-small",
        "input": "x",
    }
    assert body["model"] == "small"
