"""A client that goes away cancels its non-streaming request, and keep-alive connections still serve request after request.

A JSON schema whose only string must be longer than any answer keeps the fixture model decoding until `max_tokens`, so
a request runs as long as we choose. First the same chat request is timed running to its end; then it is sent on a raw
socket that is closed mid-generation, and the server must free the slot (`in_flight` 0, engine idle) within a third of
that time. Without cancellation on disconnect it stays busy until the generation ends.
"""
import http.client
import json
import re
import socket
import time
import urllib.request

import pytest

from conftest import API_KEY, health

NEVER_ENDING = {"type": "object", "properties": {"text": {"type": "string", "minLength": 1000000}}, "required": ["text"]}


def chat_body(max_tokens: int, **extra) -> dict:
    return {"model": "tiny", "messages": [{"role": "user", "content": "Write a very long text."}], "temperature": 0,
            "max_tokens": max_tokens,
            "response_format": {"type": "json_schema", "json_schema": {"name": "long", "schema": NEVER_ENDING}}, **extra}


def analyze_body(max_tokens: int) -> dict:
    return {"task": "custom", "text": "A post.",
            "options": {"instruction": "Write a very long text.", "schema": NEVER_ENDING, "max_tokens": max_tokens}}


def post_json(base: str, path: str, body: dict, timeout: float) -> dict:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def metrics(base: str) -> dict[tuple[str, frozenset], float]:
    """`/metrics` as {(name, labels): value}."""
    with urllib.request.urlopen(base + "/metrics", timeout=5) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if match:
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
            values[(match.group(1), labels)] = float(match.group(3))
    return values


def busy(base: str) -> tuple[int, float]:
    """(requests in flight, requests the engine is prefilling or decoding)."""
    return health(base)["in_flight"], metrics(base).get(("postlens_engine_active_requests", frozenset()), 0.0)


def answered_499(base: str, route: str) -> float:
    key = ("postlens_http_requests_total", frozenset({("route", route), ("method", "POST"), ("status", "499")}))
    return metrics(base).get(key, 0.0)


def wait_until(condition, seconds: float, message: str) -> float:
    """Polls `condition` until it holds; returns the seconds it took, fails after `seconds`."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, message
        time.sleep(0.02)
    return time.monotonic() - start


def open_request(port: int, path: str, body: dict) -> socket.socket:
    """Sends a whole request on a new raw socket and leaves the answer unread."""
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {API_KEY}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data)
    return sock


@pytest.fixture(scope="module")
def long_request(server):
    """(max_tokens, seconds): a non-streaming chat request that runs to max_tokens, and how long it takes alone.

    max_tokens doubles until the request takes at least 3 s (at most 16,000 tokens, within the context)."""
    base = server["base"]
    wait_until(lambda: busy(base) == (0, 0), 120, "the server is not idle")
    for max_tokens in (2000, 4000, 8000, 16000):
        start = time.monotonic()
        answer = post_json(base, "/v1/chat/completions", chat_body(max_tokens), timeout=300)
        seconds = time.monotonic() - start
        assert answer["usage"]["completion_tokens"] == max_tokens
        assert answer["choices"][0]["finish_reason"] == "length"
        if seconds >= 3:
            break
    assert seconds >= 1.5, f"{max_tokens} tokens take only {seconds:.2f} s: too fast to tell cancellation from completion"
    return max_tokens, seconds


def abandon_and_time(server, path: str, body: dict, full_seconds: float) -> float:
    """Sends `body`, closes the socket once the engine is decoding it, and returns how long the server then takes to
    be idle again; fails if that takes more than a third of `full_seconds` (the request's time when nobody leaves)."""
    base = server["base"]
    wait_until(lambda: busy(base) == (0, 0), 120, "the server is not idle")
    before = answered_499(base, path)
    sock = open_request(server["port"], path, body)
    try:
        wait_until(lambda: busy(base) == (1, 1), 10, "the request was not admitted and started")
        time.sleep(0.2)  # some decode steps
        assert busy(base) == (1, 1), "the request ended on its own before the client left"
    finally:
        sock.close()
    freed = wait_until(lambda: busy(base) == (0, 0), full_seconds / 3,
                       f"still generating {full_seconds / 3:.1f} s after the client went away (the whole request takes "
                       f"{full_seconds:.1f} s): the generation was not cancelled")
    # The server counts the abandoned request as 499 (client closed request).
    wait_until(lambda: answered_499(base, path) == before + 1, 5, "the abandoned request was not counted as a 499")
    return freed


def test_closing_the_socket_cancels_a_non_streaming_chat_completion(server, long_request):
    max_tokens, full_seconds = long_request
    freed = abandon_and_time(server, "/v1/chat/completions", chat_body(max_tokens), full_seconds)
    # The freed slot (--max-queue 1) serves the next request at once; a generation still running would make it a 429.
    start = time.monotonic()
    answer = post_json(server["base"], "/v1/chat/completions", chat_body(8), timeout=30)
    assert answer["usage"]["completion_tokens"] == 8
    assert time.monotonic() - start < full_seconds / 3
    assert freed < full_seconds / 3


def test_closing_the_socket_cancels_an_analysis(server, long_request):
    # The analysis prompt is longer than the chat one, so the same max_tokens runs at least as long as `full_seconds`.
    max_tokens, full_seconds = long_request
    abandon_and_time(server, "/v1/analyze", analyze_body(max_tokens), full_seconds)
    answer = post_json(server["base"], "/v1/analyze", analyze_body(8), timeout=30)
    assert answer["usage"]["completion_tokens"] == 8


def test_keep_alive_serves_several_requests_on_one_connection(server):
    """Watching for disconnects must not cost keep-alive: chat (plain and streaming) and analysis requests follow each
    other on one connection, which the server leaves open."""
    wait_until(lambda: busy(server["base"]) == (0, 0), 120, "the server is not idle")
    connection = http.client.HTTPConnection("127.0.0.1", server["port"], timeout=60)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {API_KEY}"}
    requests = [("/v1/chat/completions", chat_body(4)), ("/v1/chat/completions", chat_body(4)),
                ("/v1/chat/completions", chat_body(4, stream=True)), ("/v1/analyze", analyze_body(4)),
                ("/v1/chat/completions", chat_body(4))]
    try:
        sock = None
        for path, body in requests:
            connection.request("POST", path, body=json.dumps(body), headers=headers)
            response = connection.getresponse()
            data = response.read()
            assert response.status == 200, data[:300]
            assert (response.getheader("connection") or "").lower() != "close"
            if body.get("stream"):
                assert data.rstrip().endswith(b"data: [DONE]")
            else:
                assert json.loads(data)["usage"]["completion_tokens"] == 4
            # The same socket throughout: http.client would raise had the server closed it after an answer.
            assert connection.sock is not None and (sock is None or connection.sock is sock)
            sock = connection.sock
    finally:
        connection.close()
    wait_until(lambda: busy(server["base"]) == (0, 0), 10, "requests still in flight")
