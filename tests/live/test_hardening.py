"""No request may stop or stall the server (issue 13), against the real `postlens serve` binary.

One test per class of hostile request: each asserts a clean 4xx/503 in OpenAI's error shape within a bounded time and
that a normal request is served right after. Raw sockets and `http.client` where a client library would not misbehave
the way an attacker does; the official `openai` SDK where it can express the request.
"""
import base64
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import zlib
from pathlib import Path

import openai
import pytest

from conftest import BINARY, MODEL, REPO, Server, health

TIMEOUT = 30  # generous bound for any refusal (seconds)


@pytest.fixture(scope="module")
def server():
    s = Server("--client-timeout", "2", "--max-images", "2", "--kv-cache-budget-mb", "1", "--max-queue", "16",
               "--allow-remote-images", "--allow-image-dir", str(MODEL / "reference"))
    yield s
    s.stop()


def post(base: str, body: bytes, path: str = "/v1/chat/completions", headers: dict | None = None,
         timeout: float = TIMEOUT) -> tuple[int, dict, dict]:
    """POST raw bytes; (status, headers, parsed JSON body)."""
    connection = http.client.HTTPConnection(base.removeprefix("http://"), timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        data = response.read()
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = {}
        return response.status, {k.lower(): v for k, v in response.getheaders()}, parsed
    finally:
        connection.close()


def chat(base: str, **fields) -> tuple[int, dict, dict]:
    body = {"max_tokens": 2, "temperature": 0, "messages": [{"role": "user", "content": "hi"}], **fields}
    return post(base, json.dumps(body).encode())


def assert_openai_error(status: int, body: dict, expected_status: int, code: str | None = None):
    assert status == expected_status, body
    error = body.get("error")
    assert isinstance(error, dict) and set(error) >= {"message", "type", "param", "code"}, body
    assert error["message"]
    if code is not None:
        assert error["code"] == code, body


def assert_serves(base: str):
    status, _, body = chat(base)
    assert status == 200, body
    assert body["choices"][0]["message"]["content"] is not None


def timed(seconds: float, action):
    start = time.monotonic()
    result = action()
    assert time.monotonic() - start < seconds, f"took {time.monotonic() - start:.1f} s"
    return result


# 1. One JSON reader: any byte sequence in any field is answered, never a crash.

def test_json_bodies_of_every_shape_are_answered(server):
    base = server.base
    bodies = [
        b'{"x": "\\ud800\\u0041", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}',
        b'{"max_tokens": 1, "messages": [{"role": "user", "content": "\\udbff\\udbff\\u0000"}]}',
        b'\xef\xbb\xbf{"max_tokens": 1, "messages": [{"role": "user", "content": "bom"}]}',
        b'{"x": ' + b"[" * 100 + b"]" * 100 + b', "max_tokens": 1, "messages": [{"role": "user", "content": "deep"}]}',
    ]
    for body in bodies:
        status, _, parsed = timed(TIMEOUT, lambda: post(base, body))
        assert status == 200, (body[:80], parsed)
    for body, needle in [(b'{"x": ' + b"[" * 60_000 + b"]" * 60_000 + b', "messages": []}', "128 levels"),
                         (b'{"messages": [], "messages": []}', "twice"),
                         (b'{"messages": [{"role": "user", "content": "\xff\xfe"}]}', "UTF-8")]:
        status, _, parsed = timed(TIMEOUT, lambda: post(base, body))
        assert_openai_error(status, parsed, 400)
        assert needle in parsed["error"]["message"], parsed
    assert_serves(base)


# 2. Work limits: schemas, top_k, stop strings, content parts, prompt length.

PATHOLOGICAL_SCHEMAS = {
    "nested quantifiers": {"type": "string", "pattern": "((a{1,100}){1,100}){1,100}"},
    "different branches": {"anyOf": [{"const": f"v{i}"} for i in range(3000)]},
    "huge enum": {"enum": [f"value {i}" for i in range(100_000)]},
    "doubling refs": {"$defs": {**{f"d{i}": {"anyOf": [{"$ref": f"#/$defs/d{i + 1}"},
                                                       {"type": "array", "items": {"$ref": f"#/$defs/d{i + 1}"}}]}
                                   for i in range(30)}, "d30": {"type": "null"}}, "$ref": "#/$defs/d0"},
}


@pytest.mark.parametrize("name", PATHOLOGICAL_SCHEMAS)
def test_pathological_schemas_are_refused_in_bounded_time(server, name):
    client = openai.OpenAI(base_url=server.base + "/v1", api_key="none", max_retries=0, timeout=TIMEOUT)
    start = time.monotonic()
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=4,
                                       response_format={"type": "json_schema", "json_schema": {
                                           "name": "x", "schema": PATHOLOGICAL_SCHEMAS[name]}})
    assert time.monotonic() - start < TIMEOUT
    assert raised.value.body["code"] == "schema_too_complex"
    assert "limit max_" in raised.value.body["message"]
    assert_serves(server.base)


