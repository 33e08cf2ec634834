"""The web UI in a real browser (headless Chromium) against a live server: see conftest.py for which one."""
import base64
import json
import os
import re
import shutil
import struct
import time
import zlib
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from conftest import REPO, http, server_kind

STREAM_TIMEOUT = 120


def make_png(width=96, height=64, seed=0):
    """An RGB PNG with a gradient (different seeds, different bytes)."""
    rows = b""
    for y in range(height):
        rows += b"\x00" + bytes(((x * 3 + seed) % 256, (y * 4 + seed) % 256, (x + y + seed) % 256)[c] for x in range(width) for c in range(3))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture(scope="session")
def png_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("images") / "post.png"
    path.write_bytes(make_png())
    return path


def wait(browser, condition, timeout=15, message=""):
    return WebDriverWait(browser, timeout, poll_frequency=0.05, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda d: condition(d), message)


def open_page(browser, server, fresh=True):
    browser.get(server["base"] + "/")
    wait(browser, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"), message="page did not start")
    if fresh:
        browser.execute_script("localStorage.clear(); localStorage.setItem('postlens.lang', 'en')")
        browser.get(server["base"] + "/")
        wait(browser, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
    # Answers long enough to stop, short enough for the tiny fixture model.
    browser.execute_script(
        "localStorage.setItem('postlens.settings', JSON.stringify({temperature: 0.8, maxTokens: arguments[0], detail: 'auto', system: '', apiKey: ''}))",
        48 if server_kind() == "real" else 1024)


def reload(browser):
    browser.refresh()
    wait(browser, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))


def new_conversation(browser):
    browser.find_element(By.ID, "new-chat").click()
    wait(browser, lambda d: d.find_element(By.ID, "conversation-title").text == "PostLens")


def attach_via_input(browser, path):
    before = len(browser.find_elements(By.CSS_SELECTOR, "#thumbs .thumb"))
    browser.find_element(By.ID, "file-input").send_keys(str(path))
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#thumbs .thumb")) == before + 1, message="no thumbnail")


def type_and_send(browser, text):
    box = browser.find_element(By.ID, "composer-input")
    box.send_keys(text)
    box.send_keys(Keys.ENTER)


def wait_idle(browser, timeout=STREAM_TIMEOUT):
    wait(browser, lambda d: d.execute_script("return document.body.dataset.busy !== 'true' && !document.querySelector('.message.streaming')"),
         timeout=timeout, message="generation did not finish")


def answers(browser):
    return browser.find_elements(By.CSS_SELECTOR, ".message.assistant")


def record_stream(browser):
    """Records the text length of the streaming answer at every DOM change."""
    browser.execute_script("""
        window.__lengths = [];
        const box = document.getElementById('messages');
        window.__observer = new MutationObserver(() => {
          const live = box.querySelector('.message.streaming .content');
          if (live) window.__lengths.push(live.textContent.length);
        });
        window.__observer.observe(box, {childList: true, subtree: true, characterData: true});
    """)


def current_id(browser):
    return browser.execute_script("return localStorage.getItem('postlens.current')")


def test_page_is_small_offline_and_loads(browser, server):
    status, html, headers = http(server["base"], "/")
    assert status == 200 and b"<!doctype html>" in html.lower()
    assets = re.findall(rb'(?:href|src)="(/assets/[^"]+)"', html)
    total = len(html)
    names = set()
    for name in assets:
        names.add(name.decode())
    # Every module the page imports, followed transitively.
    pending = list(names)
    while pending:
        name = pending.pop()
        status, body, _ = http(server["base"], name)
        assert status == 200, name
        total += len(body)
        for imported in re.findall(rb"from '\./([\w.-]+)'", body):
            path = "/assets/" + imported.decode()
            if path not in names:
                names.add(path)
                pending.append(path)
        # No CDN, no external fonts or scripts: nothing is fetched from another origin.
        assert not re.search(rb"(?:src|href)=\"https?://|url\(\s*['\"]?https?://|@import|fonts\.googleapis", body), name
    assert total < 200 * 1024, f"page weighs {total} bytes"
    print(f"\npage size: {total} bytes in {len(names) + 1} files")
    open_page(browser, server)
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not severe, severe
    assert browser.find_element(By.ID, "composer-input") == browser.switch_to.active_element


def test_file_input_and_synthetic_drop_and_paste_attach_images(browser, server, png_file, output_dir):
    open_page(browser, server)
    attach_via_input(browser, png_file)
    data = base64.b64encode(make_png(40, 30, seed=7)).decode()
    browser.execute_script("""
        const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
        const file = new File([bytes], 'dropped.png', {type: 'image/png'});
        const dt = new DataTransfer();
        dt.items.add(file);
        for (const type of ['dragenter', 'dragover', 'drop']) {
          document.getElementById('messages').dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true, dataTransfer: dt}));
        }
    """, data)
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#thumbs .thumb")) == 2, message="drop did not attach")
    assert browser.find_element(By.ID, "drop-overlay").get_attribute("hidden") is not None
    browser.execute_script("""
        const bytes = Uint8Array.from(atob(arguments[0]), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], 'pasted.png', {type: 'image/png'}));
        document.getElementById('composer-input').dispatchEvent(new ClipboardEvent('paste', {bubbles: true, cancelable: true, clipboardData: dt}));
    """, data)
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#thumbs .thumb")) == 3, message="paste did not attach")
    labels = [b.get_attribute("aria-label") for b in browser.find_elements(By.CSS_SELECTOR, ".remove-thumb")]
    assert labels[1] == "Remove image dropped.png"
    browser.find_elements(By.CSS_SELECTOR, ".remove-thumb")[2].click()
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#thumbs .thumb")) == 2)
    browser.save_screenshot(str(output_dir / "attachments.png"))


def test_large_image_is_downscaled_before_upload(browser, server):
    open_page(browser, server)
    size = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        import('/assets/images.js').then(async ({prepareImage}) => {
          const canvas = document.createElement('canvas');
          canvas.width = 3000; canvas.height = 2000;
          const ctx = canvas.getContext('2d');
          ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, 3000, 2000);
          ctx.fillStyle = '#000'; ctx.font = '40px sans-serif'; ctx.fillText('SMALL TEXT 12345', 100, 100);
          const blob = await new Promise(r => canvas.toBlob(r, 'image/png'));
          const out = await prepareImage(new File([blob], 'big.png', {type: 'image/png'}), 1000000);
          done([out.width, out.height, out.downscaled, out.dataURL.slice(0, 22)]);
        });
    """)
    width, height, downscaled, prefix = size
    assert downscaled and width * height <= 1_000_000 and abs(width / height - 1.5) < 0.01, size
    assert prefix == "data:image/png;base64,"


def test_send_streams_markdown_token_by_token_and_reload_keeps_history(browser, server, png_file, output_dir):
    open_page(browser, server)
    attach_via_input(browser, png_file)
    record_stream(browser)
    type_and_send(browser, "What does the sign say?")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".message.user"), message="question not shown")
    wait_idle(browser)
    lengths = browser.execute_script("return window.__lengths")
    distinct = sorted(set(lengths))
    assert len(distinct) >= 3, f"the answer did not arrive in pieces: {lengths[:50]}"
    # (Markdown markers vanish once closed, so the visible length may dip; it still builds up.)
    assert lengths[len(lengths) // 3] < lengths[-1], lengths
    answer = answers(browser)[-1]
    meta = answer.find_element(By.CSS_SELECTOR, ".meta").text
    assert re.search(r"\d+ tokens", meta) and "first token" in meta and "tokens/s" in meta, meta
    user = browser.find_elements(By.CSS_SELECTOR, ".message.user")[-1]
    assert user.find_element(By.CSS_SELECTOR, ".message-images img").get_attribute("naturalWidth") == "96"
    assert not browser.find_elements(By.CSS_SELECTOR, "#thumbs .thumb"), "attachments are cleared after sending"
    if server_kind() == "stub":
        content = answer.find_element(By.CSS_SELECTOR, ".content")
        assert content.find_element(By.CSS_SELECTOR, "h3").text == "Sign"
        assert content.find_element(By.CSS_SELECTOR, "strong").text == "OPEN"
        assert content.find_element(By.CSS_SELECTOR, "em").text == "welcome"
        assert len(content.find_elements(By.CSS_SELECTOR, "ul > li")) == 2
        assert content.find_element(By.CSS_SELECTOR, "li code").text == "code"
        assert content.find_element(By.CSS_SELECTOR, "table td.align-right").text == "1"
        assert content.find_element(By.CSS_SELECTOR, "pre code").text == "print('hi')"
        link = content.find_element(By.CSS_SELECTOR, "a")
        assert link.get_attribute("href") == "https://example.com/docs" and "noopener" in link.get_attribute("rel")
    # The question, its image and the start of the answer in view (the README shows this screenshot).
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", user)
    browser.save_screenshot(str(output_dir / "answer.png"))
    if os.environ.get("POSTLENS_UPDATE_README_SCREENSHOT") == "1":
        target = REPO / "docs" / "images" / "web-ui.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(output_dir / "answer.png", target)

    # Multi-turn: a second question goes out with the first exchange as context.
    question_count = len(browser.find_elements(By.CSS_SELECTOR, ".message.user"))
    type_and_send(browser, "And in Chinese?")
    wait_idle(browser)
    assert len(browser.find_elements(By.CSS_SELECTOR, ".message.user")) == question_count + 1
    texts = [m.text for m in browser.find_elements(By.CSS_SELECTOR, ".message")]
    conversation = current_id(browser)

    reload(browser)
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".message")) == len(texts), message="history not restored")
    assert [m.text for m in browser.find_elements(By.CSS_SELECTOR, ".message")] == texts
    assert current_id(browser) == conversation
    status, body, _ = http(server["base"], f"/api/conversations/{conversation}")
    assert status == 200 and [m["role"] for m in body["messages"]] == ["user", "assistant", "user", "assistant"]
    assert body["messages"][1]["stats"]["completion_tokens"] > 0
    assert len(body["messages"][0]["images"]) == 1
    # The follow-up carries the image again: the server's prefix cache held its tokens, and the page says so (from
    # usage: cached prompt tokens covering the image tokens).
    assert body["messages"][3]["stats"].get("image_cache") is True, body["messages"][3]["stats"]


def test_model_output_never_becomes_live_html(browser, server):
    open_page(browser, server)
    hostile = ('# Title <script>window.__pwned=1</script>\n\n<img src=x onerror="window.__pwned=2">\n\n'
               '[x](javascript:window.__pwned=3) <b>bold?</b>\n\n| a |\n|---|\n| <script>window.__pwned=4</script> |\n\n'
               '```\n</code></pre><script>window.__pwned=5</script>\n```')
    result = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        import('/assets/markdown.js').then(({renderMarkdown}) => {
          const box = document.createElement('div');
          box.append(renderMarkdown(arguments[0]));
          document.body.append(box);
          setTimeout(() => done({
            scripts: box.querySelectorAll('script').length, imgs: box.querySelectorAll('img').length,
            bolds: box.querySelectorAll('b').length, links: [...box.querySelectorAll('a')].map(a => a.href),
            pwned: window.__pwned ?? null, text: box.textContent,
          }), 300);
        });
    """, hostile)
    assert result["scripts"] == 0 and result["imgs"] == 0 and result["bolds"] == 0 and result["links"] == []
    assert result["pwned"] is None
    assert "<script>window.__pwned=1</script>" in result["text"] and "<b>bold?</b>" in result["text"]
    if server_kind() == "stub":
        # The same through a streamed answer.
        new_conversation(browser)
        type_and_send(browser, "SCRIPT please")
        wait_idle(browser)
        content = answers(browser)[-1].find_element(By.CSS_SELECTOR, ".content")
        assert "<script>" in content.text and "</script>" in content.text and 'onerror="' in content.text
        assert not content.find_elements(By.CSS_SELECTOR, "script, img, a")
        assert browser.execute_script("return window.__pwned ?? null") is None


