"""`postlens serve --model ORG/NAME` before the model is on this machine: the server listens at once and `GET /health`
says how the download goes (503, `status: loading`, `loading.phase: downloading`, rising byte counts out of the
model's size), then that the weights are being read, then `ready`; then the model answers.
"""
import json
import time
import urllib.request

import pytest

from conftest import BINARY, health
from downloading import REPO_ID, downloading_server


def test_serve_listens_at_once_and_reports_the_download_on_health():
    if not BINARY.exists():
        pytest.fail(f"{BINARY} does not exist: run `swift build` first", pytrace=False)
    # ≈ 4.3 MB at 1 MB/s: a download of about four seconds.
    with downloading_server(BINARY, 1_000_000) as (base, process, size, log):
        samples = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                body = health(base)
            except OSError:
                time.sleep(0.05)
                continue
            samples.append(body)
            if body.get("status") == "ready":
                break
            time.sleep(0.1)
        assert samples and samples[-1]["status"] == "ready", (samples[-3:], log.read_text()[-3000:])
        assert all(s["model"] == REPO_ID for s in samples)
        downloading = [s["loading"] for s in samples if s.get("loading", {}).get("phase") == "downloading"]
        # Listening at once: /health answered while the files were still arriving, with counts out of the whole.
        assert any(0 < d["completed_bytes"] < d["total_bytes"] for d in downloading), samples[:5]
        assert all(d["total_bytes"] == size for d in downloading), (downloading[:3], size)
        counts = [d["completed_bytes"] for d in downloading]
        assert counts == sorted(counts), counts
        assert all(0 <= d["fraction"] <= 1 for d in downloading)
        # What is served is known once its config.json is read: not while it downloads, and after it is ready.
        assert all("model_info" not in s for s in samples if s.get("loading", {}).get("phase") == "downloading")

        request = urllib.request.Request(base + "/v1/chat/completions", method="POST", headers={"Content-Type": "application/json"},
                                         data=json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}).encode())
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        assert answer["model"] == REPO_ID and answer["usage"]["completion_tokens"] >= 1
        ready = health(base)
        assert ready["model_info"]["name"].startswith("Qwen3-VL"), ready
