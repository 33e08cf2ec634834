#!/usr/bin/env python3
"""A small stand-in for the Hugging Face Hub HTTP API, used by the HubTests suite.

It serves one model repository from a local folder on a loopback port, with the endpoints
and headers that `postlens download` and `huggingface_hub` use:

  GET  /api/models/{repo}[/revision/{rev}]        model info: sha, siblings (rfilename, size, blobId, lfs)
  GET  /api/models/{repo}/tree/{rev}[/{path}]     tree listing (what huggingface_hub's snapshot_download reads)
  HEAD/GET /{repo}/resolve/{rev}/{path}           the file, with X-Repo-Commit, ETag, X-Linked-Etag,
                                                  X-Linked-Size, Accept-Ranges and HTTP Range support
  GET  /_cdn/{sha256}                             where LFS files redirect to with --redirect-lfs
  GET  /_stats                                    what was served (requests and body bytes), as JSON
                                                  (also written to the --stats file after every request)

Files at least --lfs-threshold bytes big are treated as LFS files (etag = sha256 of the content);
smaller ones are regular git files (etag = git blob sha1). Failure injection for the tests:
--drop-after N closes the connection after N body bytes of the first GET of the largest file;
--corrupt NAME flips one byte of NAME when serving it; --fail-first N answers 503 to the first N
resolve requests; --require-token T answers 401 unless `Authorization: Bearer T` is sent;
--ignore-range answers every Range request with the whole file (200), as some proxies do; --throttle B serves file
bodies at about B bytes a second (a slow download that a test can watch).

Only the standard library is used. The chosen port is printed as `PORT <n>` on stdout.
"""
import argparse
import hashlib
import json
import os
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, root, repo_id, commit, lfs_threshold):
        self.repo_id = repo_id
        self.files = {}  # path -> dict(data, size, blob_id, sha256 or None)
        for folder, _, names in os.walk(root):
            for name in sorted(names):
                full = os.path.join(folder, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                with open(full, "rb") as f:
                    data = f.read()
                is_lfs = len(data) >= lfs_threshold
                self.files[rel] = {
                    "data": data,
                    "size": len(data),
                    "blob_id": git_blob_sha1(data),
                    "sha256": hashlib.sha256(data).hexdigest() if is_lfs else None,
                }
        if commit is None:
            h = hashlib.sha1()
            for rel in sorted(self.files):
                h.update(rel.encode() + b"\0" + self.files[rel]["blob_id"].encode())
            commit = h.hexdigest()
        self.commit = commit
        self.largest = max(self.files, key=lambda p: self.files[p]["size"]) if self.files else None

    def resolve_revision(self, rev):
        return self.commit if rev in ("main", self.commit) else None


class State:
    def __init__(self, args, repo):
        self.args = args
        self.repo = repo
        self.lock = threading.Lock()
        self.requests = []  # dicts: method, path, range, status, bytes
        self.bytes_by_path = {}
        self.drop_pending = args.drop_after is not None
        self.fail_remaining = args.fail_first


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"

    def log_message(self, fmt, *args):  # keep the test output quiet
        pass

    @property
    def state(self) -> State:
        return self.server.state

    # -- helpers ---------------------------------------------------------------------------
    def record(self, status, sent, path=None):
        """Log a request (with the body bytes it sends) and rewrite the --stats file.

        Bodies are recorded before they are sent, so the file is up to date by the time the
        client has read the last byte."""
        with self.state.lock:
            self.state.requests.append({
                "method": self.command,
                "path": path or self.path,
                "url": self.path,
                "range": self.headers.get("Range"),
                "authorization": self.headers.get("Authorization"),
                "status": status,
                "bytes": sent,
            })
            if path:
                self.state.bytes_by_path[path] = self.state.bytes_by_path.get(path, 0) + sent
            stats_path = self.state.args.stats
            if stats_path:
                tmp = stats_path + ".tmp"
                with open(tmp, "w") as f:
                    json.dump({"requests": self.state.requests, "bytes_by_path": self.state.bytes_by_path}, f)
                os.replace(tmp, stats_path)

    def send_json(self, status, obj, extra=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.record(status, 0)

    def send_error_json(self, status, code, message):
        self.send_json(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

    def authorized(self):
        token = self.state.args.require_token
        if token is None:
            return True
        if self.headers.get("Authorization") == f"Bearer {token}":
            return True
        self.send_error_json(401, "Unauthorized", "Invalid credentials in Authorization header")
        return False

    def split_repo(self, rest):
        """`rest` starts with the repo id; return (remainder after the repo id) or None."""
        repo_id = self.state.repo.repo_id
        if rest == repo_id:
            return ""
        if rest.startswith(repo_id + "/"):
            return rest[len(repo_id) + 1:]
        return None

    # -- verbs -----------------------------------------------------------------------------
    def do_HEAD(self):
        self.handle_any()

    def do_GET(self):
        self.handle_any()

    def handle_any(self):
        parsed = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parsed.path)
        if path == "/_stats":
            with self.state.lock:
                stats = {"requests": list(self.state.requests), "bytes_by_path": dict(self.state.bytes_by_path)}
            body = json.dumps(stats).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if path.startswith("/_cdn/"):
            return self.serve_cdn(path[len("/_cdn/"):])
        if not self.authorized():
            return
        if path.startswith("/api/models/"):
            return self.serve_api(path[len("/api/models/"):], urllib.parse.parse_qs(parsed.query))
        rest = self.split_repo(path.lstrip("/"))
        if rest is not None and rest.startswith("resolve/"):
            rev, _, file_path = rest[len("resolve/"):].partition("/")
            return self.serve_resolve(rev, file_path)
        self.send_error_json(404, "RepoNotFound", "Repository not found")

    def serve_api(self, rest, query):
        repo = self.state.repo
        remainder = self.split_repo(rest)
        if remainder is None:
            return self.send_error_json(404, "RepoNotFound", "Repository not found")
        if remainder == "" or remainder.startswith("revision/"):
            rev = remainder[len("revision/"):] if remainder else "main"
            commit = repo.resolve_revision(rev)
            if commit is None:
                return self.send_error_json(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            siblings = []
            for p, f in sorted(repo.files.items()):
                s = {"rfilename": p, "size": f["size"], "blobId": f["blob_id"]}
                if f["sha256"]:
                    s["lfs"] = {"sha256": f["sha256"], "size": f["size"], "pointerSize": 134}
                siblings.append(s)
            return self.send_json(200, {
                "_id": "fake", "id": repo.repo_id, "modelId": repo.repo_id, "sha": commit,
                "private": False, "gated": False, "disabled": False, "tags": [], "siblings": siblings,
            })
        if remainder.startswith("tree/"):
            rev, _, sub = remainder[len("tree/"):].partition("/")
            commit = repo.resolve_revision(rev)
            if commit is None:
                return self.send_error_json(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            entries, folders = [], set()
            for p, f in sorted(repo.files.items()):
                if sub and not p.startswith(sub.rstrip("/") + "/"):
                    continue
                parts = p.split("/")
                for i in range(1, len(parts)):
                    folders.add("/".join(parts[:i]))
                e = {"type": "file", "oid": f["blob_id"], "size": f["size"], "path": p}
                if f["sha256"]:
                    e["lfs"] = {"oid": f["sha256"], "size": f["size"], "pointerSize": 134}
                entries.append(e)
            entries += [{"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in sorted(folders)]
            return self.send_json(200, entries)
        self.send_error_json(404, "EntryNotFound", "Not found")

    def file_headers(self, f, commit):
        h = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes"}
        if f["sha256"]:
            h["ETag"] = f'"{f["sha256"]}"'
            h["X-Linked-Etag"] = f'"{f["sha256"]}"'
            h["X-Linked-Size"] = str(f["size"])
        else:
            h["ETag"] = f'"{f["blob_id"]}"'
        return h

    def serve_resolve(self, rev, file_path):
        repo = self.state.repo
        commit = repo.resolve_revision(rev)
        if commit is None:
            return self.send_error_json(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        f = repo.files.get(file_path)
        if f is None:
            return self.send_error_json(404, "EntryNotFound", f"{file_path} does not exist")
        with self.state.lock:
            fail = self.state.fail_remaining > 0
            if fail:
                self.state.fail_remaining -= 1
        if fail:
            return self.send_error_json(503, "ServiceUnavailable", "Try again later")
        headers = self.file_headers(f, commit)
        if f["sha256"] and self.state.args.redirect_lfs:
            self.send_response(302)
            headers["Location"] = f"/_cdn/{f['sha256']}"
            headers["Content-Length"] = "0"
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.record(302, 0)
            return
        self.send_body(file_path, f, headers)

    def serve_cdn(self, sha):
        for p, f in self.state.repo.files.items():
            if f["sha256"] == sha:
                return self.send_body(p, f, {"Accept-Ranges": "bytes", "ETag": f'"{sha}"'})
        self.send_error_json(404, "EntryNotFound", "Not found")

    def send_body(self, file_path, f, headers):
        data = f["data"]
        if self.state.args.corrupt == file_path and data:
            mid = len(data) // 2
            data = data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1:]
        start, end, status = 0, len(data) - 1, 200
        rng = None if self.state.args.ignore_range else self.headers.get("Range")
        if rng and rng.startswith("bytes="):
            first, _, last = rng[len("bytes="):].partition("-")
            start = int(first) if first else 0
            if last:
                end = min(int(last), len(data) - 1)
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.record(416, 0, file_path)
                return
            status = 206
        body = data[start:end + 1]
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.end_headers()
        if self.command == "HEAD":
            self.record(status, 0)
            return
        drop_at = None
        with self.state.lock:
            if self.state.drop_pending and file_path == self.state.repo.largest:
                self.state.drop_pending = False
                drop_at = self.state.args.drop_after
        if drop_at is not None:
            self.record(status, min(drop_at, len(body)), file_path)
            self.wfile.write(body[:drop_at])
            self.wfile.flush()
            self.close_connection = True
            # Wait until the client has consumed what is in flight (on loopback the server runs
            # far ahead of the client, whose HTTP library drops bytes it buffered but had not yet
            # handed out when the connection fails): until --drop-wait-for (the client's partial
            # file) holds N bytes, else for --drop-delay seconds. Then half-close: FIN after the
            # data sent, no RST, so the client sees the connection end after the first N bytes.
            wait_for = self.state.args.drop_wait_for
            if wait_for:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    try:
                        if os.path.getsize(wait_for) >= min(drop_at, len(body)):
                            break
                    except OSError:
                        pass
                    time.sleep(0.01)
            else:
                time.sleep(self.state.args.drop_delay)
            try:
                self.connection.shutdown(socket.SHUT_WR)
                self.connection.settimeout(5)
                while self.connection.recv(65536):
                    pass
            except OSError:
                pass
            return
        self.record(status, len(body), file_path)
        rate = self.state.args.throttle
        chunk = 256 * 1024 if not rate else max(1024, min(256 * 1024, rate // 10))
        for start in range(0, len(body), chunk):
            self.wfile.write(body[start:start + chunk])
            if rate:
                self.wfile.flush()
                time.sleep(chunk / rate)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True, help="folder whose files form the repository")
    ap.add_argument("--repo", required=True, help="repository id, e.g. Qwen/Qwen3-VL-2B-Instruct")
    ap.add_argument("--commit", default=None, help="commit hash to report (default: derived from the files)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--lfs-threshold", type=int, default=1024 * 1024)
    ap.add_argument("--require-token", default=None)
    ap.add_argument("--drop-after", type=int, default=None)
    ap.add_argument("--drop-delay", type=float, default=1.0, help="seconds between the last byte and the close")
    ap.add_argument("--drop-wait-for", default=None, help="file whose size tells how much the client consumed")
    ap.add_argument("--corrupt", default=None)
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--redirect-lfs", action="store_true")
    ap.add_argument("--ignore-range", action="store_true", help="always answer 200 with the whole file")
    ap.add_argument("--stats", default=None, help="JSON file rewritten after every request with what was served")
    ap.add_argument("--throttle", type=int, default=0, help="serve file bodies at about this many bytes per second (0: at once)")
    args = ap.parse_args()

    repo = Repo(args.root, args.repo, args.commit, args.lfs_threshold)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.state = State(args, repo)
    print(f"PORT {server.server_address[1]}", flush=True)
    # Stop when the parent test process closes our stdin (or dies), so no server outlives its test.
    def watch_stdin():
        try:
            sys.stdin.read()
        finally:
            server.shutdown()
    threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