def test_stop_button_cancels_on_the_server(browser, server, output_dir):
    open_page(browser, server)
    browser.execute_script(
        "localStorage.setItem('postlens.settings', JSON.stringify({temperature: 1.0, maxTokens: 4096, detail: 'auto', system: '', apiKey: ''}))")
    reload(browser)
    new_conversation(browser)
    stop = browser.find_element(By.ID, "stop-button")
    # The fixture model samples at random and may end an answer at once: ask again until one is still going.
    for attempt in range(10):
        type_and_send(browser, f"SLOW: count to a thousand, one word per line, and keep going ({attempt})")
        wait(browser, lambda d: stop.is_displayed() or d.find_elements(By.CSS_SELECTOR, ".message.assistant"),
             message="stop button not shown while generating")
        streaming = wait(browser, lambda d: d.execute_script(
            "const c = document.querySelector('.message.streaming .content');"
            "if (c && c.textContent.length > 0) return 'streaming';"
            "return document.body.dataset.busy !== 'true' && !document.querySelector('.message.streaming') ? 'finished' : null"),
            timeout=STREAM_TIMEOUT)
        # The answer may still end on its own between this check and the click: then ask again.
        if streaming == "streaming" and stop.is_displayed():
            try:
                stop.click()
            except Exception:
                wait_idle(browser, timeout=15)
                continue
            break
        wait_idle(browser, timeout=15)
    else:
        pytest.fail("every answer finished before it could be stopped")
    wait_idle(browser, timeout=15)
    assert not stop.is_displayed() and browser.find_element(By.ID, "send-button").is_displayed()
    meta = answers(browser)[-1].find_element(By.CSS_SELECTOR, ".meta").text
    assert "stopped" in meta, meta
    # The server let go of the request: nothing in flight any more.
    deadline = time.monotonic() + 10
    while True:
        status, body, _ = http(server["base"], "/health")
        if body.get("in_flight") == 0:
            break
        assert time.monotonic() < deadline, f"still generating after stop: {body}"
        time.sleep(0.1)
    if server_kind() == "stub":
        status, stats, _ = http(server["base"], "/stub/stats")
        assert stats["cancelled"] >= 1
    browser.save_screenshot(str(output_dir / "stopped.png"))
    status, body, _ = http(server["base"], f"/api/conversations/{current_id(browser)}")
    assert body["messages"][-1]["stats"]["stopped"] is True


