"""8 concurrent streaming clients × 5 requests against `postlens serve` (loopback only, bounded loops).

All complete; greedy outputs equal the same requests run one at a time (continuous batching must not change
answers); deliberate 429s only when the queue is small; the server's RSS after the run stays within 10% of its
RSS after the first round.
"""
import os
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import openai
import pytest

from conftest import BINARY, MODEL, _free_port, health, stop_process

QUESTIONS = [f"Question {i}: describe a product photo in one sentence." for i in range(8)]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@pytest.fixture(scope="module")
def busy_server():
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: run `swift build` first", pytrace=False)
    port = _free_port()
    log = tempfile.NamedTemporaryFile(prefix="postlens-concurrency-", suffix=".log", delete=False)
    process = subprocess.Popen([str(BINARY), "serve", "--model", str(MODEL), "--port", str(port), "--max-queue", "16",
                                "--no-history"], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        def ready() -> bool:
            try:
                return health(base).get("status") == "ready"
            except OSError:  # not listening yet
                return False

        while not ready():
            if process.poll() is not None or time.time() > deadline:
                pytest.fail(f"server did not start:\n{Path(log.name).read_text()[-3000:]}", pytrace=False)
            time.sleep(0.2)
        yield {"base": base, "pid": process.pid}
    finally:
        stop_process(process)


def stream_answer(client, question: str) -> str:
    parts = []
    stream = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": question}],
                                            temperature=0, max_tokens=12, stream=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
    return "".join(parts)


def test_eight_concurrent_streaming_clients(busy_server):
    client = openai.OpenAI(base_url=busy_server["base"] + "/v1", api_key="unused", max_retries=0, timeout=120)
    alone = {q: stream_answer(client, q) for q in QUESTIONS}
    results: dict[tuple[int, int], str] = {}
    errors: list[BaseException] = []
    rss_after_first_round = []

    def worker(index: int):
        try:
            for round_ in range(5):
                results[(index, round_)] = stream_answer(client, QUESTIONS[index])
                if round_ == 0 and index == 0:
                    rss_after_first_round.append(rss_kb(busy_server["pid"]))
        except BaseException as error:  # recorded and asserted below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert len(results) == 40
    for (index, _), text in results.items():
        assert text == alone[QUESTIONS[index]], f"client {index} got a different greedy answer under load"
    assert health(busy_server["base"])["in_flight"] == 0
    rss_end = rss_kb(busy_server["pid"])
    assert rss_after_first_round and rss_end <= rss_after_first_round[0] * 1.10, (rss_after_first_round, rss_end)


def test_small_queue_answers_429_and_keeps_serving(server):
    """With --max-queue 1 (the shared live server), concurrent requests get 429s and the rest succeed."""
    from conftest import API_KEY
    client = openai.OpenAI(base_url=server["base"] + "/v1", api_key=API_KEY, max_retries=0, timeout=60)
    outcomes: list[str] = []

    def one():
        try:
            stream_answer(client, "Say something.")
            outcomes.append("ok")
        except openai.RateLimitError:
            outcomes.append("429")

    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert "ok" in outcomes and set(outcomes) <= {"ok", "429"}
    assert stream_answer(client, "Still there?") is not None
