"""The web chat in a real browser: Debian's Chromium driven by Playwright for Python.

Needs ``pip install playwright`` (its driver comes with the package — never run
``playwright install``) and ``/usr/bin/chromium`` (``apt-get install chromium``). Without
them the tests skip with the reason; ``DESKBOT_TEST_REQUIRE_BROWSER=1`` (CI) makes that a failure.

The server is the real one (``live_server``: ``serve()`` under uvicorn in a subprocess).
A screenshot of the chat goes to ``docs/screenshots/webchat.png``.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bot.app import build_app
from bot.config import load_settings
from intents.base import IntentClassifier
from tests.web.conftest import REPO, LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path(os.environ.get("DESKBOT_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_BROWSER = os.environ.get("DESKBOT_TEST_REQUIRE_BROWSER", "") == "1"
SCREENSHOT = REPO / "docs" / "screenshots" / "webchat.png"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 20_000


def _unavailable(reason: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason}; DESKBOT_TEST_REQUIRE_BROWSER=1 requires it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser_available() -> None:
    """Skips (or fails) before the costly server starts; tests list it first."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("Playwright is not installed (.venv/bin/pip install playwright)")
    if not CHROMIUM.exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")


# Module scope, not session: while Playwright's sync API is open it owns this thread's event
# loop, and the async tests of other modules could not run.
@pytest.fixture(scope="module")
def browser(browser_available: None) -> Iterator[Browser]:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        except PlaywrightError as exc:
            _unavailable(f"Chromium at {CHROMIUM} does not start: {exc.message.splitlines()[0]}")
            raise
        try:
            yield launched
        finally:
            launched.close()


def new_page(browser: Browser, width: int = 900, height: int = 860, locale: str = "en-US") -> Page:
    context = browser.new_context(viewport={"width": width, "height": height}, locale=locale)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.errors = errors  # type: ignore[attr-defined]
    return page


def ask(page: Page, text: str) -> None:
    """Type like a person and press Enter; wait until the bot has answered."""
    bots_before = page.locator(".row.bot, .row.agent").count()
    page.locator("#input").fill(text)
    page.locator("#input").press("Enter")
    wait_for_bot(page, bots_before)


def wait_for_bot(page: Page, bots_before: int) -> None:
    page.wait_for_function(
        "n => document.querySelectorAll('.row.bot, .row.agent').length > n"
        " && document.getElementById('typing').hidden",
        arg=bots_before,
    )


def bubbles(page: Page) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = page.eval_on_selector_all(
        "#messages .row",
        "rows => rows.map(r => [r.classList[1], r.querySelector('.bubble').textContent])",
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def run_async(make: Any) -> Any:
    """Run a coroutine beside Playwright's sync API (which owns this thread's loop)."""
    with ThreadPoolExecutor(1) as executor:
        return executor.submit(asyncio.run, make()).result()


def test_chat_in_a_real_browser(browser_available: None, browser: Browser, live_server: LiveServer) -> None:
    page = new_page(browser)
    page.goto(f"{live_server.url}/")
    assert page.locator("h1").text_content() == "Demo Shop"
    assert page.locator("#intro").is_visible()

    page.evaluate(
        """() => {
            const typing = document.getElementById('typing');
            window.typingSeen = false;
            new MutationObserver(() => { if (!typing.hidden) window.typingSeen = true; })
                .observe(typing, {attributes: true});
        }"""
    )
    ask(page, "Hi!")
    assert page.evaluate("window.typingSeen") is True  # "typing…" showed while the bot worked
    assert page.locator("#typing").is_hidden()
    ask(page, "how much is the hoodie?")
    assert "49.90" in bubbles(page)[-1][1]
    ask(page, "卫衣有M码吗？")
    assert re.search(r"[\u4e00-\u9fff]", bubbles(page)[-1][1])

    # Something the bot cannot place: it offers quick replies, which send their payload.
    ask(page, "qwzx vbnm plok")
    chips = page.locator(".quick-reply")
    assert chips.count() >= 2
    titles = chips.all_text_contents()
    bots_before = page.locator(".row.bot").count()
    page.locator(".quick-reply", has_text="Products").click()
    wait_for_bot(page, bots_before)
    assert ("customer", "Products") in bubbles(page)
    assert page.locator(".quick-reply").all_text_contents() != titles  # the old choices are gone

    ask(page, "zzkq wvx")  # misunderstood again: the menu comes back
    menu = page.locator(".quick-reply").all_text_contents()
    assert "Products" in menu

    before_reload = bubbles(page)
    assert [who for who, _ in before_reload].count("customer") == 6
    page.reload()
    page.wait_for_function("n => document.querySelectorAll('#messages .row').length >= n", arg=len(before_reload))
    assert bubbles(page) == before_reload
    assert not page.locator("#intro").count()
    assert page.locator(".quick-reply").all_text_contents() == menu  # still usable after a reload

    page.wait_for_function(  # the newest message is in view
        "() => { const m = document.getElementById('messages');"
        " return m.scrollTop + m.clientHeight >= m.scrollHeight - 2; }"
    )
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), animations="disabled")
    assert page.errors == []  # type: ignore[attr-defined]
    page.context.close()


def test_agent_reply_arrives_by_polling_and_html_stays_text(
    browser_available: None,
    browser: Browser, live_server: LiveServer, web_classifier: IntentClassifier
) -> None:
    page = new_page(browser, width=390, height=780)  # a phone
    page.goto(f"{live_server.url}/")
    attack = '<img src=x onerror="window.__pwned = 1"><b>bold?</b>'
    ask(page, attack)
    assert ("customer", attack) in bubbles(page)
    assert page.locator("#messages img, #messages b").count() == 0
    assert page.evaluate("window.__pwned") is None

    ask(page, "I want to talk to a human")
    number = re.search(r"T-\d+", bubbles(page)[-1][1] + bubbles(page)[-2][1])
    assert number, bubbles(page)

    async def agent_replies() -> None:
        settings = load_settings(path=None, environ=live_server.environ)
        async with build_app(settings, classifier=web_classifier) as app:
            await app.desk.reply(number.group(0), "Hi, this is Sam from support. <script>alert(1)</script>")

    run_async(agent_replies)
    agent = page.locator(".row.agent .bubble")
    agent.wait_for()  # arrives with the next poll (every 3 s)
    assert agent.text_content() == "Hi, this is Sam from support. <script>alert(1)</script>"
    assert page.locator(".row.agent .author").text_content() == "Support agent"

    # Another visitor sees none of this.
    other = new_page(browser)
    other.goto(f"{live_server.url}/")
    other.wait_for_timeout(500)
    assert bubbles(other) == []
    assert page.errors == [] and other.errors == []  # type: ignore[attr-defined]
    page.context.close()
    other.context.close()