def test_regenerate_and_edit_last_question(browser, server):
    open_page(browser, server)
    new_conversation(browser)
    type_and_send(browser, "First question")
    wait_idle(browser)
    answers(browser)[-1].find_element(By.CSS_SELECTOR, ".action-regenerate").click()
    wait_idle(browser)
    conversation = current_id(browser)
    status, body, _ = http(server["base"], f"/api/conversations/{conversation}")
    assert [m["role"] for m in body["messages"]] == ["user", "assistant"]
    browser.find_element(By.CSS_SELECTOR, ".message.user .action-edit").click()
    box = browser.find_element(By.ID, "composer-input")
    assert box.get_attribute("value") == "First question"
    assert browser.find_element(By.ID, "edit-banner").is_displayed()
    box.clear()
    box.send_keys("Edited question")
    box.send_keys(Keys.ENTER)
    wait_idle(browser)
    status, body, _ = http(server["base"], f"/api/conversations/{conversation}")
    assert [(m["role"], m["content"]) for m in body["messages"]][0] == ("user", "Edited question")
    assert len(body["messages"]) == 2


def test_rename_delete_and_search(browser, server):
    open_page(browser, server)
    new_conversation(browser)
    type_and_send(browser, "Zebra crossing sign")
    wait_idle(browser)
    conversation = current_id(browser)
    browser.find_element(By.ID, "rename-button").click()
    alert = wait(browser, lambda d: d.switch_to.alert)
    alert.send_keys("Renamed zebra")
    alert.accept()
    wait(browser, lambda d: d.find_element(By.ID, "conversation-title").text == "Renamed zebra")
    wait(browser, lambda d: any(e.text.startswith("Renamed zebra") for e in d.find_elements(By.CSS_SELECTOR, ".conversation-item")))
    search = browser.find_element(By.ID, "search")
    search.send_keys("crossing")
    wait(browser, lambda d: [e.get_attribute("data-id") for e in d.find_elements(By.CSS_SELECTOR, ".conversation-item")] == [conversation],
         message="search by text")
    search.clear()
    search.send_keys("no-such-thing-xyz")
    wait(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, ".conversation-item"))
    search.clear()
    search.send_keys(" ")
    search.send_keys(Keys.BACKSPACE)
    browser.find_element(By.ID, "delete-button").click()
    wait(browser, lambda d: d.switch_to.alert).accept()
    wait(browser, lambda d: d.find_element(By.ID, "conversation-title").text == "PostLens")
    wait(browser, lambda d: conversation not in [e.get_attribute("data-id") for e in d.find_elements(By.CSS_SELECTOR, ".conversation-item")])
    status, _, _ = http(server["base"], f"/api/conversations/{conversation}")
    assert status == 404


