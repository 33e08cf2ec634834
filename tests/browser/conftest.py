"""Browser tests of the web UI in headless Chromium (Debian's chromium + chromium-driver, Python selenium).

Which server the tests drive (POSTLENS_BROWSER_SERVER):
- `real`: the built `postlens serve` on the tiny fixture model (POSTLENS_BINARY, default .build/debug/postlens),
  with a fresh history database; extra arguments from POSTLENS_SERVE_ARGS. A binary without the web UI fails.
- `stub`: tests/browser/stub_server.py, the stand-in that serves the same assets and fakes the model and /api.
- `auto` (default): `real` when the binary has `serve` and serves the page, `stub` otherwise (said in the header).

Screenshots go to test-output/browser/ (POSTLENS_TEST_OUTPUT overrides). POSTLENS_UPDATE_README_SCREENSHOT=1
also copies the desktop screenshot to docs/images/web-ui.png.
"""
import json
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

REPO = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("POSTLENS_BINARY", REPO / ".build" / "debug" / "postlens"))
MODEL = REPO / "Tests" / "Fixtures" / "models" / "tiny"
OUTPUT = Path(os.environ.get("POSTLENS_TEST_OUTPUT", REPO / "test-output")) / "browser"
sys.path.insert(0, str(Path(__file__).resolve().parent))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(base, path, method="GET", body=None, timeout=10):
    """(status, parsed JSON or bytes, headers)."""
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, status, headers = response.read(), response.status, response.headers
    except urllib.error.HTTPError as error:
        raw, status, headers = error.read(), error.code, error.headers
    try:
        return status, json.loads(raw), headers
    except (json.JSONDecodeError, UnicodeDecodeError):
        return status, raw, headers


def _real_available():
    if not BINARY.exists():
        return False, f"{BINARY} does not exist"
    try:
        out = subprocess.run([str(BINARY), "serve", "--help"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return False, str(error)
    if out.returncode != 0:
        return False, "`postlens serve` is not in this build"
    return True, ""


def _start_real(extra_args=()):
    """`postlens serve` on the tiny fixture model with a fresh history; `extra_args` (e.g. `--offer DIR`) appended."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    history = Path(tempfile.mkdtemp(prefix="postlens-browser-")) / "history.sqlite"
    log = tempfile.NamedTemporaryFile(prefix="postlens-serve-", suffix=".log", delete=False)
    args = [str(BINARY), "serve", "--model", str(MODEL), "--port", str(port)]
    args += shlex.split(os.environ.get("POSTLENS_SERVE_ARGS", "")) + list(extra_args)
    env = {**os.environ, "POSTLENS_HISTORY_DB": str(history)}
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    deadline = time.monotonic() + 90
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"postlens serve exited with {process.returncode}:\n{Path(log.name).read_text()[-3000:]}")
        try:
            status, body, _ = http(base, "/health", timeout=2)
            if isinstance(body, dict) and body.get("status") == "ready":
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"postlens serve not ready after 90 s:\n{Path(log.name).read_text()[-3000:]}")
        time.sleep(0.2)
    status, body, _ = http(base, "/")
    if status != 200 or b"PostLens" not in (body if isinstance(body, bytes) else b""):
        process.kill()
        raise RuntimeError("postlens serve runs but does not serve the web UI at / (is addWebRoutes mounted?)")

    def stop():
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()

    return {"kind": "real", "base": base, "stop": stop, "log": log.name}


def _start_stub():
    import stub_server

    port = free_port()
    holder = {}
    started = threading.Event()

    def ready(server):
        holder["server"] = server
        started.set()

    thread = threading.Thread(target=stub_server.serve, args=(port, ready), daemon=True)
    thread.start()
    started.wait(10)
    return {"kind": "stub", "base": f"http://127.0.0.1:{port}", "stop": lambda: holder["server"].shutdown()}


_CHOICE = {}


def server_kind():
    if "kind" not in _CHOICE:
        wanted = os.environ.get("POSTLENS_BROWSER_SERVER", "auto")
        if wanted == "auto":
            ok, why = _real_available()
            _CHOICE["kind"] = "real" if ok else "stub"
            _CHOICE["why"] = why
        else:
            _CHOICE["kind"] = wanted
            _CHOICE["why"] = "chosen by POSTLENS_BROWSER_SERVER"
    return _CHOICE["kind"]


def pytest_report_header(config):
    kind = server_kind()
    why = _CHOICE.get("why")
    return f"web UI browser tests against: {kind}" + (f" ({why})" if why else "")


@pytest.fixture(scope="session")
def server():
    kind = server_kind()
    if kind == "real":
        try:
            info = _start_real()
        except RuntimeError as error:
            if os.environ.get("POSTLENS_BROWSER_SERVER", "auto") == "real":
                pytest.fail(str(error), pytrace=False)
            print(f"\nfalling back to the stub server: {error}", file=sys.stderr)
            _CHOICE["kind"] = "stub"
            info = _start_stub()
    elif kind == "stub":
        info = _start_stub()
    else:
        pytest.fail(f"POSTLENS_BROWSER_SERVER must be auto, real or stub, not {kind!r}", pytrace=False)
    try:
        yield info
    finally:
        info["stop"]()


@pytest.fixture(scope="session")
def downloads():
    path = Path(tempfile.mkdtemp(prefix="postlens-downloads-"))
    return path


@pytest.fixture(scope="session")
def browser(downloads):
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,860",
                "--lang=en-US", "--force-device-scale-factor=1", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        "intl.accept_languages": "en-US,en",
    })
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def output_dir():
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT
