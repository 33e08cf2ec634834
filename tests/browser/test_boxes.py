"""Grounding boxes and reasoning in the web page (headless Chromium; see conftest.py for which server).

The fixture model's words are random, so the answers with boxes come either from the conversation API (an answer
stored as the model would have written it) or from a scripted stream (the page's fetch of /v1/chat/completions
answered in the page); everything else — storing, rendering, exporting — is the real page against the server.
The placement check is on pixels of a screenshot: the image holds a pure red block, the answer's box is the block's
place in Qwen's 0–1000 frame, and the box's outline must be drawn around the red pixels on the screen.
"""
import base64
import json
import struct
import time
import zlib

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from conftest import http
from test_web_ui import answers, attach_via_input, current_id, open_page, wait, wait_idle

# An odd-sized image that the page shows scaled down (at most 420 px high), so a box placed in image pixels instead of
# in percent of the displayed image would miss the block.
RED_BLOCK = (300, 150, 600, 450)     # x1, y1, x2, y2 (edges) in the 991×653 image
SIZE = (991, 653)
# The block in Qwen3-VL's frame: round(v / side · 1000).
FRAME = [round(RED_BLOCK[0] / SIZE[0] * 1000), round(RED_BLOCK[1] / SIZE[1] * 1000),
         round(RED_BLOCK[2] / SIZE[0] * 1000), round(RED_BLOCK[3] / SIZE[1] * 1000)]
BOX_COLOR = (230, 25, 75)            # PALETTE[0] in boxes.js


def png(width, height, block=None, background=(120, 120, 120), color=(255, 0, 0)):
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            inside = block and block[0] <= x < block[2] and block[1] <= y < block[3]
            rows.extend(color if inside else background)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(rows))) + chunk(b"IEND", b""))


def data_url(data):
    return "data:image/png;base64," + base64.b64encode(data).decode()


def grounding_answer():
    return ('Found it:\n```json\n[{"bbox_2d": %s, "label": "red block"}]\n```\nThe red block sits left of the middle.'
            % json.dumps(FRAME))


def screen_pixels(browser, rect):
    """RGB triples of the screenshot inside `rect` (CSS pixels at device scale 1), read back in the page."""
    shot = browser.get_screenshot_as_base64()
    return browser.execute_async_script("""
        const [b64, r, done] = arguments;
        const img = new Image();
        img.onload = () => {
          const c = document.createElement('canvas');
          c.width = img.width; c.height = img.height;
          const g = c.getContext('2d');
          g.drawImage(img, 0, 0);
          const d = g.getImageData(r.x, r.y, r.w, r.h).data;
          const out = [];
          for (let i = 0; i < d.length; i += 4) out.push([d[i], d[i + 1], d[i + 2]]);
          done({w: r.w, h: r.h, px: out});
        };
        img.src = 'data:image/png;base64,' + b64;
    """, shot, rect)


def close(a, b, tolerance=40):
    return all(abs(x - y) <= tolerance for x, y in zip(a, b))