def test_export_downloads_json_that_reimports_identically(browser, server, png_file, downloads):
    open_page(browser, server)
    new_conversation(browser)
    attach_via_input(browser, png_file)
    type_and_send(browser, "Export me")
    wait_idle(browser)
    conversation = current_id(browser)
    for old in downloads.glob("*"):
        old.unlink()
    browser.find_element(By.ID, "export-button").click()
    wait(browser, lambda d: [p for p in downloads.glob("*.json")], timeout=15, message="no download")
    file = next(downloads.glob("*.json"))
    time.sleep(0.3)
    document = json.loads(file.read_text())
    assert document["format"] == "postlens.conversations" and document["version"] == 1
    assert document["conversations"][0]["messages"][0]["images"][0]["dataURL"].startswith("data:image/png;base64,")

    before = {e.get_attribute("data-id") for e in browser.find_elements(By.CSS_SELECTOR, ".conversation-item")}
    browser.find_element(By.ID, "import-file").send_keys(str(file))
    wait(browser, lambda d: current_id(d) not in before and current_id(d) is not None, message="import did not open a conversation")
    imported = current_id(browser)
    _, original, _ = http(server["base"], f"/api/conversations/{conversation}")
    _, copy, _ = http(server["base"], f"/api/conversations/{imported}")

    def comparable(c):
        return {"title": c["title"], "createdAt": c["createdAt"], "updatedAt": c["updatedAt"], "parameters": c["parameters"],
                "messages": [{k: m.get(k) for k in ("role", "content", "images", "createdAt", "stats")} for m in c["messages"]]}

    assert comparable(copy) == comparable(original)
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".message")) == 2)


