"""A thinking model through the official `openai` SDK: `reasoning_content` in plain and streamed answers.

The server runs the `thinking` fixture (Tests/Fixtures/models/thinking): the 2B structure with random weights and the
real Qwen3-VL Thinking chat template, whose prompt opens a `<think>` block. Random weights never close the block by
themselves, so the tests give a reasoning budget (`max_reasoning_tokens`), after which the server closes it and the
answer follows. The SDK keeps fields it does not know (`reasoning_content`, `postlens`) as extras.
"""
from pathlib import Path

import openai
import pytest

from conftest import Server

THINKING = Path(__file__).resolve().parents[2] / "Tests" / "Fixtures" / "models" / "thinking"


@pytest.fixture(scope="module")
def thinking():
    server = Server("--model-id", "thinking", model=THINKING)
    try:
        yield openai.OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0, timeout=60)
    finally:
        server.stop()


def extra(obj, name):
    """A field the SDK's models do not declare, kept as an extra."""
    return (obj.model_extra or {}).get(name)


def ask(client, **kwargs):
    kwargs.setdefault("temperature", 0)
    kwargs.setdefault("max_tokens", 24)
    return client.chat.completions.create(model="thinking", messages=[{"role": "user", "content": "How much more expensive than last year?"}],
                                          **kwargs)


def test_models_say_the_served_model_thinks(thinking):
    [model] = thinking.models.list().data
    assert model.id == "thinking"
    info = extra(model, "postlens")
    assert info["thinking"] is True and info["variant"] == "thinking"


def test_plain_answer_has_reasoning_content_then_content(thinking):
    completion = ask(thinking, extra_body={"max_reasoning_tokens": 6})
    message = completion.choices[0].message
    reasoning = extra(message, "reasoning_content")
    assert isinstance(reasoning, str) and reasoning.strip(), completion
    assert isinstance(message.content, str) and message.content, completion
    assert "</think>" not in reasoning and "</think>" not in message.content and "<think>" not in message.content
    details = completion.usage.completion_tokens_details
    assert details.reasoning_tokens > 6 and details.reasoning_tokens < completion.usage.completion_tokens


def test_streamed_answer_has_reasoning_deltas_first_and_adds_up(thinking):
    plain = ask(thinking, extra_body={"max_reasoning_tokens": 6}).choices[0].message
    reasoning, content, order = [], [], []
    stream = ask(thinking, stream=True, extra_body={"max_reasoning_tokens": 6})
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        piece = extra(delta, "reasoning_content")
        if piece:
            reasoning.append(piece)
            order.append("r")
        if delta.content:
            content.append(delta.content)
            order.append("c")
    assert "".join(reasoning) == extra(plain, "reasoning_content")
    assert "".join(content) == plain.content
    assert order and order[0] == "r" and "r" not in order[order.index("c"):], order


def test_thinking_off_answers_without_reasoning(thinking):
    completion = ask(thinking, max_tokens=8, extra_body={"chat_template_kwargs": {"enable_thinking": False}})
    message = completion.choices[0].message
    assert extra(message, "reasoning_content") is None
    assert message.content
    assert completion.usage.completion_tokens_details.reasoning_tokens == 0


def test_zero_budget_closes_the_block_at_once(thinking):
    completion = ask(thinking, max_tokens=8, extra_body={"max_reasoning_tokens": 0})
    assert extra(completion.choices[0].message, "reasoning_content") == ""
    assert completion.choices[0].message.content


def test_an_instruct_model_refuses_to_think(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "Hi"}], max_tokens=4,
                                       extra_body={"chat_template_kwargs": {"enable_thinking": True}})
    error = refused.value.body
    assert error["param"] == "chat_template_kwargs.enable_thinking" and "no thinking mode" in error["message"]


@pytest.fixture(scope="module")
def client(server):
    from conftest import API_KEY
    return openai.OpenAI(base_url=server["base"] + "/v1", api_key=API_KEY, max_retries=0, timeout=60)
