"""The page while `postlens serve` downloads its model: the status line says how far the download has come, and clears
once the model is ready. A real server on a repo id it has to fetch from a slow fake Hub (tests/live/downloading.py);
needs the real server (the stub has nothing to download).
"""
import re
import sys

import pytest
from selenium.webdriver.common.by import By

from conftest import BINARY, REPO, server_kind
from test_web_ui import wait

sys.path.insert(0, str(REPO / "tests" / "live"))
from downloading import downloading_server  # noqa: E402


def test_the_page_shows_the_model_download_then_clears_it(browser, output_dir):
    if server_kind() != "real":
        pytest.skip("a download needs the real server (POSTLENS_BROWSER_SERVER=real)")
    # ≈ 4.3 MB at 500 kB/s: about nine seconds of download to watch.
    with downloading_server(BINARY, 500_000) as (base, process, _, log):
        try:
            # The server listens at once, so the page loads while the model is still arriving.
            wait(browser, lambda d: process.poll() is None and _loads(d, base), timeout=30, message="the page did not load")
            status = browser.find_element(By.ID, "status")
            wait(browser, lambda d: re.search(r"Downloading the model: \d+% \(.+ of .+\)", status.text), timeout=30,
                 message=f"no download progress shown: {status.text!r}")
            browser.save_screenshot(str(output_dir / "downloading.png"))
            wait(browser, lambda d: not status.is_displayed(), timeout=120,
                 message=f"the status line stayed after the model was ready: {status.text!r}\n{log.read_text()[-2000:]}")
            assert browser.execute_script("return document.body.dataset.health") == "ready"
        finally:
            # Leave the page and drop its console log: the 503s of /health while the model loads are expected here,
            # and the browser is shared with tests that require a clean log.
            browser.get("about:blank")
            browser.get_log("browser")


def _loads(driver, base):
    try:
        driver.get(base + "/")
    except Exception:
        return False
    return driver.execute_script("return document.body && document.body.dataset.ready === 'true'")