def test_structured_preset_shows_a_card_with_raw_json(browser, server, png_file, output_dir):
    open_page(browser, server)
    new_conversation(browser)
    attach_via_input(browser, png_file)
    presets = browser.find_elements(By.CSS_SELECTOR, "#presets .preset")
    assert [p.get_attribute("data-preset") for p in presets] == ["ocr", "describe", "moderation", "sentiment", "promo", "detect"]
    browser.find_element(By.CSS_SELECTOR, '#presets [data-preset="moderation"]').click()
    wait_idle(browser)
    assert "Moderation check" in browser.find_element(By.ID, "conversation-title").text
    if server_kind() != "stub":
        return  # the fixture model's words are random: no JSON to show
    card = answers(browser)[-1].find_element(By.CSS_SELECTOR, ".card")
    assert "severity\nmedium" in card.find_element(By.CSS_SELECTOR, "dl").text.lower()
    raw = card.find_element(By.CSS_SELECTOR, ".card-raw")
    assert not raw.is_displayed()
    card.find_element(By.CSS_SELECTOR, ".toggle-raw").click()
    assert raw.is_displayed() and json.loads(raw.text)["severity"] == "medium"
    assert browser.find_element(By.ID, "csv-button").is_enabled()
    browser.save_screenshot(str(output_dir / "structured-card.png"))