def test_top_k_stop_strings_parts_and_long_prompts_are_bounded(server):
    base = server.base
    for fields, param in [({"top_k": 500_000}, "top_k"), ({"stop": [f"s{i}" for i in range(17)]}, "stop"),
                          ({"stop": ["x" * 300]}, "stop")]:
        status, _, body = timed(TIMEOUT, lambda: chat(base, **fields))
        assert_openai_error(status, body, 400, "limit_exceeded")
        assert body["error"]["param"] == param
    parts = [{"type": "text", "text": f"part {i} "} for i in range(20_000)]
    status, _, body = timed(TIMEOUT, lambda: chat(base, messages=[{"role": "user", "content": parts}]))
    assert_openai_error(status, body, 400, "limit_exceeded")
    long_text = "lorem ipsum " * 1_000_000
    status, _, body = timed(TIMEOUT, lambda: chat(base, messages=[{"role": "user", "content": long_text}]))
    assert_openai_error(status, body, 400, "context_length_exceeded")
    assert_serves(base)


# 3. Memory budgets: images counted and bounded from their headers, the KV-cache budget.

def png_header(width: int, height: int) -> bytes:
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
            + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND")))


def image_message(urls: list[str]) -> list[dict]:
    parts = [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return [{"role": "user", "content": parts + [{"type": "text", "text": "?"}]}]


def test_images_are_bounded_before_decoding(server):
    base = server.base
    real = "data:image/png;base64," + base64.b64encode((MODEL / "reference" / "img_a.png").read_bytes()).decode()
    status, _, body = chat(base, messages=image_message([real, real, real]))
    assert_openai_error(status, body, 400, "too_many_images")
    bomb = "data:image/png;base64," + base64.b64encode(png_header(30_000, 30_000)).decode()
    status, _, body = timed(TIMEOUT, lambda: chat(base, messages=image_message([bomb])))
    assert_openai_error(status, body, 413, "image_too_large")
    # Two 9,000 × 9,000 headers: each under the per-image limit, together over the per-request one (200 MP).
    big = "data:image/png;base64," + base64.b64encode(png_header(9_000, 12_000)).decode()
    status, _, body = timed(TIMEOUT, lambda: chat(base, messages=image_message([big, big])))
    assert_openai_error(status, body, 413, "image_too_large")
    assert_serves(base)


def test_a_full_kv_budget_answers_503_with_retry_after(server):
    # 1 MiB of KV cache: /health says what a cached token costs (2,048 bytes for the tiny model in F32, 1,024 with
    # the BF16 cache of quantized formats on AVX512_BF16 CPUs), so the budget holds `room` tokens: one request of
    # ~88% of them at a time, and one of ~117% never.
    base = server.base
    kv = health(base)["kv_cache"]
    assert kv["budget_bytes"] == 1 << 20 and kv["element"] in ("f32", "bf16"), kv
    assert kv["bytes_per_token"] == (2048 if kv["element"] == "f32" else 1024), kv
    room = (1 << 20) // kv["bytes_per_token"]
    results = []

    def one(i: int):
        results.append(chat(base, max_tokens=room * 450 // 512, temperature=1, seed=i,
                            messages=[{"role": "user", "content": f"story {i}"}]))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    statuses = [status for status, _, _ in results]
    assert 200 in statuses and 503 in statuses, statuses
    for status, headers, body in results:
        if status == 503:
            assert_openai_error(status, body, 503, "kv_cache_full")
            assert headers.get("retry-after") == "2"
    status, _, body = chat(base, max_tokens=room * 600 // 512)
    assert_openai_error(status, body, 400, "context_length_exceeded")
    assert_serves(base)


# 4. Browser-facing safety.

def read_until_closed(sock: socket.socket, wait: float) -> tuple[bytes, bool]:
    """Reads for up to `wait` seconds; what came back and whether the server closed (or reset) the connection."""
    received = b""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return received, False
        except ConnectionResetError:
            return received, True
        if not chunk:
            return received, True
        received += chunk
    return received, False


def raw_request(port: int, text: bytes, wait: float = 10) -> tuple[bytes, bool]:
    """Sends bytes on a fresh connection; returns what came back and whether the server closed the connection."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=wait)
    try:
        sock.sendall(text)
        return read_until_closed(sock, wait)
    finally:
        sock.close()


def test_dns_rebinding_and_cross_site_requests_are_refused(server):
    answer, _ = raw_request(server.port, b"GET /api/export HTTP/1.1\r\nHost: attacker.example:8080\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
    assert b'"host_not_allowed"' in answer
    answer, _ = raw_request(server.port, b"GET /api/export HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    body = json.dumps({"max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}).encode()
    status, _, parsed = post(server.base, body, headers={"Origin": "http://attacker.example"})
    assert_openai_error(status, parsed, 403, "origin_not_allowed")
    status, _, parsed = post(server.base, body, headers={"Content-Type": "text/plain"})
    assert_openai_error(status, parsed, 415, "unsupported_media_type")
    status, _, parsed = post(server.base, b'{"title": "x"}', path="/api/conversations",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_openai_error(status, parsed, 415)
    # CORS is off by default: a preflight gets no Access-Control-Allow-Origin.
    connection = http.client.HTTPConnection(f"127.0.0.1:{server.port}", timeout=TIMEOUT)
    connection.request("OPTIONS", "/v1/chat/completions", headers={"Origin": "http://attacker.example",
                                                                   "Access-Control-Request-Method": "POST"})
    response = connection.getresponse()
    response.read()
    assert response.getheader("Access-Control-Allow-Origin") is None
    connection.close()
    assert_serves(server.base)


def test_an_empty_api_key_is_refused_at_start():
    result = subprocess.run([str(BINARY), "serve", "--model", str(MODEL), "--api-key", ""], capture_output=True, text=True,
                            timeout=60, cwd=REPO)
    assert result.returncode != 0
    assert "--api-key" in result.stderr


# 5. Connections.

def test_an_over_limit_body_is_answered_and_the_connection_closed(server):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    try:
        # No Expect: 100-continue. The client announces 100 MB and starts sending at once.
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100000000\r\n\r\n")
        start = time.monotonic()
        try:
            sock.sendall(b" " * (1 << 20))
        except (BrokenPipeError, ConnectionResetError):
            pass
        received, closed = read_until_closed(sock, 15)
        assert received.startswith(b"HTTP/1.1 413"), received[:200]
        assert b"request_too_large" in received
        assert closed and time.monotonic() - start < 15
    finally:
        sock.close()
    assert_serves(server.base)


def test_slow_headers_and_trickling_bodies_are_cut_off(server):
    start = time.monotonic()
    _, closed = raw_request(server.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nX-Slow: ", wait=15)
    assert closed and time.monotonic() - start < 15
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=1)
    start, closed = time.monotonic(), False
    try:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{")
        while not closed and time.monotonic() - start < 15:
            try:
                sock.sendall(b" ")
                if sock.recv(65536) == b"":
                    closed = True
            except socket.timeout:
                pass
            except (BrokenPipeError, ConnectionResetError):
                closed = True
    finally:
        sock.close()
    assert closed and time.monotonic() - start < 15
    assert_serves(server.base)


# 6. Remote and local images.

@pytest.mark.parametrize("url", ["http://127.0.0.1:1/x.png", "http://localhost/x.png", "http://[::1]/x.png",
                                 "http://[::ffff:127.0.0.1]/x.png", "http://169.254.169.254/latest/meta-data",
                                 "http://[64:ff9b::a9fe:a9fe]/x.png", "http://[2002:7f00:1::1]/x.png", "http://2130706433/x.png"])
def test_remote_images_on_private_addresses_are_refused(server, url):
    status, _, body = timed(TIMEOUT, lambda: chat(server.base, messages=image_message([url])))
    assert_openai_error(status, body, 400)
    assert "private, loopback or link-local" in body["error"]["message"], body
    assert_serves(server.base)


def test_local_images_outside_the_allowed_folder_are_refused(server):
    for url in ["/etc/passwd", "file:///etc/passwd", "../../../../etc/passwd", str(MODEL / "config.json")]:
        status, _, body = chat(server.base, messages=image_message([url]))
        assert_openai_error(status, body, 400)
    assert_serves(server.base)


def test_the_cli_guards_image_references_unless_told_to_trust_them(tmp_path):
    inside = tmp_path / "posts"
    inside.mkdir()
    (inside / "a.png").write_bytes((MODEL / "reference" / "img_a.png").read_bytes())
    outside = tmp_path / "outside.png"
    outside.write_bytes((MODEL / "reference" / "img_a.png").read_bytes())
    records = [{"id": "inside", "image": "a.png"}, {"id": "escape", "image": "../outside.png"},
               {"id": "absolute", "image": str(outside)}, {"id": "metadata", "image": "http://169.254.169.254/x.png"}]
    (inside / "posts.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")

    # The real tiny engine on a task whose answer is one boolean: its constrained answer always closes, so an item
    # whose image was read ends "ok" and one whose image was refused ends "error".
    schema = json.dumps({"type": "object", "properties": {"food": {"type": "boolean"}}, "required": ["food"]})

    def run(*extra: str) -> dict[str, dict]:
        out = tmp_path / f"out{len(extra)}.jsonl"
        done = subprocess.run([str(BINARY), "analyze", "--task", "custom", "--instruction", "Food?", "--schema", schema,
                               "--model", str(MODEL), "--max-image-tokens", "4", "--input", str(inside / "posts.jsonl"),
                               "--output", str(out), *extra], capture_output=True, text=True, timeout=120, cwd=REPO)
        assert done.returncode == 0, done.stderr[-2000:]
        return {line["id"]: line for line in map(json.loads, out.read_text().splitlines())}

    guarded = run()
    assert guarded["inside"]["status"] == "ok", guarded["inside"]
    for key in ["escape", "absolute", "metadata"]:
        assert guarded[key]["status"] == "error", guarded[key]
    trusted = run("--trust-input")
    assert trusted["escape"]["status"] == "ok" and trusted["absolute"]["status"] == "ok", trusted


# 7. Streaming exactness: the deltas add up to the non-streamed answer, byte for byte.

def test_streamed_deltas_equal_the_answer_for_many_seeds(server):
    client = openai.OpenAI(base_url=server.base + "/v1", api_key="none", max_retries=0, timeout=120)
    prompts = ["写一首关于秋天的诗。", "ภาษาไทย กิ๊ก ก้", "नमस्ते दुनिया", "مرحبا", "👩‍👩‍👧 emoji", "plain English"]
    for seed in range(12):
        prompt = prompts[seed % len(prompts)]
        common = dict(model="tiny", messages=[{"role": "user", "content": prompt}], max_tokens=40, temperature=1, seed=seed,
                      stop=["\u0e34", "ab"] if seed % 3 == 0 else None)
        whole = client.chat.completions.create(**common).choices[0].message.content
        streamed = "".join(chunk.choices[0].delta.content or "" for chunk in client.chat.completions.create(stream=True, **common)
                           if chunk.choices)
        assert streamed.encode() == whole.encode(), (seed, streamed, whole)


# 8. Batches: admission limits, and no temporary files (a job's images are stored in its job queue).

def test_batches_are_bounded_and_leave_no_temporary_files(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    s = Server("--max-queue", "1", env={"TMPDIR": str(scratch)})
    try:
        lines = "\n".join(json.dumps({"id": f"p{i}", "text": "x"}) for i in range(10_001)).encode()
        status, _, body = post(s.base, lines, path="/v1/batches?task=sentiment", headers={"Content-Type": "application/x-ndjson"})
        assert_openai_error(status, body, 400, "limit_exceeded")
        # Small lines, a large total: 10,000 records of 104 JSON values each pass every limit of a line, but hold more
        # values together than one body may (1,000,000); the upload is refused whole, as such a chat body would be.
        many = "\n".join(json.dumps({"id": f"p{i}", "meta": [0] * 101}) for i in range(10_000)).encode()
        status, _, body = post(s.base, many, path="/v1/batches?task=sentiment", headers={"Content-Type": "application/x-ndjson"})
        assert_openai_error(status, body, 400, "limit_exceeded")
        assert body["error"]["param"] == "body" and "more than 1000000 JSON values" in body["error"]["message"], body
        # A record whose image header announces 30000×30000 is that item's error; the job is stored all the same.
        bomb = "data:image/png;base64," + base64.b64encode(png_header(30000, 30000)).decode()
        mixed = "\n".join(json.dumps(r) for r in ({"id": "bomb", "image": bomb}, {"id": "fine", "text": "好评"})).encode()
        status, _, bombed = post(s.base, mixed, path="/v1/batches?task=sentiment",
                                 headers={"Content-Type": "application/x-ndjson"})
        assert status == 200 and bombed["total"] == 2 and bombed["failed"] == 1, bombed
        image = "data:image/png;base64," + base64.b64encode((REPO / "Tests" / "Fixtures" / "images" / "tiny_20x30.png").read_bytes()).decode()
        small = "\n".join(json.dumps({"id": f"p{i}", "text": "好评", **({"image": image} if i == 0 else {})}) for i in range(3)).encode()
        status, _, job = post(s.base, small, path="/v1/batches?task=sentiment",
                              headers={"Content-Type": "application/x-ndjson"})
        assert status == 200, job
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            connection = http.client.HTTPConnection(f"127.0.0.1:{s.port}", timeout=TIMEOUT)
            connection.request("GET", f"/v1/batches/{job['id']}")
            state = json.loads(connection.getresponse().read())
            connection.close()
            if state["status"] not in ("queued", "running"):
                break
            time.sleep(0.2)
        assert state["status"] == "completed", state
        assert not list(scratch.iterdir()), f"a batch job wrote temporary files: {list(scratch.iterdir())}"
        assert_serves(s.base)
    finally:
        s.stop()
    assert not list(scratch.iterdir()), "files left after shutdown"


def test_a_client_that_stops_reading_its_stream_loses_its_slot():
    # A JSON schema whose only string must be longer than any answer keeps the model writing for max_tokens; the
    # client reads nothing, so once the socket buffers are full each write waits, and after --client-timeout the
    # server closes the connection, cancels the generation and frees the only queue slot.
    s = Server("--client-timeout", "2", "--max-queue", "1")
    try:
        never_ending = {"type": "object", "properties": {"text": {"type": "string", "minLength": 1000000}}, "required": ["text"]}
        body = json.dumps({"messages": [{"role": "user", "content": "Write."}], "max_tokens": 30000, "temperature": 0,
                           "stream": True, "response_format": {"type": "json_schema",
                                                               "json_schema": {"name": "long", "schema": never_ending}}}).encode()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", s.port))
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        # The slot is taken while the stream runs; a second request meanwhile gets 429.
        time.sleep(1)
        status, _, refused = chat(s.base)
        assert_openai_error(status, refused, 429, "queue_full")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if json.loads(urllib_get(s.base + "/health"))["in_flight"] == 0:
                break
            time.sleep(0.5)
        assert json.loads(urllib_get(s.base + "/health"))["in_flight"] == 0, "a stalled reader kept its queue slot"
        sock.close()
        assert_serves(s.base)
    finally:
        s.stop()


def urllib_get(url: str) -> bytes:
    import urllib.request
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        return response.read()
