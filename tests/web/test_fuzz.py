"""Bad input never gives a 5xx: thousands of hostile requests against every public surface.

The real app (``bot.web.app.create_web_app`` over ``build_app``) in-process through
``httpx.ASGITransport``, with the Telegram channel in webhook mode against the fake Bot API,
on SQLite + memory and on PostgreSQL + Redis. The seeded generator of ``fuzz_inputs.py``
sends to the REST channel (webhook and poll), the web chat API, the agents' API query
parameters (with a valid agent token) and the Telegram webhook (with the right secret).

Afterwards: no 5xx, no ERROR record or traceback in the log, the app still answers, and the
database is consistent (no delivery key stored twice, every accepted REST message id stored
once, no row pointing at a missing row, a customer's earlier messages untouched).

``DESKBOT_FUZZ_SEED`` replays another seed; ``DESKBOT_FUZZ_REQUESTS`` changes the count. The
quick run (600 per backend) is part of ``make test``; the full one (10,000 per backend) is
marked ``fuzz`` and run by ``make fuzz`` (and by CI).
"""

from __future__ import annotations

import logging
import os
import traceback
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from bot.app import App, build_app
from bot.config import load_settings
from bot.web.app import create_web_app
from bot.web.rest_channel import scoped_delivery_key
from intents.base import IntentClassifier
from storage.models import Base, Direction
from tests.conftest import _delete_keys, empty_tables, storage_environ
from tests.fakes.telegram_server import TOKEN, FakeTelegram
from tests.web.conftest import deskbot_environ, messages_of
from tests.web.fuzz_inputs import REST_WEBHOOK, Fuzzer, FuzzRequest, cursor_of

SEED = int(os.environ.get("DESKBOT_FUZZ_SEED", "20261202"))
# `make test` sends QUICK per backend; the full run (`make fuzz`, CI) sends FULL per backend.
QUICK, FULL = 600, 10_000
COUNT = os.environ.get("DESKBOT_FUZZ_REQUESTS")
ASKED = "'fuzz' in (config.option.markexpr or '')"  # skipped before any set-up unless asked for
SIZES = [
    pytest.param(QUICK, id="quick"),
    pytest.param(FULL, id="full", marks=[
        pytest.mark.fuzz, pytest.mark.skipif(f"not {ASKED}", reason="the full fuzz run: `make fuzz`")
    ]),
]
WEBHOOK_SECRET = "fuzz-webhook-secret_1"
KNOWN = "known-customer"
SENDER_TOKEN = "X-Deskbot-Sender-Token"  # a REST sender's proof, issued on its first message


@dataclass
class Outcome:
    statuses: Counter[int] = field(default_factory=Counter)
    by_kind: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    causes: Counter[str] = field(default_factory=Counter)
    accepted: set[tuple[str, str]] = field(default_factory=set)  # REST (sender, message id) answered 200


