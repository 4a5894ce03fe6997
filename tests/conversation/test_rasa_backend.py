"""The whole pipeline with ``classifier.backend: rasa`` against a fake Rasa 3.6 server.

The app is built from settings exactly as ``deskbot serve`` builds it (``build_classifier``
picks :class:`RasaHttpClassifier`), on SQLite + memory and PostgreSQL + Redis.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.config import load_settings
from intents.rasa_http import RasaHttpClassifier
from storage.models import Owner, TicketKind
from tests.conftest import _delete_keys, empty_tables, storage_environ
from tests.factories import Chat, add_orders, order
from tests.fakes.rasa_nlu import FakeEntity, FakeRasa, RunningServer, create_fake_rasa_app

ROOT = Path(__file__).resolve().parents[2]
# The shop's Rasa assistant has its own name for returns; deskbot's config maps it.
RASA_INTENTS = ["greet", "return_item", "inform", "affirm", "deny", "complaint", "ticket_status"]


@pytest.fixture
async def fake_rasa() -> AsyncIterator[tuple[FakeRasa, RunningServer]]:
    fake = FakeRasa(intents=list(RASA_INTENTS), token="rasa-token")
    server = RunningServer(create_fake_rasa_app(fake))
    await server.start()
    yield fake, server
    fake.release.set()
    await server.stop()


@pytest.fixture(params=["sqlite+memory", "postgres+redis"])
async def rasa_app(
    request: pytest.FixtureRequest, tmp_path: Path, fake_rasa: tuple[FakeRasa, RunningServer], redis_prefix: str
) -> AsyncIterator[App]:
    _, server = fake_rasa
    env = {
        "DESKBOT_CLASSIFIER__BACKEND": "rasa",
        "DESKBOT_CLASSIFIER__RASA__URL": server.url,
        "DESKBOT_CLASSIFIER__RASA__INTENT_MAP": "{return_item: request_return, nlu_fallback: out_of_scope}",
        "DESKBOT_CLASSIFIER__RASA__RETRIES": "0",
        "DESKBOT_SECRETS__RASA_TOKEN": "rasa-token",
        "DESKBOT_CLASSIFIER__MODEL_PATH": str(tmp_path / "never-trained.npz"),
    }
    sqlite = request.param == "sqlite+memory"
    env |= storage_environ(request, tmp_path, redis_prefix, server=not sqlite)
    settings = load_settings(ROOT / "config.yaml", environ=env)
    async with build_app(settings, create_schema=sqlite) as deskbot:
        if not sqlite:
            await empty_tables(deskbot.tickets.engine)  # type: ignore[attr-defined]
        yield deskbot
    if not sqlite:
        await _delete_keys(settings.state.redis_url, redis_prefix)
    assert not (tmp_path / "never-trained.npz").exists()  # the built-in model was never trained


async def test_return_form_driven_by_rasa_intents_and_entities(
    rasa_app: App, fake_rasa: tuple[FakeRasa, RunningServer]
) -> None:
    fake, _ = fake_rasa
    assert isinstance(rasa_app.classifier, RasaHttpClassifier)
    await add_orders(rasa_app, order("A20001"))
    opening = "I want to send back my hoodie from order A20001, it is too small"
    fake.understand(
        opening,
        "return_item",
        0.97,
        FakeEntity("order_id", "A20001", extractor="RegexEntityExtractor"),
        FakeEntity("product", "hoodie", value="HD-001"),
    )
    fake.understand("it's alice@example.com", "inform", 0.91, FakeEntity("email", "alice@example.com"))
    fake.understand("a refund please", "inform", 0.88, FakeEntity("resolution", "refund"))
    fake.understand("yes, that's right", "affirm", 0.99)

    chat = Chat(rasa_app, "alice")
    await chat.say(opening)
    assert "e-mail" in chat.text  # the order is not yet linked to this chat: prove it
    await chat.say("it's alice@example.com")
    assert "refund or an exchange" in chat.text  # the reason came with the first message
    await chat.say("a refund please")
    assert "Order: A20001" in chat.text and "Everyday Hoodie" in chat.text
    await chat.say("yes, that's right")
    number = re.search(r"T-\d{4,}", chat.text)
    assert number, chat.text
    async with rasa_app.tickets.session() as tx:
        ticket = await tx.ticket_by_number(number.group(0))
    assert ticket.kind == TicketKind.RETURN and ticket.order_id == "A20001"
    assert ticket.fields["item"] == "HD-001"
    assert ticket.fields["reason"] == "too small"
    assert ticket.fields["resolution"] == "refund"
    # Every customer message went to Rasa, with the token, and nothing else did.
    assert [r["body"]["text"] for r in fake.requests] == [
        opening,
        "it's alice@example.com",
        "a refund please",
        "yes, that's right",
    ]
    assert {r["query"]["token"] for r in fake.requests} == {"rasa-token"}


async def test_rasa_down_falls_back_and_a_human_can_still_be_reached(
    rasa_app: App, fake_rasa: tuple[FakeRasa, RunningServer]
) -> None:
    fake, _ = fake_rasa
    fake.fault = "500"
    chat = Chat(rasa_app, "bob")
    await chat.say("hello? is anyone there")
    assert any(b.payload == "/human_handoff" for r in chat.last for b in r.buttons)
    asked = len(fake.requests)
    await chat.press("/human_handoff")  # buttons skip classification: no call to the broken Rasa
    assert len(fake.requests) == asked
    async with rasa_app.tickets.session() as tx:
        customer = await tx.find_customer(chat.channel, chat.user)
        assert customer is not None and customer.owner == Owner.QUEUED
        tickets = await tx.open_tickets(customer.id)
    assert [t.kind for t in tickets] == [TicketKind.HANDOFF]
