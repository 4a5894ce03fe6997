"""The agents' workspace in a real browser (Debian Chromium via Playwright), end to end.

One agent, one customer, one complaint, over the real server (``live_server``: ``serve()``
under uvicorn in a subprocess): the agent logs in; a customer complains through the REST
channel and the ticket appears in the open queue without a reload (Server-Sent Events), with
a handoff toast; the agent claims it, replies (the reply reaches the customer's REST poll),
adds an internal note the customer never receives, resolves; the customer rates with the
rating button's payload and comments; the rating appears on the open ticket page, live. The
analytics page renders its charts. Customer text with HTML in it stays text throughout.

Screenshots of the main pages go to ``docs/screenshots/`` for the README.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from bot.app import build_app
from bot.config import load_settings
from bot.web.auth import login_policy
from desk.accounts import Accounts
from intents.base import IntentClassifier
from tests.rest_client import SenderTokens
from tests.web.conftest import REPO, LiveServer
from tests.web.test_browser import browser, browser_available, new_page, run_async

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

__all__ = ["browser", "browser_available"]  # fixtures shared with the web chat's browser test

SCREENSHOTS = REPO / "docs" / "screenshots"
# Records what the page asks of the Notification API (headless Chromium shows nothing).
RECORD_NOTIFICATIONS = """
window.__notifications = [];
class RecordedNotification {
  constructor(title, options) { window.__notifications.push({ title, body: (options || {}).body }); }
  static requestPermission() { return Promise.resolve("granted"); }
}
RecordedNotification.permission = "granted";
Object.defineProperty(window, "Notification", { value: RecordedNotification, configurable: true, writable: true });
"""
PASSWORD = "a long and careful passphrase"
# Visible form controls and buttons with no accessible name (label, aria-label or text).
UNLABELLED_CONTROLS = """() => Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea, button'))
    .filter(el => el.offsetParent !== null)
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
    .map(el => el.outerHTML.slice(0, 80))"""
POLL_GUARD_SECONDS = 30  # how long the customer keeps polling before the test gives up


def add_agent(server: LiveServer, classifier: IntentClassifier, email: str, name: str, role: str) -> None:
    """An agent in a live server's database, made the way ``deskbot agents add`` does."""

    async def add() -> None:
        settings = load_settings(path=None, environ=server.environ)
        async with build_app(settings, classifier=classifier) as app:
            await Accounts(app.tickets, login_policy(settings)).add_agent(email, name, role, PASSWORD)

    run_async(add)


@pytest.fixture(scope="module")
def admin(live_server: LiveServer, web_classifier: IntentClassifier) -> Iterator[dict[str, str]]:
    """An admin agent in the live server's database (made the way ``deskbot agents add`` does)."""
    email = f"alex-{uuid.uuid4().hex[:6]}@shop.example"
    add_agent(live_server, web_classifier, email, "Alex Admin", "admin")
    yield {"email": email, "name": "Alex Admin"}


class RestCustomer:
    """A customer on the Rasa-compatible REST channel: sends, and polls for agent replies."""

    def __init__(self, base_url: str) -> None:
        self.sender = f"e2e-{uuid.uuid4().hex[:10]}"
        self.http = httpx.Client(base_url=base_url, trust_env=False, timeout=30)
        self.received: list[dict[str, Any]] = []
        self.proof = SenderTokens()  # the token its first answer carried, and its poll cursor

    def say(self, text: str) -> list[dict[str, Any]]:
        answer = self.http.post("/webhooks/rest/webhook", json={"sender": self.sender, "message": text},
                                headers=self.proof.headers(self.sender))
        self.proof.received(self.sender, answer)
        assert answer.status_code == 200, answer.text
        messages: list[dict[str, Any]] = answer.json()
        self.received += messages
        return messages

    def poll(self) -> list[dict[str, Any]]:
        answer = self.http.get("/webhooks/rest/messages", params=self.proof.poll_params(self.sender),
                               headers=self.proof.headers(self.sender))
        self.proof.received(self.sender, answer)
        assert answer.status_code == 200, answer.text
        messages: list[dict[str, Any]] = answer.json()
        self.received += messages
        return messages

    def poll_until(self, wanted: str) -> list[dict[str, Any]]:
        """Poll like a widget does until a message containing ``wanted`` arrives."""
        deadline = time.monotonic() + POLL_GUARD_SECONDS
        while time.monotonic() < deadline:
            messages = self.poll()
            if any(wanted in (m.get("text") or "") for m in messages):
                return messages
            time.sleep(0.3)
        raise AssertionError(f"{wanted!r} never reached the customer; they received {self.received}")

    def texts(self) -> str:
        return "\n".join(m.get("text") or "" for m in self.received)

    def close(self) -> None:
        self.http.close()