def test_phone_width_has_no_horizontal_scroll(browser, server, output_dir):
    open_page(browser, server)
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    try:
        reload(browser)
        browser.execute_script("document.getElementById('new-chat').click()")
        type_and_send(browser, "A very long question with a_very_long_unbroken_token_" + "x" * 200)
        wait_idle(browser)
        widths = browser.execute_script("""
            return [document.documentElement.scrollWidth, document.documentElement.clientWidth,
                    document.body.scrollWidth, document.getElementById('messages').scrollWidth,
                    document.getElementById('messages').clientWidth, window.innerWidth];
        """)
        assert widths[0] <= widths[1] and widths[2] <= widths[1] and widths[3] <= widths[4], widths
        assert not browser.find_element(By.ID, "sidebar").is_displayed()
        browser.save_screenshot(str(output_dir / "phone.png"))
        browser.find_element(By.ID, "open-sidebar").click()
        wait(browser, lambda d: d.find_element(By.ID, "search").is_displayed())
        time.sleep(0.3)
        browser.save_screenshot(str(output_dir / "phone-sidebar.png"))
        assert browser.execute_script("return document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_chinese_ui_and_settings_are_remembered(browser, server, output_dir):
    open_page(browser, server)
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, "language")).select_by_value("zh")
    wait(browser, lambda d: d.find_element(By.ID, "send-button").text == "发送")
    assert browser.find_element(By.CSS_SELECTOR, '#presets [data-preset="ocr"]').text == "识别全部文字"
    assert browser.execute_script("return document.documentElement.lang") == "zh-CN"
    browser.find_element(By.ID, "settings-button").click()
    dialog = browser.find_element(By.ID, "settings")
    wait(browser, lambda d: dialog.is_displayed())
    max_tokens = browser.find_element(By.ID, "set-max-tokens")
    max_tokens.clear()
    max_tokens.send_keys("321")
    system = browser.find_element(By.ID, "set-system")
    system.send_keys("只用中文回答。")
    browser.save_screenshot(str(output_dir / "settings-zh.png"))
    browser.find_element(By.ID, "close-settings").click()
    wait(browser, lambda d: not dialog.is_displayed())
    reload(browser)
    assert browser.find_element(By.ID, "send-button").text == "发送"
    settings = browser.execute_script("return JSON.parse(localStorage.getItem('postlens.settings'))")
    assert settings["maxTokens"] == 321 and settings["system"] == "只用中文回答。"
    browser.save_screenshot(str(output_dir / "chinese.png"))
    Select(browser.find_element(By.ID, "language")).select_by_value("en")


