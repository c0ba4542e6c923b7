"""The operator console in a real browser: headless Chromium driven by Playwright logs in, sees a live
call appear and grow without reloading, hangs it up, opens the call's page and plays its recording.

Chromium is Debian's package (installed by ``scripts/install.sh --test``): Playwright's own browser
download needs the network, which an install here may not have.
"""

from __future__ import annotations

import shutil

import pytest

from sip_peers import WireCaller

PASSWORD = "correct horse battery staple"  # what conftest.console_site sets


@pytest.fixture(scope="module")
def site(console_site):
    return console_site[0]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium,  # None: Playwright's own download, where it could fetch one
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"])
        yield launched
        launched.close()


def test_an_operator_watches_a_live_call_hangs_it_up_and_plays_the_recording(site, board, browser, tmp_path):
    page = browser.new_page()
    page.goto(site + "/")
    assert page.url.endswith("/login")
    page.fill('input[name="password"]', PASSWORD)
    page.click("text=Log in")
    page.wait_for_url(site + "/")

    caller = WireCaller(("127.0.0.1", board.settings.sip.port), user="browser-caller")
    caller.dial()
    try:
        row = f'tr[data-call-id="{caller.call_id}"]'
        page.wait_for_selector(row, timeout=15_000)  # pushed by the event stream: no reload
        page.wait_for_function(
            "sel => { const r = document.querySelector(sel); return r && r.textContent.includes('Thank you for calling'); }",
            arg=row, timeout=20_000)
        assert "browser-caller" in page.inner_text(row) and "inbound" in page.inner_text(row)
        page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
        page.click(f"{row} >> text=Hang up")
        assert caller.ended.wait(15), "the agent never hung up"
        page.wait_for_selector(row, state="detached", timeout=15_000)
    finally:
        caller.close()

    outcome = next(o for o in board.finished if o.call_id == caller.call_id)
    page.goto(site + "/calls?q=browser-caller")
    page.click(f'a[href="/calls/{outcome.conversation_id}"]')
    page.wait_for_selector("audio")
    playing = page.evaluate("""async () => {
        const audio = document.querySelector('audio');
        await audio.play();
        await new Promise(r => setTimeout(r, 800));
        return {time: audio.currentTime, duration: audio.duration, error: audio.error && audio.error.code};
    }""")
    assert playing["error"] is None and playing["duration"] > 1 and playing["time"] > 0.3, playing
    assert "Thank you for calling" in page.inner_text("main") and page.query_selector("svg.chart")
    page.screenshot(path=str(tmp_path / "call.png"), full_page=True)
    page.close()
