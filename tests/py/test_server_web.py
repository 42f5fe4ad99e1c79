"""The web page at / in headless Chromium (Debian's chromium, driven by the
playwright Python package): type a message, send it, watch the streamed
reply appear, and check the live status view. The screenshot goes to
$SUANLI_SCREENSHOT when set (docs/server-web-ui.png was made that way),
else to the test's temporary directory."""

import os
import shutil
from pathlib import Path

import pytest

from server_util import ServerProcess


def chromium_path():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


@pytest.fixture(scope="module")
def server(suanli_bin, default_model):
    s = ServerProcess(suanli_bin, default_model)
    yield s
    assert s.stop() == 0


def test_web_ui_streams_a_chat_reply(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (scripts/setup.sh --test)")
    exe = chromium_path()
    if exe is None:
        pytest.skip("no chromium on PATH: scripts/setup.sh --test installs Debian's chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1100, "height": 640})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/")
        # The status view fills in from /v1/status.
        page.wait_for_function("document.getElementById('st-device').textContent !== '–'", timeout=15000)
        assert "cpu" in page.inner_text("#st-device").lower() or page.inner_text("#st-device")
        assert page.locator("#st-queues tbody tr").count() == 3
        page.fill("#max-tokens", "24")
        page.fill("#temperature", "0")
        page.fill("#input", "What is the capital of France?")
        page.click("#send")
        page.wait_for_selector(".msg.user")
        # Streaming: text shows up before the reply is done, then it finishes.
        page.wait_for_function(
            "(() => { const m = document.querySelectorAll('.msg.assistant .text'); return m.length && m[m.length-1].textContent.length > 0; })()",
            timeout=60000,
        )
        page.wait_for_selector(".msg.assistant.done", timeout=60000)
        reply = page.inner_text(".msg.assistant .text")
        assert reply.strip() and "[error" not in reply
        page.wait_for_timeout(2500)  # one more status poll: tokens/s includes the reply
        out = Path(os.environ.get("SUANLI_SCREENSHOT") or tmp_path / "server-web-ui.png")
        page.screenshot(path=str(out))
        browser.close()
        assert not errors, errors
    assert out.stat().st_size > 1000
