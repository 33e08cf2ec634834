"""Switching the served model through the official `openai` SDK: `postlens serve --model tiny --offer thinking`.

`models.list()` shows both offered models with their status; a request for the one not loaded is a 409 that says how
to switch; `POST /v1/models/load` (the SDK's generic `post`) switches, after which the thinking model answers with
`reasoning_content` under its own id.
"""
import time
from pathlib import Path

import openai
import pytest

from conftest import Server, health

THINKING = Path(__file__).resolve().parents[2] / "Tests" / "Fixtures" / "models" / "thinking"


@pytest.fixture(scope="module")
def offering():
    server = Server("--model-id", "tiny", "--offer", str(THINKING))
    try:
        yield server, openai.OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0, timeout=60)
    finally:
        server.stop()


def statuses(client):
    return [(m.id, (m.model_extra or {}).get("postlens", {}).get("status")) for m in client.models.list().data]


def test_the_sdk_lists_both_models_and_switches_between_them(offering):
    server, client = offering
    assert statuses(client) == [("tiny", "loaded"), ("thinking", "available")]
    with pytest.raises(openai.ConflictError) as refused:
        client.chat.completions.create(model="thinking", max_tokens=2, messages=[{"role": "user", "content": "Hi"}])
    assert refused.value.code == "model_not_loaded" and "/v1/models/load" in refused.value.message

    started = client.post("/models/load", body={"model": "thinking"}, cast_to=object)
    assert started == {"model": "thinking", "status": "loading", "previous": "tiny"}
    deadline = time.monotonic() + 60
    while health(server.base).get("status") != "ready" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert health(server.base)["model"] == "thinking"
    assert statuses(client) == [("thinking", "loaded"), ("tiny", "available")]

    answer = client.chat.completions.create(model="thinking", temperature=0, max_tokens=16, extra_body={"max_reasoning_tokens": 4},
                                            messages=[{"role": "user", "content": "How much more expensive than last year?"}])
    assert answer.model == "thinking"
    assert (answer.choices[0].message.model_extra or {}).get("reasoning_content")
    # Already served: nothing to do.
    assert client.post("/models/load", body={"model": "thinking"}, cast_to=object) == {"model": "thinking", "status": "loaded"}