def test_keyboard_and_labels(browser, server):
    open_page(browser, server)
    box = browser.find_element(By.ID, "composer-input")
    box.send_keys("line one")
    box.send_keys(Keys.SHIFT, Keys.ENTER)
    box.send_keys("line two")
    assert box.get_attribute("value") == "line one\nline two"
    assert not browser.find_elements(By.CSS_SELECTOR, ".message.user"), "Shift+Enter must not send"
    unlabeled = browser.execute_script("""
        return [...document.querySelectorAll('button, input, select, textarea')]
          .filter(el => el.getAttribute('aria-hidden') !== 'true' && el.type !== 'hidden')
          .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
          .map(el => el.id || el.outerHTML.slice(0, 80));
    """)
    assert unlabeled == []
    # Focus order follows the document: no positive tabindex, the skip link first, and it leads to the message box.
    order = browser.execute_script("""
        const tabbable = [...document.querySelectorAll('a[href], button, input, select, textarea, [tabindex]')]
          .filter(el => el.tabIndex >= 0 && !el.disabled && el.offsetParent !== null);
        return {positive: [...document.querySelectorAll('[tabindex]')].filter(el => el.tabIndex > 0).length,
                first: tabbable[0].className, ids: tabbable.map(el => el.id).filter(Boolean)};
    """)
    assert order["positive"] == 0 and order["first"] == "skip-link"
    ids = order["ids"]
    assert ids.index("new-chat") < ids.index("search") < ids.index("settings-button") < ids.index("composer-input") < ids.index("send-button")
    assert browser.find_element(By.CSS_SELECTOR, ".skip-link").get_attribute("href").endswith("#composer-input")


def test_clear_messages_when_loading_busy_or_unreachable(browser, server):
    if server_kind() != "stub":
        pytest.skip("needs the stub's switchable states (the real server is checked by its own tests)")
    open_page(browser, server)
    http(server["base"], "/stub/mode", "POST", {"busy": True})
    try:
        new_conversation(browser)
        type_and_send(browser, "Are you busy?")
        wait(browser, lambda d: "busy" in d.find_element(By.ID, "status").text, message="no busy message")
        assert "3 s" in browser.find_element(By.ID, "status").text
    finally:
        http(server["base"], "/stub/mode", "POST", {"busy": False})
    http(server["base"], "/stub/mode", "POST", {"health": "loading"})
    try:
        reload(browser)
        wait(browser, lambda d: "loading" in d.find_element(By.ID, "status").text, message="no loading message")
    finally:
        http(server["base"], "/stub/mode", "POST", {"health": "ready"})
    wait(browser, lambda d: not d.find_element(By.ID, "status").is_displayed(), timeout=10, message="loading message stays after ready")
    # Unreachable: the page's fetches fail.
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    try:
        type_and_send(browser, "Hello?")
        wait(browser, lambda d: "Cannot reach the server" in d.find_element(By.ID, "status").text, message="no unreachable message")
    finally:
        browser.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})


def test_batch_jobs_are_listed_with_progress(browser, server, output_dir):
    if server_kind() == "stub":
        pytest.skip("the stub keeps no batch jobs")
    body = "\n".join(json.dumps({"id": f"j{i}", "text": f"第{i}条评论"}, ensure_ascii=False) for i in range(3)).encode()
    status, job, _ = http(server["base"], "/v1/batches?task=sentiment", "POST", body)
    assert status == 200, job
    open_page(browser, server)
    row = f'#job-list li[data-job-id="{job["id"]}"]'
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, row), message="the job is not listed")
    assert browser.find_element(By.ID, "jobs-panel").is_displayed()
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, row).get_attribute("data-state") == "completed", timeout=STREAM_TIMEOUT,
         message="the job's row never showed it completed")
    item = browser.find_element(By.CSS_SELECTOR, row)
    assert item.find_element(By.CSS_SELECTOR, ".job-task").text == "sentiment@2"
    assert item.find_element(By.CSS_SELECTOR, "progress").get_attribute("value") == "3"
    assert item.find_element(By.CSS_SELECTOR, "progress").get_attribute("max") == "3"
    assert "3/3" in item.find_element(By.CSS_SELECTOR, ".job-count").text
    browser.save_screenshot(str(output_dir / "jobs-panel.png"))
