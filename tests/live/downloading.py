"""`postlens serve` on a model it has to download first: a fake Hugging Face Hub (Tests/HubTests/fake_hub.py, the
stand-in the Hub tests use) serving the tiny fixture model slowly, and a server whose `--model` is that repo id, with
an empty Hugging Face cache. Shared by the live test of `/health` and the browser test of the page.
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FAKE_HUB = REPO / "Tests" / "HubTests" / "fake_hub.py"
TINY = REPO / "Tests" / "Fixtures" / "models" / "tiny"
REPO_ID = "test-org/tiny-vl"
# The files of a published model folder (the fixture's reference/ outputs are not part of it).
MODEL_FILES = ["config.json", "generation_config.json", "chat_template.json", "preprocessor_config.json", "tokenizer.json",
               "tokenizer_config.json", "video_preprocessor_config.json", "model.safetensors"]


@contextmanager
def fake_hub(bytes_per_second: int):
    """Yields (endpoint, model size in bytes); the hub serves file bodies at about `bytes_per_second`."""
    scratch = Path(tempfile.mkdtemp(prefix="postlens-fake-hub-"))
    root = scratch / "repo"
    root.mkdir()
    for name in MODEL_FILES:
        shutil.copy(TINY / name, root / name)
    size = sum((root / name).stat().st_size for name in MODEL_FILES)
    process = subprocess.Popen([sys.executable, str(FAKE_HUB), "--root", str(root), "--repo", REPO_ID, "--port", "0",
                                "--throttle", str(bytes_per_second)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("PORT "), f"fake_hub.py did not start: {line!r}"
        yield f"http://127.0.0.1:{int(line[5:])}", size
    finally:
        process.stdin.close()  # it stops when its stdin closes
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def downloading_server(binary: Path, bytes_per_second: int):
    """`postlens serve --model REPO_ID` with empty Hugging Face and runtime caches, the fake hub serving the model at
    about `bytes_per_second`. Yields (base URL, the process, the model's size, the log file's path); the server is
    stopped (SIGTERM, then SIGKILL) at the end."""
    scratch = Path(tempfile.mkdtemp(prefix="postlens-serve-download-"))
    with fake_hub(bytes_per_second) as (endpoint, size):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_CACHE": str(scratch / "hub"), "HF_HUB_OFFLINE": "0",
               "POSTLENS_CACHE": str(scratch / "postlens"), "HF_TOKEN": ""}
        log_path = scratch / "serve.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen([str(binary), "serve", "--model", REPO_ID, "--port", str(port), "--no-history", "--threads", "1"],
                                       stdout=log, stderr=subprocess.STDOUT, env=env)
            try:
                yield f"http://127.0.0.1:{port}", process, size, log_path
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
    shutil.rmtree(scratch, ignore_errors=True)
