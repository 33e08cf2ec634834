"""A stand-in for `postlens serve`, for developing and testing the web page without the Swift server.

Serves Sources/WebUI/Assets at / and /assets/, fakes GET /health and streaming POST /v1/chat/completions
(scripted answers chosen by words in the last user message), and keeps the /api routes in memory with the
same JSON shapes as the Swift `WebUI` module (docs/api-conversations.md). Test hooks: GET /stub/stats,
POST /stub/mode {"health": "ready"|"loading", "busy": bool}.

    python3 tests/browser/stub_server.py --port 8765
"""
import argparse
import base64
import hashlib
import json
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

ASSETS = Path(__file__).resolve().parents[2] / "Sources" / "WebUI" / "Assets"
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}

MARKDOWN_ANSWER = (
    "# Sign\n\nThe sign says **OPEN** and *welcome*.\n\n- first item\n- second with `code`\n\n"
    "| word | count |\n|---|---:|\n| open | 1 |\n\n```\nprint('hi')\n```\n\nSee [docs](https://example.com/docs)."
)
SCRIPT_ANSWER = (
    "Here is markup: <script>window.__pwned = 1</script> and <img src=x onerror=\"window.__pwned = 2\"> "
    "and [click](javascript:window.__pwned=3) and **bold**."
)
JSON_ANSWER = '```json\n{"safe": false, "categories": ["spam", "scam"], "severity": "medium", "reason": "Too good to be true offer."}\n```'


def now_iso():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tokens_of(text):
    return re.findall(r"\s*\S+|\s+", text)


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.conversations = {}  # id → dict
        self.order = []
        self.images = {}  # sha → (mime, bytes)
        self.health = "ready"
        self.busy = False
        self.in_flight = 0
        self.cancelled = 0
        self.completed = 0
        self.seen_images = set()


STATE = State()


class APIError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def sniff(data):
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"GIF8"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def store_image(item):
    if item.startswith("data:"):
        header, _, payload = item.partition(",")
        if not header.endswith(";base64"):
            raise APIError(400, "not a base64 data URL")
        data = base64.b64decode(payload)
        mime = sniff(data)
        if not mime:
            raise APIError(422, "an image is not PNG, JPEG, WebP or GIF")
        sha = hashlib.sha256(data).hexdigest()
        STATE.images.setdefault(sha, (mime, data))
        return {"sha256": sha, "mimeType": mime, "byteCount": len(data)}
    sha = item.lower()
    if sha not in STATE.images:
        raise APIError(422, f"image {sha} is referenced by hash but not stored here")
    mime, data = STATE.images[sha]
    return {"sha256": sha, "mimeType": mime, "byteCount": len(data)}


def summary(c, snippet=None):
    return {"id": c["id"], "title": c["title"], "createdAt": c["createdAt"], "updatedAt": c["updatedAt"],
            "messageCount": len(c["messages"]), "snippet": snippet}


