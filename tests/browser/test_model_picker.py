"""The operator picks the served model on the page: a real `postlens serve --model tiny --offer thinking` (two fixture
models, one loaded at a time), the top bar's picker, the browser's confirmation, /health followed through the load.
Needs the real server (the stub has no model to switch).
"""
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from conftest import REPO, _start_real, http, server_kind
from test_web_ui import answers, new_conversation, open_page, type_and_send, wait, wait_idle

THINKING = REPO / "Tests" / "Fixtures" / "models" / "thinking"


@pytest.fixture(scope="module")
def offering_server(browser):
    if server_kind() != "real":
        pytest.skip("switching models needs the real server (POSTLENS_BROWSER_SERVER=real)")
    info = _start_real(["--offer", str(THINKING)])
    try:
        yield info
    finally:
        # Leave the page and drop its console log: the 503s of /health while a model loads are expected here, and the
        # browser is shared with tests that require a clean log.
        browser.get("about:blank")
        browser.get_log("browser")
        info["stop"]()


def served(server):
    return http(server["base"], "/health")[1]


def pick(browser, model_id):
    Select(browser.find_element(By.ID, "model-picker")).select_by_value(model_id)
    return wait(browser, lambda d: d.switch_to.alert, message="no confirmation asked")


def test_the_operator_switches_the_served_model_from_the_page(browser, offering_server):
    base = offering_server["base"]
    open_page(browser, offering_server)
    browser.refresh()
    picker = wait(browser, lambda d: d.find_element(By.ID, "model-picker") if d.find_element(By.ID, "model-picker").is_displayed() else None,
                  message="no model picker for a server that offers two models")
    # Both offered models, the served one selected; the plain badge gives way to the picker.
    options = [o.get_attribute("value") for o in Select(picker).options]
    assert options == ["tiny", "thinking"]
    assert Select(picker).first_selected_option.get_attribute("value") == "tiny"
    assert not browser.find_element(By.ID, "model-badge").is_displayed()
    assert browser.execute_script("return document.body.dataset.thinking") == "false"

    # Dismissing the confirmation changes nothing.
    pick(browser, "thinking").dismiss()
    assert Select(picker).first_selected_option.get_attribute("value") == "tiny"
    assert served(offering_server)["model"] == "tiny"

    # Accepting it switches: the server loads the thinking model, the page follows /health until it is ready.
    pick(browser, "thinking").accept()
    wait(browser, lambda d: d.execute_script("return document.body.dataset.model") == "thinking"
         and d.execute_script("return document.body.dataset.health") == "ready", timeout=60, message="the page did not follow the switch")
    health = served(offering_server)
    assert health["status"] == "ready" and health["model"] == "thinking" and health["model_info"]["thinking"] is True
    assert browser.execute_script("return document.body.dataset.thinking") == "true"
    status, models, _ = http(base, "/v1/models")
    assert [(m["id"], m["postlens"]["status"]) for m in models["data"]] == [("thinking", "loaded"), ("tiny", "available")]
    wait(browser, lambda d: Select(d.find_element(By.ID, "model-picker")).first_selected_option.get_attribute("value") == "thinking")

    # The answer now comes from the thinking model: its reasoning shows collapsed above the answer.
    browser.execute_script(
        "localStorage.setItem('postlens.settings', JSON.stringify({temperature: 0, maxTokens: 24, detail: 'auto', system: '', apiKey: '', thinking: 'on', reasoningBudget: '6'}))")
    browser.refresh()
    wait(browser, lambda d: d.execute_script("return document.body.dataset.ready === 'true' && document.body.dataset.health === 'ready'"))
    new_conversation(browser)
    type_and_send(browser, "How much?")
    wait_idle(browser)
    reply = answers(browser)[-1]
    details = wait(browser, lambda d: reply.find_element(By.CSS_SELECTOR, "details.reasoning"), message="no reasoning shown")
    assert details.get_attribute("open") is None

    # And back to the Instruct model.
    pick(browser, "tiny").accept()
    wait(browser, lambda d: d.execute_script("return document.body.dataset.model") == "tiny"
         and d.execute_script("return document.body.dataset.health") == "ready", timeout=60)
    assert browser.execute_script("return document.body.dataset.thinking") == "false"
    assert served(offering_server)["model"] == "tiny"