@pytest.fixture(params=["sqlite", "postgres"])
async def fuzz_app(
    request: pytest.FixtureRequest, tmp_path: Path, web_model_path: Path, web_classifier: IntentClassifier,
    redis_prefix: str,
) -> AsyncIterator[tuple[App, FakeTelegram]]:
    sqlite = request.param == "sqlite"
    async with FakeTelegram() as fake:
        env = deskbot_environ(tmp_path / "deskbot.db", web_model_path) | {
            "DESKBOT_CHANNELS__TELEGRAM__ENABLED": "true",
            "DESKBOT_CHANNELS__TELEGRAM__MODE": "webhook",
            "DESKBOT_CHANNELS__TELEGRAM__API_BASE": fake.base,
            "DESKBOT_CHANNELS__TELEGRAM__REQUEST_TIMEOUT_SECONDS": "5",
            "DESKBOT_SECRETS__TELEGRAM_TOKEN": TOKEN,
            "DESKBOT_SECRETS__TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        }
        env |= storage_environ(request, tmp_path, redis_prefix, server=not sqlite)
        settings = load_settings(path=None, environ=env)
        async with build_app(settings, classifier=web_classifier, create_schema=sqlite) as app:
            if not sqlite:
                await empty_tables(app.tickets.engine)  # type: ignore[attr-defined]
            assert app.telegram is not None
            await app.telegram.start(polling=False)
            try:
                yield app, fake
            finally:
                await app.telegram.stop()
        if not sqlite:
            await _delete_keys(settings.state.redis_url, redis_prefix)


class Recorder:
    """The ASGI app with its unhandled exceptions noted (type, message, innermost frame)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last: str | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.last = None
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            self.last = f"{type(exc).__name__}: {str(exc)[:120]} at {Path(frame.filename).name}:{frame.lineno}"
            raise


class Runner:
    """Sends the fuzzer's requests and learns from the answers (cookies, buttons, cursors)."""

    def __init__(
        self, web: httpx.AsyncClient, recorder: Recorder, fuzzer: Fuzzer, fake: FakeTelegram, agent: dict[str, str]
    ) -> None:
        self.web, self.recorder, self.fuzzer, self.fake, self.agent = web, recorder, fuzzer, fake, agent
        self.cookies: dict[int, str] = {fuzzer.visitor_slots + 1: "forged.c2lnbmF0dXJl"}
        self.outcome = Outcome()
        self.tokens: dict[str, str] = {}  # REST sender → the sender token deskbot issued it

    def headers(self, req: FuzzRequest) -> dict[str, str]:
        headers = dict(req.headers)
        if req.kind.startswith("api"):
            headers |= self.agent
        if req.kind == "telegram":
            headers["x-telegram-bot-api-secret-token"] = WEBHOOK_SECRET
        token = self.tokens.get(req.sender or "")
        if req.kind.startswith("rest") and token is not None and not self.fuzzer.chance(0.03):
            headers[SENDER_TOKEN] = token
        if req.visitor is not None and req.visitor in self.cookies:
            headers["cookie"] = f"deskbot_visitor={self.cookies[req.visitor]}"
        return headers

    async def send(self, index: int, req: FuzzRequest) -> None:
        self.web.cookies.clear()  # each request carries exactly the cookie its visitor has
        answer = await self.web.request(req.method, req.url, headers=self.headers(req), content=req.content)
        out = self.outcome
        out.statuses[answer.status_code] += 1
        out.by_kind[req.kind] += 1
        if answer.status_code >= 500:
            cause = self.recorder.last or answer.text[:200]
            out.causes[f"{answer.status_code} {req.kind}: {cause}"] += 1
            out.failures.append(f"#{index} {answer.status_code} {req.kind}: {req.describe(160)} -> {cause}")
            return
        issued = answer.headers.get(SENDER_TOKEN)
        if issued and req.sender is not None:
            self.tokens.setdefault(req.sender, issued)
        if answer.status_code != 200:
            return
        self.learn(req, answer)

    def learn(self, req: FuzzRequest, answer: httpx.Response) -> None:
        fuzzer = self.fuzzer
        if req.kind == "rest" and req.sender is not None and req.message_id is not None:
            self.outcome.accepted.add((req.sender, req.message_id))
            fuzzer.sent_ids.append((req.sender, req.message_id))
        if req.kind in ("rest", "web"):
            body = answer.json()
            replies = body if isinstance(body, list) else body.get("messages", [])
            for reply in replies:
                for button in reply.get("buttons") or []:
                    if button["payload"] not in fuzzer.harvested:
                        fuzzer.harvested.append(button["payload"])
        if req.kind == "web" and req.visitor is not None and req.visitor < fuzzer.visitor_slots:
            cookie = answer.cookies.get("deskbot_visitor")
            if cookie:
                self.cookies.setdefault(req.visitor, cookie)
        if req.kind == "api-tickets":
            page = answer.json()
            if page.get("next_cursor"):
                fuzzer.cursors.append(page["next_cursor"])
            for item in page.get("items", []):
                if item["number"] not in fuzzer.tickets:
                    fuzzer.tickets.append(item["number"])
        if req.kind == "telegram" and not fuzzer.callback_data:
            self.harvest_callbacks()

    def harvest_callbacks(self) -> None:
        for user in self.fuzzer.telegram_users:
            for message in self.fake.sent(user):
                for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                    for button in row:
                        data = button.get("callback_data")
                        if data and data not in self.fuzzer.callback_data:
                            self.fuzzer.callback_data.append(data)


async def orphans(app: App) -> list[str]:
    """Rows whose foreign key names a row that does not exist (SQLite does not enforce them)."""
    found = []
    async with app.tickets.session() as tx:
        for table in Base.metadata.sorted_tables:
            for fk in table.foreign_keys:
                child, parent = fk.parent, fk.column
                count = (await tx.db.execute(text(
                    f'SELECT count(*) FROM "{table.name}" c WHERE c."{child.name}" IS NOT NULL AND NOT EXISTS '
                    f'(SELECT 1 FROM "{parent.table.name}" p WHERE p."{parent.name}" = c."{child.name}")'
                ))).scalar_one()
                if count:
                    found.append(f"{table.name}.{child.name} → {parent.table.name}: {count}")
    return found


async def duplicate_deliveries(app: App) -> list[Any]:
    async with app.tickets.session() as tx:
        rows = await tx.db.execute(text(
            "SELECT channel, delivery_key, count(*) FROM messages WHERE delivery_key IS NOT NULL "
            "GROUP BY channel, delivery_key HAVING count(*) > 1"
        ))
        return list(rows.all())


async def stored_keys(app: App, channel: str) -> Counter[str]:
    async with app.tickets.session() as tx:
        rows = await tx.db.execute(text(
            "SELECT delivery_key FROM messages WHERE channel = :c AND delivery_key IS NOT NULL"
        ), {"c": channel})
        return Counter(str(r[0]) for r in rows.all())


@pytest.mark.parametrize("requests", SIZES)
async def test_hostile_requests_never_get_a_5xx(
    fuzz_app: tuple[App, FakeTelegram], caplog: pytest.LogCaptureFixture, requests: int
) -> None:
    app, fake = fuzz_app
    requests = int(COUNT or requests)
    caplog.set_level(logging.WARNING)
    web_app = create_web_app(app)
    accounts = web_app.state.accounts
    await accounts.add_agent("fuzz-admin@example.com", "Fuzz", "admin", "correct horse battery")
    agent = {"Authorization": f"Bearer {await accounts.issue_token('fuzz-admin@example.com')}"}
    recorder = Recorder(web_app)
    transport = httpx.ASGITransport(app=recorder, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as web:
        # A customer with a history before the storm: it must come through untouched.
        known: dict[str, str] = {}
        for i, words in enumerate(["hi", "where is my order A10231", "I want to talk to a human"]):
            answer = await web.post(REST_WEBHOOK, json={"sender": KNOWN, "message": words, "message_id": f"k{i}"},
                                    headers=known)
            assert answer.status_code == 200, answer.text
            if SENDER_TOKEN in answer.headers:
                known = {SENDER_TOKEN: answer.headers[SENDER_TOKEN]}
        before = [(m.id, m.text, m.direction) for m in await messages_of(app, "rest", KNOWN)]
        assert len(before) >= 6

        fuzzer = Fuzzer(SEED)
        runner = Runner(web, recorder, fuzzer, fake, agent)
        for index in range(requests):
            await runner.send(index, fuzzer.next())
        out = runner.outcome

        # Still alive and still answering properly.
        assert (await web.get("/healthz")).status_code == 200
        answer = await web.post(REST_WEBHOOK, json={"sender": KNOWN, "message": "thanks", "message_id": "k-last"},
                                headers=known)
        assert answer.status_code == 200 and answer.json(), answer.text

    summary = f"{sum(out.statuses.values())} requests, statuses {dict(sorted(out.statuses.items()))}, " \
              f"kinds {dict(out.by_kind)}"
    print(summary)  # noqa: T201 - the counts, with -s
    causes = "\n".join(f"{n:5} × {cause}" for cause, n in out.causes.most_common())
    assert not out.failures, (
        f"{len(out.failures)} answers were 5xx ({summary}):\n{causes}\nfirst ones:\n" + "\n".join(out.failures[:15])
    )
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, "\n".join(f"{r.name}: {r.getMessage()} {r.exc_info and r.exc_info[0]}" for r in errors[:20])
    # Enough of the storm was well-formed to reach the pipeline, the API and the desk.
    assert out.statuses[200] > requests // 3

    assert await duplicate_deliveries(app) == []
    keys = await stored_keys(app, "rest")
    missing = [pair for pair in out.accepted if keys[scoped_delivery_key(*pair) or ""] != 1]
    assert not missing, f"{len(missing)} accepted REST messages not stored once: {missing[:5]}"
    assert await orphans(app) == []
    after = {m.id: (m.id, m.text, m.direction) for m in await messages_of(app, "rest", KNOWN)}
    assert all(after.get(row[0]) == row for row in before)
    assert [m for m in after.values() if m[2] == Direction.INBOUND][-1][1] == "thanks"


@pytest.mark.parametrize("fuzz_app", ["sqlite"], indirect=True)
@pytest.mark.parametrize("path", ["../../etc/passwd", "photos/../../bot123/getMe", "/etc/passwd", "photos/a\x00.jpg"])
async def test_a_file_path_out_of_the_bots_storage_is_not_fetched(
    fuzz_app: tuple[App, FakeTelegram], caplog: pytest.LogCaptureFixture, path: str
) -> None:
    """The Bot API's ``file_path`` is joined to the download URL: ``../`` must not leave it."""
    app, fake = fuzz_app
    web_app = create_web_app(app)
    await web_app.state.accounts.add_agent("files@example.com", "Files", "agent", "correct horse battery")
    agent = {"Authorization": f"Bearer {await web_app.state.accounts.issue_token('files@example.com')}"}
    fine = fake.add_file(b"a photo", file_path="photos/file_1.jpg")
    odd = fake.add_file(b"not for agents", file_path=path)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=web_app), base_url="http://testserver") as web:
        assert (await web.get(f"/telegram/files/{fine.file_id}", headers=agent)).content == b"a photo"
        answer = await web.get(f"/telegram/files/{odd.file_id}", headers=agent)
    assert answer.status_code == 502 and "unusable path" in answer.json()["error"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


BIG = "9" * 4301  # past Python's int-string conversion limit: json.loads raised ValueError (a 500)
KNOWN_BAD = [
    # (method, url, body, expected status, what the error says)
    ("POST", REST_WEBHOOK, f'{{"sender": "kb", "message": "hi", "message_id": {BIG}}}', 400, "4300 digits"),
    ("POST", "/telegram/webhook", f'{{"update_id": {BIG}, "message": {{}}}}', 400, "4300 digits"),
    ("POST", "/telegram/webhook", '{"update_id": 77, "message": {"message_id": 1, "date": 0, "text": "\\ud800", '
     '"chat": {"id": 5, "type": "private"}, "from": {"id": 5, "is_bot": false, "first_name": "F"}}}', 400,
     "lone surrogate"),
    # A forged sender id with a NUL (503 on PostgreSQL), a contact's phone too long for its column:
    # ignored or cut, answered 200 so Telegram does not send them again.
    ("POST", "/telegram/webhook", '{"update_id": 78, "message": {"message_id": 1, "date": 0, "text": "hi", '
     '"chat": {"id": 5, "type": "private"}, "from": {"id": "x\\u0000y", "is_bot": false, "first_name": "F"}}}',
     200, "ok"),
    ("POST", "/telegram/webhook", '{"update_id": 79, "message": {"message_id": 2, "date": 0, "chat": {"id": 6, '
     '"type": "private"}, "from": {"id": 6, "is_bot": false, "first_name": "F\\u0000"}, "contact": '
     '{"phone_number": "+\\u0000' + "1" * 60 + '", "first_name": "F", "user_id": 6}}}', 200, "ok"),
    ("GET", "/api/v1/customers/99999999999999999999", None, 422, "less than or equal"),
    ("GET", "/api/v1/customers/2147483648/export", None, 422, "less than or equal"),
    ("GET", "/api/v1/tickets?assignee=99999999999999999999", None, 400, "assignee"),
    ("GET", "/api/v1/tickets?assignee=%C2%B2", None, 400, "assignee"),
    ("GET", "/api/v1/tickets?q=%00", None, 422, "control characters"),
    ("GET", "/api/v1/tickets?q=a%00b", None, 422, "control characters"),
    ("GET", "/api/v1/tickets?channel=rest%00", None, 422, "control characters"),
    ("GET", "/api/v1/tickets?sort=newest&cursor=" + cursor_of({"s": "newest", "p": 0, "k": [-(2**63)]}), None, 400,
     "invalid cursor"),
    ("GET", "/api/v1/tickets?cursor=" + cursor_of({"s": "sla", "p": 0, "k": ["2026-11-01T00:00:00+00:00", 2**40]}),
     None, 400, "invalid cursor"),
    ("GET", "/api/v1/analytics?until=9999-12-31", None, 400, "between 0001-01-01 and 9999-12-30"),
    ("GET", "/api/v1/analytics?until=0001-01-01", None, 400, "between"),
    ("GET", "/api/v1/tickets/T-%C2%B2", None, 404, "not found"),
]


@pytest.mark.parametrize("fuzz_app", ["sqlite", "postgres"], indirect=True)
async def test_known_bad_inputs_get_a_clear_4xx(
    fuzz_app: tuple[App, FakeTelegram], caplog: pytest.LogCaptureFixture
) -> None:
    """Each of these was a 500 (or a 503 on PostgreSQL) before; the fuzz test found them."""
    app, _fake = fuzz_app
    web_app = create_web_app(app)
    await web_app.state.accounts.add_agent("kb@example.com", "Kb", "admin", "correct horse battery")
    agent = {"Authorization": f"Bearer {await web_app.state.accounts.issue_token('kb@example.com')}"}
    transport = httpx.ASGITransport(app=web_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as web:
        wrong = []
        for method, url, body, status, says in KNOWN_BAD:
            headers = {"content-type": "application/json", "x-telegram-bot-api-secret-token": WEBHOOK_SECRET}
            answer = await web.request(method, url, content=body, headers=headers | agent)
            if answer.status_code != status or says not in answer.text:
                wrong.append(f"{method} {url[:80]}: {answer.status_code} {answer.text[:200]}")
        # A Content-Length of a digit int() refuses ("²"): uvicorn's parser stops it, the app must too.
        odd = await web.post("/chat/api/messages", content=b'{"text": "hi"}', headers={
            b"content-type": b"application/json", b"x-requested-with": b"deskbot", b"content-length": "²".encode("latin-1")
        })
        if odd.status_code != 400:
            wrong.append(f"Content-Length ²: {odd.status_code} {odd.text[:200]}")
    assert wrong == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