def clean_images():
    used = {i["sha256"] for c in STATE.conversations.values() for m in c["messages"] for i in m["images"]}
    for sha in list(STATE.images):
        if sha not in used:
            del STATE.images[sha]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    # ---- plumbing ----
    def send_json(self, status, value, extra=None):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, val in (extra or {}).items():
            self.send_header(key, val)
        self.end_headers()
        self.wfile.write(body)

    def send_error_json(self, status, message):
        self.send_json(status, {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}})

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise APIError(400, "invalid JSON body: not valid JSON")

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PATCH(self):
        self.route("PATCH")

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        url = urlparse(self.path)
        path = url.path
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            if method == "GET" and path in ("/", "/index.html"):
                return self.asset("index.html")
            if method == "GET" and path.startswith("/assets/"):
                return self.asset(unquote(path[len("/assets/"):]))
            if path == "/health":
                ready = STATE.health == "ready"
                return self.send_json(200 if ready else 503, {"status": STATE.health, "model": "stub", "in_flight": STATE.in_flight, "max_queue": 1})
            if path == "/stub/stats":
                return self.send_json(200, {"cancelled": STATE.cancelled, "completed": STATE.completed, "in_flight": STATE.in_flight})
            if path == "/stub/mode" and method == "POST":
                body = self.body() or {}
                STATE.health = body.get("health", STATE.health)
                STATE.busy = bool(body.get("busy", STATE.busy))
                return self.send_json(200, {"ok": True})
            if path == "/v1/chat/completions" and method == "POST":
                return self.chat()
            if path == "/v1/batches" and method == "GET":
                return self.send_json(200, {"object": "list", "data": []})  # the stub keeps no batch jobs
            if path.startswith("/api/"):
                with STATE.lock:
                    return self.api(method, path[len("/api"):], query)
            self.send_error_json(404, "not found")
        except APIError as error:
            self.send_error_json(error.status, error.message)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def asset(self, name):
        file = ASSETS / name
        if "/" in name or not file.is_file():
            return self.send_error_json(404, "not found")
        data = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", TYPES.get(file.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(data)

    # ---- fake model ----
    def chat(self):
        body = self.body() or {}
        if STATE.health != "ready":
            return self.send_json(503, {"error": {"message": "model is loading", "type": "server_error", "param": None, "code": "model_loading"}},
                                  {"Retry-After": "2"})
        if STATE.busy:
            return self.send_json(429, {"error": {"message": "too many requests", "type": "rate_limit_error", "param": None, "code": None}},
                                  {"Retry-After": "3"})
        messages = body.get("messages") or []
        last = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        content = last.get("content")
        text = content if isinstance(content, str) else " ".join(p.get("text", "") for p in content or [] if p.get("type") == "text")
        images = [p["image_url"]["url"] for p in (content if isinstance(content, list) else []) if p.get("type") == "image_url"]
        hashes = {hashlib.sha256(u.encode()).hexdigest() for u in images}
        cache_hit = bool(hashes) and hashes <= STATE.seen_images
        STATE.seen_images |= hashes
        delay = 0.04
        if "SLOW" in text:
            answer, delay = " ".join(f"word{i}" for i in range(400)), 0.1
        elif "SCRIPT" in text:
            answer = SCRIPT_ANSWER
        elif "JSON" in text or "moderation" in text.lower() or "审核" in text:
            answer = JSON_ANSWER
        else:
            answer = MARKDOWN_ANSWER
        pieces = tokens_of(answer)[: int(body.get("max_tokens") or 100000)]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        STATE.in_flight += 1
        started = time.monotonic()
        ttft = None
        try:
            meta = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": int(time.time()), "model": "stub"}
            self.event({**meta, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
            for piece in pieces:
                time.sleep(delay)
                if ttft is None:
                    ttft = (time.monotonic() - started) * 1000
                self.event({**meta, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
            decode = max(1e-3, time.monotonic() - started - (ttft or 0) / 1000)
            self.event({**meta, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            self.event({**meta, "choices": [], "usage": {
                "prompt_tokens": 100, "completion_tokens": len(pieces), "total_tokens": 100 + len(pieces),
                "prompt_tokens_details": {"cached_tokens": 64 if cache_hit else 0},
                "postlens": {"image_tokens": 64 if images else 0, "ttft_ms": round(ttft or 0, 3),
                             "decode_tokens_per_s": round(max(0, len(pieces) - 1) / decode, 3)}}})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            STATE.completed += 1
        except (BrokenPipeError, ConnectionResetError):
            STATE.cancelled += 1
        finally:
            STATE.in_flight -= 1

    def event(self, value):
        self.wfile.write(b"data: " + json.dumps(value).encode() + b"\n\n")
        self.wfile.flush()

    # ---- /api in memory ----
    def api(self, method, path, query):
        parts = [p for p in path.split("/") if p]
        if parts == ["conversations"] or parts == ["search"]:
            if method == "GET":
                q = (query.get("q") or "").strip().lower()
                out = []
                for cid in sorted(STATE.conversations, key=lambda k: STATE.conversations[k]["updatedAt"], reverse=True):
                    c = STATE.conversations[cid]
                    if not q:
                        out.append(summary(c))
                        continue
                    hit = next((m["content"] for m in c["messages"] if q in m["content"].lower()), None)
                    if q in c["title"].lower() or hit is not None:
                        out.append(summary(c, hit[:120] if hit else None))
                return self.send_json(200, {"object": "list", "data": out})
            if method == "POST":
                body = self.body() or {}
                title = (body.get("title") or "").strip() or "New conversation"
                c = {"id": str(uuid.uuid4()), "title": title, "createdAt": now_iso(), "updatedAt": now_iso(),
                     "parameters": body.get("parameters"), "messages": []}
                STATE.conversations[c["id"]] = c
                return self.send_json(201, c)
        if parts == ["export"] and method == "GET":
            return self.export(list(STATE.conversations), query)
        if parts == ["import"] and method == "POST":
            return self.import_(self.body())
        if len(parts) == 2 and parts[0] == "images" and method == "GET":
            sha = parts[1].lower()
            if sha not in STATE.images:
                raise APIError(404, f"no stored image with sha256 '{sha}'")
            mime, data = STATE.images[sha]
            self.send_response(200)
            self.send_header("Content-Type", mime)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if len(parts) >= 2 and parts[0] == "conversations":
            c = STATE.conversations.get(parts[1])
            if c is None:
                raise APIError(404, f"no conversation with id '{parts[1]}'")
            rest = parts[2:]
            if not rest and method == "GET":
                return self.send_json(200, c)
            if not rest and method == "PATCH":
                body = self.body()
                if not isinstance(body, dict) or ("title" not in body and "parameters" not in body):
                    raise APIError(400, "send a JSON object with 'title' and/or 'parameters'")
                if "title" in body:
                    if not str(body["title"]).strip():
                        raise APIError(422, "title must not be empty")
                    c["title"] = str(body["title"]).strip()
                    c["updatedAt"] = now_iso()
                if "parameters" in body:
                    c["parameters"] = body["parameters"]
                return self.send_json(200, summary(c))
            if not rest and method == "DELETE":
                del STATE.conversations[c["id"]]
                clean_images()
                return self.send_json(200, {"id": c["id"], "deleted": "true"})
            if rest == ["messages"] and method == "POST":
                body = self.body()
                if not isinstance(body, dict) or body.get("role") not in ("system", "user", "assistant") or not isinstance(body.get("content"), str):
                    raise APIError(400, "send a JSON object with 'role' and 'content'")
                images = [store_image(i) for i in body.get("images") or []]
                m = {"id": str(uuid.uuid4()), "role": body["role"], "content": body["content"], "images": images,
                     "createdAt": now_iso(), "stats": body.get("stats")}
                c["messages"].append(m)
                c["updatedAt"] = now_iso()
                return self.send_json(201, m)
            if rest == ["truncate"] and method == "POST":
                body = self.body() or {}
                keep = body.get("keep")
                if not isinstance(keep, int) or keep < 0:
                    raise APIError(400, "send {\"keep\": N}")
                c["messages"] = c["messages"][:keep]
                clean_images()
                return self.send_json(200, c)
            if rest == ["export"] and method == "GET":
                return self.export([c["id"]], query)
        raise APIError(404, "not found")

    def export(self, ids, query):
        inline = (query.get("images") or "inline") == "inline"
        conversations = []
        for cid in ids:
            c = STATE.conversations[cid]
            messages = []
            for m in c["messages"]:
                images = []
                for i in m["images"]:
                    item = dict(i)
                    if inline:
                        mime, data = STATE.images[i["sha256"]]
                        item["dataURL"] = f"data:{mime};base64," + base64.b64encode(data).decode()
                    images.append(item)
                messages.append({"id": m["id"], "role": m["role"], "content": m["content"], "createdAt": m["createdAt"],
                                 "stats": m["stats"], "images": images})
            conversations.append({"id": c["id"], "title": c["title"], "createdAt": c["createdAt"], "updatedAt": c["updatedAt"],
                                  "parameters": c["parameters"], "messages": messages})
        doc = {"format": "postlens.conversations", "version": 1, "exportedAt": now_iso(), "conversations": conversations}
        self.send_json(200, doc, {"Content-Disposition": 'attachment; filename="postlens-export.json"'})

    def import_(self, doc):
        if not isinstance(doc, dict) or not isinstance(doc.get("conversations"), list):
            raise APIError(400, "send an export document")
        if doc.get("format") != "postlens.conversations" or doc.get("version") != 1:
            raise APIError(422, "unsupported format or version")
        staged = []
        for c in doc["conversations"]:
            if not str(c.get("title", "")).strip():
                raise APIError(422, "title must not be empty")
            messages = []
            for m in c.get("messages", []):
                images = []
                for i in m.get("images", []):
                    images.append(i.get("dataURL") or i.get("sha256") or "")
                messages.append((m, images))
            staged.append((c, messages))
        saved_images = dict(STATE.images)
        created = []
        try:
            for c, messages in staged:
                cid = c.get("id") if c.get("id") and c["id"] not in STATE.conversations else str(uuid.uuid4())
                new = {"id": cid, "title": c["title"].strip(), "createdAt": c["createdAt"], "updatedAt": c["updatedAt"],
                       "parameters": c.get("parameters"), "messages": []}
                for m, images in messages:
                    new["messages"].append({"id": str(uuid.uuid4()), "role": m["role"], "content": m["content"],
                                            "images": [store_image(i) for i in images], "createdAt": m["createdAt"], "stats": m.get("stats")})
                created.append(new)
        except APIError:
            STATE.images = saved_images
            raise
        for new in created:
            STATE.conversations[new["id"]] = new
        self.send_json(201, {"object": "list", "data": [summary(c) for c in created]})


def serve(port, ready=None):
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    if ready:
        ready(server)
    server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    print(f"stub server on http://127.0.0.1:{args.port}/", flush=True)
    serve(args.port)