def log_in(page: Page, url: str, admin: dict[str, str], screenshot: bool = True) -> None:
    page.goto(f"{url}/desk")
    page.wait_for_url(re.compile(r"/desk/login"))
    page.locator("#email").fill(admin["email"])
    page.locator("#password").fill(PASSWORD)
    if screenshot:
        page.screenshot(path=str(SCREENSHOTS / "login.png"), animations="disabled")
    page.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/desk$"))


def desk_page(browser: Browser, width: int = 1400, height: int = 900) -> Page:
    """A browser tab that records script errors and failed loads, with their URLs."""
    page = new_page(browser, width=width, height=height)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))
    page.on(
        "console",
        lambda m: problems.append(f"{m.text} @ {m.location.get('url', '')}") if m.type == "error" else None,
    )
    page.problems = problems  # type: ignore[attr-defined]
    return page


def unexpected_problems(page: Page, *expected: str) -> list[str]:
    """The tab's problems, but for the browser's own favicon probe and the ``expected`` URLs
    (an answer the test provoked on purpose, such as a 409 for a second claim)."""
    allowed = ("/favicon.ico", *expected)
    problems: list[str] = page.problems  # type: ignore[attr-defined]
    return [p for p in problems if not any(p.endswith(url) for url in allowed)]


def dismiss_toasts(page: Page) -> None:
    """Close the notifications (keyboard-reachable buttons) so screenshots show the page."""
    while page.locator(".toast-close").count():
        page.locator(".toast-close").first.click()


def wait_live(page: Page) -> None:
    page.locator('#live-status[data-state="live"]').wait_for()


