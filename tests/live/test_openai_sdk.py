"""The official `openai` SDK against `postlens serve` on the tiny fixture model (see conftest.py)."""
import base64
import struct
import threading
import time
import zlib
from pathlib import Path

import urllib.request
import openai
import pytest

from conftest import API_KEY, MAX_QUEUE, MODEL, health

REFERENCE = MODEL / "reference"
IMAGES = Path(__file__).resolve().parents[2] / "Tests" / "Fixtures" / "images"


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server["base"] + "/v1", api_key=API_KEY, max_retries=0, timeout=60)


def data_url(path: Path, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def image_part(url: str, detail: str | None = None) -> dict:
    image = {"url": url}
    if detail:
        image["detail"] = detail
    return {"type": "image_url", "image_url": image}


def ask(client, content, **kwargs):
    kwargs.setdefault("temperature", 0)
    kwargs.setdefault("max_tokens", 8)
    return client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": content}], **kwargs)


def png_announcing(width: int, height: int) -> bytes:
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
            + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND")))


def test_models_lists_the_fixture(client):
    models = client.models.list()
    assert [m.id for m in models.data] == ["tiny"]


def test_plain_completion(client):
    completion = ask(client, "Describe the weather.")
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "tiny"
    choice = completion.choices[0]
    assert choice.index == 0 and choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content
    assert choice.finish_reason in ("stop", "length")
    assert completion.usage.completion_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    assert completion.usage.model_extra["postlens"]["ttft_ms"] >= 0
    # Greedy is deterministic.
    assert ask(client, "Describe the weather.").choices[0].message.content == choice.message.content


def test_streaming_with_include_usage(client):
    plain = ask(client, "Count to five.", max_tokens=10)
    stream = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Count to five."}], temperature=0, max_tokens=10,
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == [plain.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == plain.usage.completion_tokens


def test_image_data_url(client):
    completion = ask(client, [image_part(data_url(REFERENCE / "img_a.png")), {"type": "text", "text": "What is this?"}])
    assert completion.choices[0].message.content
    assert completion.usage.model_extra["postlens"]["image_tokens"] > 0


def test_mislabelled_jpeg_is_sniffed(client):
    completion = ask(client, [image_part(data_url(IMAGES / "gray.jpg", "image/png")), {"type": "text", "text": "?"}])
    assert completion.choices[0].finish_reason in ("stop", "length")


def test_two_images_and_detail(client):
    one = ask(client, [image_part(data_url(REFERENCE / "img_a.png")), {"type": "text", "text": "Compare."}])
    two = ask(client, [image_part(data_url(REFERENCE / "img_a.png"), "high"),
                       image_part(data_url(REFERENCE / "img_b.png"), "low"), {"type": "text", "text": "Compare."}])
    assert two.usage.model_extra["postlens"]["image_tokens"] > one.usage.model_extra["postlens"]["image_tokens"]


def test_local_file_under_allowed_dir(client):
    completion = ask(client, [image_part(str(REFERENCE / "img_c.png")), {"type": "text", "text": "?"}])
    assert completion.usage.model_extra["postlens"]["image_tokens"] > 0
    with pytest.raises(openai.BadRequestError):
        ask(client, [image_part(str(REFERENCE / ".." / "config.json")), {"type": "text", "text": "?"}])


def test_multi_turn(client):
    completion = client.chat.completions.create(model="tiny", temperature=0, max_tokens=8, messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [image_part(data_url(REFERENCE / "img_c.png")), {"type": "text", "text": "What is it?"}]},
        {"role": "assistant", "content": "A picture."},
        {"role": "user", "content": "What colour?"},
    ])
    assert completion.choices[0].message.content


def test_logprobs(client):
    completion = ask(client, "Hello", max_tokens=5, logprobs=True, top_logprobs=2)
    content = completion.choices[0].logprobs.content
    assert len(content) == completion.usage.completion_tokens
    for entry in content:
        assert entry.logprob <= 0 and isinstance(entry.bytes, list) and len(entry.top_logprobs) == 2
        assert abs(entry.top_logprobs[0].logprob - entry.logprob) < 1e-5


def test_stop_strings(client):
    free = ask(client, "Tell me a story.", max_tokens=24).choices[0].message.content
    assert len(free) >= 8, f"greedy answer too short to cut: {free!r}"
    stop = free[4:7]
    cut = free[:free.index(stop)]
    completion = ask(client, "Tell me a story.", max_tokens=24, stop=[stop, "never-appears"])
    assert completion.choices[0].message.content == cut
    assert completion.choices[0].finish_reason == "stop"


def test_seed_reproducibility(client):
    kwargs = dict(temperature=1.0, top_p=0.95, seed=7, max_tokens=12)
    a = ask(client, "Write anything.", **kwargs).choices[0].message.content
    b = ask(client, "Write anything.", **kwargs).choices[0].message.content
    assert a == b


def test_bad_request_errors(client):
    with pytest.raises(openai.BadRequestError) as info:
        ask(client, "hi", n=2)
    assert info.value.body["param"] == "n"
    with pytest.raises(openai.BadRequestError) as info:
        ask(client, "hi", extra_body={"temperature": "hot"})
    assert info.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as info:
        ask(client, [image_part("https://example.com/cat.png"), {"type": "text", "text": "?"}])
    assert info.value.code == "unsupported_image_url"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])


def test_authentication_error(server):
    wrong = openai.OpenAI(base_url=server["base"] + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}])
    with urllib.request.urlopen(server["base"] + "/health", timeout=5) as response:  # no key needed
        assert response.status == 200


def test_image_too_large_is_413(client):
    url = "data:image/png;base64," + base64.b64encode(png_announcing(30000, 30000)).decode()
    with pytest.raises(openai.APIStatusError) as info:
        ask(client, [image_part(url), {"type": "text", "text": "?"}])
    assert info.value.status_code == 413
    with pytest.raises(openai.UnprocessableEntityError):
        ask(client, [image_part("data:image/png;base64," + base64.b64encode(b"\x00" * 100).decode()), {"type": "text", "text": "?"}])


def test_queue_full_is_429_and_disconnect_cancels(client, server):
    """A long stream holds the only slot: a second request gets 429. Closing the stream frees the slot."""
    stream = client.chat.completions.create(
        model="tiny", messages=[{"role": "user", "content": "Go on forever."}], temperature=1.0,
        max_tokens=30000, stream=True)
    chunks = iter(stream)
    next(chunks)
    next(chunks)
    assert health(server["base"])["in_flight"] == MAX_QUEUE
    with pytest.raises(openai.RateLimitError) as info:
        ask(client, "hi")
    assert info.value.response.headers.get("retry-after")
    stream.close()
    deadline = time.monotonic() + 10
    while health(server["base"])["in_flight"] != 0:
        assert time.monotonic() < deadline, "the generation was not cancelled after the client went away"
        time.sleep(0.05)
    # Had the generation gone on, this would wait behind up to 30,000 tokens.
    start = time.monotonic()
    assert ask(client, "hi").choices[0].message.content is not None
    assert time.monotonic() - start < 10


def test_server_greedy_text_equals_postlens_ask(client):
    """The same question and image through the server and through `postlens ask` give the same greedy text."""
    import subprocess
    from conftest import BINARY
    image = REFERENCE / "img_a.png"
    completion = ask(client, [image_part(data_url(image)), {"type": "text", "text": "Describe this image."}], max_tokens=16)
    cli = subprocess.run([str(BINARY), "ask", "--model", str(MODEL), "--image", str(image), "--temperature", "0",
                          "--max-tokens", "16", "Describe this image."], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout == completion.choices[0].message.content + "\n"