def test_boxes_are_drawn_over_the_right_image_at_the_right_place(browser, server, output_dir):
    base = server["base"]
    status, conversation, _ = http(base, "/api/conversations", "POST", {"title": "Boxes"})
    assert status in (200, 201), conversation
    cid = conversation["id"]
    first = png(400, 300, block=(300, 200, 390, 290), color=(0, 0, 255))
    second = png(*SIZE, block=RED_BLOCK)
    for message in ({"role": "user", "content": "What is this?", "images": [data_url(first)]},
                    {"role": "assistant", "content": "A gray picture with a blue corner."},
                    {"role": "user", "content": "Where is the red block?", "images": [data_url(second)]},
                    {"role": "assistant", "content": grounding_answer()}):
        status, body, _ = http(base, f"/api/conversations/{cid}/messages", "POST", message)
        assert status in (200, 201), body
    status, stored, _ = http(base, f"/api/conversations/{cid}")
    second_sha = stored["messages"][2]["images"][0]["sha256"]

    open_page(browser, server)
    browser.execute_script("localStorage.setItem('postlens.current', arguments[0])", cid)
    browser.refresh()
    wait(browser, lambda d: d.execute_script("return document.body.dataset.ready === 'true'"))
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".message.assistant .boxed img"), message="no boxed image")
    replies = answers(browser)
    # Only the answer with boxes gets a figure, and it shows the image of its own question (the second one).
    assert not replies[0].find_elements(By.CSS_SELECTOR, ".boxed")
    figure_img = replies[1].find_element(By.CSS_SELECTOR, ".boxed img")
    wait(browser, lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", figure_img))
    assert second_sha in figure_img.get_attribute("src") or figure_img.get_attribute("src").startswith("data:")
    assert browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", figure_img) == list(SIZE)
    assert browser.execute_script("return arguments[0].getBoundingClientRect().height", figure_img) < SIZE[1] * 0.8  # shown scaled
    boxes = replies[1].find_elements(By.CSS_SELECTOR, ".box")
    assert len(boxes) == 1 and "red block" in boxes[0].get_attribute("textContent")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", figure_img)
    time.sleep(0.3)
    browser.save_screenshot(str(output_dir / "boxes.png"))

    # Where the image and the box are on the screen.
    img_rect = browser.execute_script("const r = arguments[0].getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height}", figure_img)
    box_rect = browser.execute_script("const r = arguments[0].getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height}", boxes[0])
    # The box sits at the frame coordinates of the image element (no padding, no offset).
    for got, want in ((box_rect["x"], img_rect["x"] + FRAME[0] / 1000 * img_rect["w"]),
                      (box_rect["y"], img_rect["y"] + FRAME[1] / 1000 * img_rect["h"]),
                      (box_rect["x"] + box_rect["w"], img_rect["x"] + FRAME[2] / 1000 * img_rect["w"]),
                      (box_rect["y"] + box_rect["h"], img_rect["y"] + FRAME[3] / 1000 * img_rect["h"])):
        assert abs(got - want) < 1.0, (box_rect, img_rect)

    # Pixels: read the screen around the image; find the red block as drawn by the browser and the box's outline
    # (its tag, in the same colour, is hidden for the reading).
    browser.execute_script("for (const t of document.querySelectorAll('.box-tag')) t.style.visibility = 'hidden'")
    region = {"x": int(img_rect["x"]), "y": int(img_rect["y"]), "w": int(img_rect["w"]), "h": int(img_rect["h"])}
    shot = screen_pixels(browser, region)
    w, h, px = shot["w"], shot["h"], shot["px"]
    red = [(i % w, i // w) for i, p in enumerate(px) if p[0] > 220 and p[1] < 40 and p[2] < 40]
    assert red, "the red block is not on the screen"
    rx1, ry1 = min(x for x, _ in red), min(y for _, y in red)
    rx2, ry2 = max(x for x, _ in red) + 1, max(y for _, y in red) + 1
    outline = [(i % w, i // w) for i, p in enumerate(px) if close(p, BOX_COLOR, 30)]
    assert outline, "no box outline on the screen"
    ox1, oy1 = min(x for x, _ in outline), min(y for _, y in outline)
    ox2, oy2 = max(x for x, _ in outline) + 1, max(y for _, y in outline) + 1
    # The outline (2 px, drawn inside the box) encloses the visible red block and hugs it: the red shows from just
    # inside the outline to its far side. One pixel of slack: the frame is integers (±0.5/1000 of a side) and the
    # browser blends the edge pixels of the scaled image and of the fractional box.
    print(f"[boxes] on screen: outline {(ox1, oy1, ox2, oy2)}, red block {(rx1, ry1, rx2, ry2)} (image shown {w}x{h})")
    assert ox1 - 1 <= rx1 <= ox1 + 4 and oy1 - 1 <= ry1 <= oy1 + 4, ((ox1, oy1, ox2, oy2), (rx1, ry1, rx2, ry2))
    assert ox2 - 4 <= rx2 <= ox2 + 1 and oy2 - 4 <= ry2 <= oy2 + 1, ((ox1, oy1, ox2, oy2), (rx1, ry1, rx2, ry2))
    browser.execute_script("for (const t of document.querySelectorAll('.box-tag')) t.style.visibility = ''")

    # Hover: the box, its legend entry and the words that name it light up together.
    ActionChains(browser).move_to_element(boxes[0]).perform()
    wait(browser, lambda d: "active" in boxes[0].get_attribute("class"))
    legend = replies[1].find_element(By.CSS_SELECTOR, ".box-legend li")
    mark = replies[1].find_element(By.CSS_SELECTOR, "mark.box-ref")
    assert "active" in legend.get_attribute("class") and "active" in mark.get_attribute("class")
    assert mark.text == "red block"
    ActionChains(browser).move_to_element(replies[1].find_element(By.CSS_SELECTOR, ".meta, .message-actions")).perform()
    wait(browser, lambda d: "active" not in mark.get_attribute("class"))
    # Toggle: the boxes go and come back.
    toggle = replies[1].find_element(By.CSS_SELECTOR, ".toggle-boxes")
    toggle.click()
    assert not boxes[0].is_displayed() and toggle.get_attribute("aria-pressed") == "false"
    toggle.click()
    assert boxes[0].is_displayed()


SCRIPTED_STREAM = """
    const [answer, reasoning] = arguments;
    window.__realFetch = window.__realFetch || window.fetch;
    window.fetch = async (url, options) => {
      if (String(url).endsWith('/v1/chat/completions')) {
        window.__lastBody = JSON.parse(options.body);
        const chunk = (delta, extra = {}) => 'data: ' + JSON.stringify({id: 'x', object: 'chat.completion.chunk',
          choices: [{index: 0, delta, finish_reason: null}], ...extra}) + '\\n\\n';
        const parts = [chunk({role: 'assistant', content: ''})];
        for (const piece of reasoning) parts.push(chunk({reasoning_content: piece}));
        for (const piece of answer.match(/[\\s\\S]{1,12}/g)) parts.push(chunk({content: piece}));
        parts.push('data: ' + JSON.stringify({id: 'x', object: 'chat.completion.chunk', choices: [],
          usage: {prompt_tokens: 10, completion_tokens: 20, total_tokens: 30, completion_tokens_details: {reasoning_tokens: 7}}}) + '\\n\\n');
        parts.push('data: [DONE]\\n\\n');
        const body = new ReadableStream({start(c) { const e = new TextEncoder(); for (const p of parts) c.enqueue(e.encode(p)); c.close(); }});
        return new Response(body, {status: 200, headers: {'Content-Type': 'text/event-stream'}});
      }
      return window.__realFetch(url, options);
    };
"""


def test_streamed_reasoning_is_collapsed_and_boxes_are_exported(browser, server, tmp_path, downloads):
    open_page(browser, server)
    browser.find_element(By.ID, "new-chat").click()
    image = tmp_path / "block.png"
    image.write_bytes(png(*SIZE, block=RED_BLOCK))
    attach_via_input(browser, image)
    browser.execute_script(SCRIPTED_STREAM, grounding_answer(), ["The user asks ", "where the red block is.\n", "It is on the left."])
    browser.find_element(By.ID, "composer-input").send_keys("Where is the red block?")
    browser.find_element(By.ID, "send-button").click()
    wait_idle(browser)
    reply = answers(browser)[-1]
    details = wait(browser, lambda d: reply.find_element(By.CSS_SELECTOR, "details.reasoning"))
    # Collapsed: the reasoning is one click away, the answer is what shows.
    assert details.get_attribute("open") is None
    assert "7" in details.find_element(By.CSS_SELECTOR, "summary").text
    details.find_element(By.CSS_SELECTOR, "summary").click()
    assert details.find_element(By.CSS_SELECTOR, ".reasoning-text").text.startswith("The user asks where the red block is.")
    assert reply.find_elements(By.CSS_SELECTOR, ".boxed .box")

    # Stored with the answer, in both frames, against the image of the question — and so in the export.
    cid = current_id(browser)
    status, stored, _ = http(server["base"], f"/api/conversations/{cid}")
    stats = stored["messages"][1]["stats"]
    assert stats["reasoning"] == "The user asks where the red block is.\nIt is on the left."
    [saved] = stats["boxes"]
    assert saved["bbox_2d"] == FRAME and saved["bbox_px"] == list(RED_BLOCK)  # frame → pixels undoes pixels → frame here
    assert saved["image"] == stored["messages"][0]["images"][0]["sha256"] and saved["image_size"] == list(SIZE)
    for old in downloads.glob("*"):
        old.unlink()
    browser.find_element(By.ID, "export-button").click()
    wait(browser, lambda d: list(downloads.glob("*.json")), timeout=15, message="no export")
    time.sleep(0.3)
    document = json.loads(next(downloads.glob("*.json")).read_text())
    exported = document["conversations"][0]["messages"][1]
    assert exported["stats"]["boxes"][0]["bbox_px"] == list(RED_BLOCK)
    assert "bbox_2d" in exported["content"]  # the answer itself, from which the page draws again after an import

    # The page's CSV carries both frames.
    csv_button = browser.find_element(By.ID, "csv-button")
    assert csv_button.is_enabled()
    for old in downloads.glob("*"):
        old.unlink()
    csv_button.click()
    wait(browser, lambda d: list(downloads.glob("*.csv")), timeout=15, message="no CSV")
    time.sleep(0.3)
    csv = next(downloads.glob("*.csv")).read_text()
    assert "boxes_2d" in csv and "boxes_px" in csv
    assert "red block [%s]" % ",".join(map(str, FRAME)) in csv and "red block [%s]" % ",".join(map(str, RED_BLOCK)) in csv
    browser.execute_script("window.fetch = window.__realFetch")


def test_the_served_model_is_named_in_the_top_bar(browser, server):
    open_page(browser, server)
    status, health, _ = http(server["base"], "/health")
    badge = wait(browser, lambda d: d.find_element(By.ID, "model-badge") if d.find_element(By.ID, "model-badge").is_displayed() else None)
    info = health.get("model_info") or {}
    expected = info.get("name") if info.get("name") not in (None, "Qwen3-VL") else health["model"]
    assert expected in badge.text
    # The thinking settings show only for a model that thinks.
    assert browser.execute_script("return document.body.dataset.thinking") == ("true" if info.get("thinking") else "false")