def test_an_agent_handles_a_complaint_end_to_end(
    browser_available: None, browser: Browser, live_server: LiveServer, admin: dict[str, str]
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = desk_page(browser)
    page.add_init_script(RECORD_NOTIFICATIONS)  # as if the agent had allowed notifications
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    log_in(page, live_server.url, admin)
    assert page.locator(".whoami").text_content().startswith("Alex Admin")  # type: ignore[union-attr]
    wait_live(page)
    page.locator("#queue-table[aria-busy=false]").wait_for()

    # Someone else is already waiting for a human; then a customer complains through the REST
    # channel while the agent looks at the queue.
    other = RestCustomer(live_server.url)
    customer = RestCustomer(live_server.url)
    try:
        waiting = re.search(r"T-\d+", " ".join(m.get("text") or "" for m in other.say("I want to talk to a human")))
        assert waiting, other.received
        page.locator(f'tr[data-number="{waiting.group(0)}"]').wait_for()
        complaint = "I want to make a complaint: the hoodie arrived torn <img src=x onerror=window.__pwned=1>"
        answers = customer.say(complaint)
        found = re.search(r"T-\d+", " ".join(m.get("text") or "" for m in answers))
        assert found, answers
        number = found.group(0)

        row = page.locator(f'tr[data-number="{number}"]')
        row.wait_for()  # arrived live: nobody reloaded the page
        assert "Complaint" in row.text_content()  # type: ignore[operator]
        handoff = page.locator(".toast-handoff", has_text=number)
        handoff.wait_for()
        notified = page.evaluate("() => window.__notifications.map(n => n.title)")
        assert f"{number} needs an agent" in notified
        assert row.locator(".sla").text_content()  # an SLA due time is shown
        dismiss_toasts(page)
        page.screenshot(path=str(SCREENSHOTS / "queue.png"), animations="disabled")

        # Open it with the keyboard path (the link), claim it.
        row.locator("a.ticket-link").click()
        page.wait_for_url(re.compile(rf"/desk/tickets/{number}$"))
        page.locator("#ticket-layout[aria-busy=false]").wait_for()
        wait_live(page)
        first = page.locator(".msg-customer .msg-text").first
        assert first.text_content() == complaint  # the HTML stayed text
        assert page.locator("#timeline img").count() == 0
        page.locator('[data-action="claim"]').click()
        page.locator("#t-props", has_text="Alex Admin").wait_for()
        assert page.locator('[data-action="claim"]').is_hidden()
        assert page.evaluate(UNLABELLED_CONTROLS) == []

        # Reply; the customer's REST poll receives it.
        reply = "Sorry about that! A replacement is on its way. <b>No HTML here</b>"
        page.locator("#composer-text").fill(reply)
        page.locator("#composer-send").click()
        page.locator(".msg-agent .msg-text", has_text="A replacement is on its way").wait_for()
        assert page.locator(".msg-agent .msg-text").last.text_content() == reply
        customer.poll_until("A replacement is on its way")

        # An internal note: shown to agents, distinct, never sent.
        note = "Internal: second torn hoodie this month, check the supplier batch."
        page.locator("label.tab-note").click()
        assert page.locator("#composer-send").text_content() == "Add note"
        page.locator("#composer-text").fill(note)
        page.keyboard.press("Control+Enter")
        page.locator(".msg-note .msg-text", has_text="check the supplier batch").wait_for()
        assert page.locator(".msg-note .note-flag").first.text_content() == "Internal note"

        # Resolve; the customer is asked for a rating and presses a button (its payload).
        page.locator("label.tab:not(.tab-note)").click()
        page.locator('[data-action="resolve"]').click()
        page.locator("#t-badges .badge-status-resolved").wait_for()
        asked = customer.poll_until(number)
        buttons = [b for m in asked for b in m.get("buttons", [])]
        assert len(buttons) == 5, asked
        four = next(b for b in buttons if json.loads(b["payload"].removeprefix("/rate"))["score"] == 4)
        customer.say(four["payload"])
        comment = "Quick and kind <script>window.__pwned=2</script>"
        customer.say(comment)

        # The rating and the comment appear on the open page by themselves.
        page.locator("#rating-panel .rating-score", has_text="4/5").wait_for()
        page.locator(".rating-comment", has_text="Quick and kind").wait_for()
        assert page.locator(".rating-comment").text_content() == comment
        assert note not in customer.texts()  # the note never reached the customer
        assert page.evaluate("window.__pwned") is None
        page.locator("#t-audit", has_text="Resolved").wait_for()
        dismiss_toasts(page)
        page.screenshot(path=str(SCREENSHOTS / "ticket.png"), animations="disabled", full_page=True)

        # The queue shows the ticket resolved now (the default lists open tickets first).
        page.locator("nav.mainnav a", has_text="Queue").click()
        page.locator(f'tr[data-number="{number}"] .badge-status-resolved').wait_for()

        # Analytics (server-rendered SVG charts).
        page.locator("nav.mainnav a", has_text="Analytics").click()
        page.wait_for_url(re.compile(r"/desk/analytics"))
        page.locator("main svg").first.wait_for()
        assert page.locator("main svg").count() >= 3
        page.screenshot(path=str(SCREENSHOTS / "analytics.png"), animations="disabled", full_page=True)
        assert failed == []
        assert unexpected_problems(page) == []
    finally:
        other.close()
        customer.close()
        page.context.close()


@pytest.fixture(scope="module")
def colleague(live_server: LiveServer, web_classifier: IntentClassifier) -> dict[str, str]:
    email = f"kim-{uuid.uuid4().hex[:6]}@shop.example"
    add_agent(live_server, web_classifier, email, "Kim Agent", "agent")
    return {"email": email, "name": "Kim Agent"}


def fail_delivery(live_server: LiveServer, web_classifier: IntentClassifier, sender: str, text: str) -> None:
    """What a channel adapter does when a send fails: the reply is marked failed, with the reason."""

    async def mark() -> None:
        settings = load_settings(path=None, environ=live_server.environ)
        async with build_app(settings, classifier=web_classifier) as app:
            async with app.tickets.session() as tx:
                customer = await tx.find_customer("rest", sender)
                assert customer is not None
                message = next(m for m in await tx.conversation(customer.id) if m.text == text)
            await app.pipeline.delivery_failed(message.id, "the customer's app is unreachable")

    run_async(mark)


def test_colleagues_work_one_ticket_live(
    browser_available: None,
    browser: Browser,
    live_server: LiveServer,
    web_classifier: IntentClassifier,
    admin: dict[str, str],
    colleague: dict[str, str],
) -> None:
    """Two agents on one ticket: claims conflict, actions and customer replies show up live on
    both screens, a failed delivery is retried, a canned response fills its placeholders."""
    alex = desk_page(browser, width=1300)
    kim = desk_page(browser, width=1300)
    customer = RestCustomer(live_server.url)
    try:
        for page, who in ((alex, admin), (kim, colleague)):
            page.goto(f"{live_server.url}/desk/login")
            page.locator("#email").fill(who["email"])
            page.locator("#password").fill(PASSWORD)
            page.locator("#password").press("Enter")  # keyboard only
            page.wait_for_url(re.compile(r"/desk$"))
        assert kim.locator('nav a[href="/desk/agents"]').count() == 0  # not an admin

        # The admin adds a canned response on the agents page.
        alex.locator("nav.mainnav a", has_text="Agents").click()
        alex.locator("#c-title").fill("Apology")
        alex.locator("#c-text").fill("Hello {customer_name}, {agent_name} here about {ticket_number}.")
        alex.locator("#canned-form button[type=submit]").click()
        alex.locator("#canned-list", has_text="Apology").wait_for()
        alex.locator("#agents-rows", has_text="Kim Agent").wait_for()
        newcomer = f"lee-{uuid.uuid4().hex[:6]}@shop.example"
        alex.locator("#a-name").fill("Lee <New>")
        alex.locator("#a-email").fill(newcomer)
        alex.locator("#a-password").fill(PASSWORD)
        alex.locator("#agent-form button[type=submit]").click()
        alex.locator("#agents-rows tr", has_text=newcomer).locator("td", has_text="Lee <New>").wait_for()
        dismiss_toasts(alex)
        alex.screenshot(path=str(SCREENSHOTS / "agents.png"), animations="disabled")
        lee = alex.locator("#agents-rows tr", has_text=newcomer)
        lee.locator("button", has_text="Set password").click()
        lee.get_by_label("New password for Lee <New>").fill("another careful passphrase")
        lee.get_by_label("New password for Lee <New>").press("Enter")
        alex.locator(".toast-success", has_text="Password changed").wait_for()

        answers = customer.say("I want to talk to a human")
        number = re.search(r"T-\d+", " ".join(m.get("text") or "" for m in answers))
        assert number, answers
        ticket_url = f"{live_server.url}/desk/tickets/{number.group(0)}"
        for page in (alex, kim):
            page.goto(ticket_url)
            page.locator("#ticket-layout[aria-busy=false]").wait_for()
            wait_live(page)

        # Kim claims first; Alex's screen follows, and Alex cannot claim it as well.
        kim.locator('[data-action="claim"]').click()
        alex.locator("#t-props", has_text="Kim Agent").wait_for()
        alex.locator('[data-action="claim"]').click()
        alex.locator(".toast-error").wait_for()
        assert "Kim Agent" in (alex.locator("#t-props").text_content() or "")

        # The customer writes again: both screens show it without a reload.
        customer.say("Hello? <i>anyone</i> there?")
        for page in (alex, kim):
            page.locator(".msg-customer .msg-text", has_text="anyone").wait_for()
        assert alex.locator("#timeline i").count() == 0

        # Kim uses the canned response; its placeholders are filled for this ticket.
        kim.locator("#canned").select_option(label="Apology")
        kim.wait_for_function("() => document.getElementById('composer-text').value.includes('Kim Agent here')")
        filled = kim.locator("#composer-text").input_value()
        assert number.group(0) in filled and "{" not in filled
        kim.locator("#composer-send").click()
        alex.locator(".msg-agent .msg-text", has_text="Kim Agent here").wait_for()  # live on Alex's screen

        # The channel could not deliver it: the reply shows the failure and a Retry button.
        fail_delivery(live_server, web_classifier, customer.sender, filled)
        kim.reload()
        failed = kim.locator(".delivery-failed")
        failed.wait_for()
        assert "unreachable" in (failed.text_content() or "")
        failed.locator("button", has_text="Retry").click()
        kim.locator(".msg-agent .delivery-queued").wait_for()
        customer.poll_until("Kim Agent here")

        # A colleague's internal note and priority change reach Alex live, too.
        kim.locator("label.tab-note").click()
        kim.locator("#composer-text").fill("VIP customer — be generous")
        kim.locator("#composer-send").click()
        alex.locator(".msg-note .msg-text", has_text="VIP customer").wait_for()
        kim.locator("#t-priority").select_option("urgent")
        alex.locator("#t-badges .badge-priority-urgent").wait_for()
        assert "VIP customer" not in customer.texts()

        # Handing back to the bot: no rating is asked; the ticket is no longer Kim's to answer.
        kim.locator('[data-action="hand-back"]').click()
        alex.locator("#t-audit", has_text="agent → bot").wait_for()
        assert "rate" not in customer.texts().lower()

        # The admin assigns the ticket to the newcomer; Kim's screen follows.
        alex.locator("#t-assign").select_option(label="Lee <New>")
        alex.locator("#assign-form button[type=submit]").click()
        kim.locator("#t-props", has_text="Lee <New>").wait_for()
        kim.locator("#t-audit", has_text=f"Assigned to {newcomer}").wait_for()
        assert unexpected_problems(alex, f"/api/v1/tickets/{number.group(0)}/claim") == []
        assert unexpected_problems(kim) == []
    finally:
        customer.close()
        alex.context.close()
        kim.context.close()


def test_a_breached_ticket_is_flagged_and_its_customer_exported_and_erased(
    browser_available: None,
    browser: Browser,
    live_server: LiveServer,
    web_classifier: IntentClassifier,
    admin: dict[str, str],
) -> None:
    customer = RestCustomer(live_server.url)
    page = desk_page(browser)
    try:
        answers = customer.say("I want to talk to a human")
        found = re.search(r"T-\d+", " ".join(m.get("text") or "" for m in answers))
        assert found, answers
        number = found.group(0)

        async def overdue() -> None:  # as if nobody had answered for hours
            settings = load_settings(path=None, environ=live_server.environ)
            async with build_app(settings, classifier=web_classifier) as app:
                async with app.tickets.session() as tx:
                    ticket = await tx.ticket_by_number(number)
                    ticket.first_response_due = datetime.now(UTC) - timedelta(hours=2)

        run_async(overdue)
        log_in(page, live_server.url, admin, screenshot=False)
        page.goto(f"{live_server.url}/desk?q={number}")
        row = page.locator(f'tr[data-number="{number}"]')
        row.wait_for()
        assert "sla-row-breached" in (row.get_attribute("class") or "")
        sla = row.locator(".sla-breached")
        assert (sla.text_content() or "").startswith("First response overdue")
        assert page.locator("#f-q").input_value() == number  # the filter is in the URL and the form
        assert "past SLA" in (page.locator("#queue-summary").text_content() or "")

        # The customer asks for their data, then to be forgotten (admin tools on the ticket).
        row.locator("a.ticket-link").click()
        page.locator("#ticket-layout[aria-busy=false]").wait_for()
        with page.expect_download() as download:
            page.locator("button", has_text="Export data (JSON)").click()
        exported = json.loads(Path(download.value.path()).read_text())
        assert customer.sender in json.dumps(exported)
        assert "I want to talk to a human" in json.dumps(exported)
        page.once("dialog", lambda dialog: dialog.accept("ERASE"))
        page.locator("button", has_text="Erase customer").click()
        page.locator(".toast-success", has_text="Customer erased").wait_for()
        page.locator(".msg-customer .msg-text", has_text="[erased]").first.wait_for()
        assert "I want to talk to a human" not in (page.locator("#timeline").text_content() or "")
        assert customer.sender not in (page.locator("#t-customer").text_content() or "")
        assert unexpected_problems(page) == []
    finally:
        customer.close()
        page.context.close()


def test_empty_missing_and_unlabelled_states(
    browser_available: None, browser: Browser, live_server: LiveServer, admin: dict[str, str]
) -> None:
    """What an agent sees when nothing matches or a ticket does not exist; and every visible
    control on the main pages has a name a screen reader can announce."""
    page = desk_page(browser)
    try:
        log_in(page, live_server.url, admin, screenshot=False)
        assert page.evaluate(UNLABELLED_CONTROLS) == []
        page.goto(f"{live_server.url}/desk?q=no-such-thing-at-all")
        page.locator("#queue-empty").wait_for()
        assert page.locator("#queue-rows tr").count() == 0
        assert (page.locator("#queue-summary").text_content() or "").startswith("0 tickets")

        page.goto(f"{live_server.url}/desk/tickets/T-987654")
        error = page.locator("#ticket-error")
        error.wait_for()
        assert error.text_content() == "Ticket T-987654 does not exist."
        assert page.locator("#ticket-layout").is_hidden()

        page.goto(f"{live_server.url}/desk/agents")
        page.locator("#agents-table[aria-busy=false]").wait_for()
        assert page.evaluate(UNLABELLED_CONTROLS) == []
        assert unexpected_problems(page, "/api/v1/tickets/T-987654") == []
    finally:
        page.context.close()
