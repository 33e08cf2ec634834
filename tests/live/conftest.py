"""Starts the built `postlens serve` on the tiny fixture model for the live OpenAI-SDK tests.

The binary must exist (`swift build` first): a missing binary fails the run, it never skips.
The server is always stopped at the end of the session, failures included.
"""
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("POSTLENS_BINARY", REPO / ".build" / "debug" / "postlens"))
MODEL = REPO / "Tests" / "Fixtures" / "models" / "tiny"
API_KEY = "live-test-key"
MAX_QUEUE = 1


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def health(base: str) -> dict:
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:  # 503 while loading still has a JSON body
        return json.loads(error.read() or b"{}")


@pytest.fixture(scope="session")
def server():
    if not BINARY.exists():
        pytest.fail(f"{BINARY} does not exist: run `swift build` in {REPO} before the live tests", pytrace=False)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile(prefix="postlens-serve-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [str(BINARY), "serve", "--model", str(MODEL), "--port", str(port), "--api-key", API_KEY,
         "--max-queue", str(MAX_QUEUE), "--allow-image-dir", str(MODEL / "reference")],
        stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"postlens serve exited with {process.returncode}:\n{Path(log.name).read_text()[-4000:]}", pytrace=False)
            try:
                if health(base).get("status") == "ready":
                    break
            except (urllib.error.URLError, ConnectionError, OSError, json.JSONDecodeError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"postlens serve not ready after 60 s:\n{Path(log.name).read_text()[-4000:]}", pytrace=False)
            time.sleep(0.1)
        yield {"base": base, "port": port, "log": log.name, "process": process}
    finally:
        stop_process(process, grace=10)
        log.close()


def stop_process(process, grace=20) -> int:
    """SIGTERM (the server drains), SIGKILL if it is still running after `grace` seconds; returns the exit status."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return process.returncode


class Server:
    """A `postlens serve` of its own for tests that need particular flags; always stopped by `stop()`."""

    def __init__(self, *flags: str, model: Path = MODEL, env: dict | None = None):
        if not BINARY.exists():
            pytest.fail(f"{BINARY} is missing: run `swift build` first", pytrace=False)
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="postlens-serve-", suffix=".log", delete=False)
        self.process = subprocess.Popen([str(BINARY), "serve", "--model", str(model), "--port", str(self.port), "--no-history",
                                         *flags], stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO,
                                        env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"postlens serve exited with {self.process.returncode}:\n{Path(self.log.name).read_text()[-4000:]}",
                            pytrace=False)
            try:
                if health(self.base).get("status") == "ready":
                    break
            except (urllib.error.URLError, ConnectionError, OSError, json.JSONDecodeError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"postlens serve not ready after 60 s:\n{Path(self.log.name).read_text()[-4000:]}", pytrace=False)
            time.sleep(0.1)

    def stop(self) -> int:
        status = stop_process(self.process)
        self.log.close()
        return status
