"""Learning from what the bot missed, in a real browser (Debian Chromium via Playwright), end to end.

Over the real server (``live_server``): customers ask what the demo shop's data cannot answer;
the admin opens *Missed*, sees the questions grouped (customer HTML stays text), turns one into
a phrasing of the suggested FAQ entry with one click, and the same question asked again is
answered with that entry's answer — no restart. A screenshot goes to ``docs/screenshots/``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import httpx

from knowledge.shop import load_faq
from tests.web.conftest import REPO, LiveServer
from tests.web.e2e.test_workspace_browser import (
    SCREENSHOTS,
    UNLABELLED_CONTROLS,
    RestCustomer,
    admin,
    desk_page,
    dismiss_toasts,
    log_in,
    unexpected_problems,
    wait_live,
)
from tests.web.test_browser import browser, browser_available

if TYPE_CHECKING:
    from playwright.sync_api import Browser

__all__ = ["admin", "browser", "browser_available"]  # fixtures shared with the other browser tests

FAQ = load_faq(REPO / "examples" / "shop" / "faq.yml")
QUESTION = "Do you take bitcoin?"  # a payment question the demo FAQ does not answer (its answer names no crypto)
HOSTILE = "Who designs your clothes? <img src=x onerror=window.__pwned=1>"
CHINESE = "你们有会员卡吗"


def test_a_missed_question_becomes_a_phrasing_and_is_then_answered(
    browser_available: None, browser: Browser, live_server: LiveServer, admin: dict[str, str]
) -> None:
    payment = FAQ.get("payment_methods")
    assert payment is not None
    customer, other = RestCustomer(live_server.url), RestCustomer(live_server.url)
    page = desk_page(browser, width=1300)
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    try:
        # The bot cannot answer these.
        assert "don't have an answer" in " ".join(m.get("text") or "" for m in customer.say(QUESTION))
        other.say(QUESTION.lower())  # the same question, another customer
        other.say(HOSTILE)
        other.say(CHINESE)

        log_in(page, live_server.url, admin, screenshot=False)
        page.locator("nav.mainnav a", has_text="Missed").click()
        page.wait_for_url(re.compile(r"/desk/missed$"))
        wait_live(page)
        card = page.locator("article.missed-group", has=page.locator(".missed-text", has_text=QUESTION))
        card.wait_for()
        assert card.locator(".missed-count").text_content().startswith("2")  # type: ignore[union-attr]
        assert "2 customers" in (card.locator(".missed-meta").text_content() or "")
        assert "no FAQ answer" in (card.locator(".missed-meta").text_content() or "")
        hostile = page.locator(".missed-text", has_text="Who designs your clothes?")
        assert hostile.text_content() == HOSTILE  # shown as the characters it is
        assert page.locator("#missed-list img").count() == 0
        page.locator(".missed-text", has_text=CHINESE).wait_for()
        assert page.evaluate(UNLABELLED_CONTROLS) == []
        dismiss_toasts(page)
        page.screenshot(path=str(SCREENSHOTS / "missed.png"), animations="disabled", full_page=True)

        # One click: the suggested entry is preselected, the question prefilled.
        faq_form = card.locator("form.teach-faq")
        assert faq_form.locator("select.teach-target").input_value() == "payment_methods"
        assert faq_form.locator("input.teach-text").input_value().lower() == QUESTION.lower()
        faq_form.locator("button.add-phrasing").click()
        page.locator(".toast-success", has_text="payment_methods").wait_for()
        card.wait_for(state="detached")  # resolved: off the list
        page.locator("#additions-list li", has_text="phrasing of payment_methods").wait_for()

        # Asked again, by someone new: answered with the entry's answer, without a restart.
        newcomer = RestCustomer(live_server.url)
        try:
            answers = newcomer.say(QUESTION)
        finally:
            newcomer.close()
        assert [m.get("text") for m in answers] == [payment.answer_for("en")]
        assert page.evaluate("window.__pwned") is None
        assert failed == []
        assert unexpected_problems(page) == []
    finally:
        customer.close()
        other.close()
        page.context.close()


def test_the_missed_page_needs_a_login_and_has_a_strict_policy(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, trust_env=False, follow_redirects=False) as http:
        answer = http.get("/desk/missed")
        assert answer.status_code == 303 and answer.headers["location"] == "/desk/login?next=/desk/missed"
        assert http.get("/api/v1/missed").status_code == 401
