"""The per-customer rate limit in the pipeline, on SQLite + memory and PostgreSQL + Redis.

Each test puts the app's own limiter implementation on a fake clock (``_limit``), so windows
pass without sleeping; everything else is the whole app.
"""

from __future__ import annotations

from bot.app import App
from storage.customer_limits import CustomerRate, MemoryCustomerLimiter
from storage.models import Direction, Message, Owner
from storage.redis_customer_limits import RedisCustomerLimiter
from storage.redis_state import RedisStateStore
from tests.factories import Chat

PRICE = "how much is the hoodie?"  # one reply: the hoodie's price


class FakeClock:
    def __init__(self) -> None:
        self.now = 5_000.0

    def __call__(self) -> float:
        return self.now


def _limit(app: App, messages: int, seconds: float) -> FakeClock:
    clock = FakeClock()
    rate = CustomerRate(messages, seconds)
    if isinstance(app.state, RedisStateStore):
        app.pipeline.limiter = RedisCustomerLimiter(app.state.redis, app.state.keys, rate, clock=clock)
    else:
        app.pipeline.limiter = MemoryCustomerLimiter(rate, clock=clock)
    return clock


async def _stored(app: App, chat: Chat) -> list[Message]:
    async with app.tickets.session() as tx:
        customer = await tx.find_customer(chat.channel, chat.user)
        assert customer is not None
        return sorted(await tx.conversation(customer.id), key=lambda m: m.id)


def _inbound(rows: list[Message]) -> list[Message]:
    return [m for m in rows if m.direction == Direction.INBOUND]


def _outbound(rows: list[Message]) -> list[Message]:
    return [m for m in rows if m.direction == Direction.OUTBOUND]


def _polite(app: App, language: str) -> str:
    return app.services.responses.text(language, "rate_limited")


async def test_the_app_limits_customers_as_configured(app: App) -> None:
    limiter = app.pipeline.limiter
    expected = RedisCustomerLimiter if app.settings.state.backend == "redis" else MemoryCustomerLimiter
    assert type(limiter) is expected
    assert limiter.rate == CustomerRate(20, 60)  # config.yaml's limits.customer


async def test_a_flood_gets_one_polite_reply_and_every_message_is_stored(app: App) -> None:
    clock = _limit(app, 3, 60)
    chat = Chat(app, "flooder")
    answers = [await chat.say(f"{PRICE} ({n})") for n in range(7)]
    assert [len(a) for a in answers] == [1, 1, 1, 1, 0, 0, 0]
    assert all("49.90" in a[0] for a in answers[:3])
    assert answers[3] == [_polite(app, "en")]

    rows = await _stored(app, chat)
    assert [m.text for m in _inbound(rows)] == [f"{PRICE} ({n})" for n in range(7)]  # nothing lost
    assert [bool(m.payload.get("rate_limited")) for m in _inbound(rows)] == [False] * 3 + [True] * 4
    assert [m.intent for m in _inbound(rows)][3:] == [None] * 4  # not classified
    assert len(_outbound(rows)) == 4

    clock.now += 60  # the window has passed: answered again, and a new flood is told again, once
    answers = [await chat.say(f"{PRICE} [{n}]") for n in range(5)]
    assert [len(a) for a in answers] == [1, 1, 1, 1, 0]
    assert "49.90" in answers[2][0] and answers[3] == [_polite(app, "en")]
    rows = await _stored(app, chat)
    assert (len(_inbound(rows)), len(_outbound(rows))) == (12, 8)


async def test_a_chinese_customer_is_told_in_chinese(app: App) -> None:
    _limit(app, 2, 60)
    chat = Chat(app, "zh-flooder")
    answers = [await chat.say("卫衣多少钱") for _ in range(4)]
    assert [len(a) for a in answers] == [1, 1, 1, 0]
    assert answers[2] == [_polite(app, "zh")] and answers[2] != [_polite(app, "en")]
    rows = await _stored(app, chat)
    assert (len(_inbound(rows)), len(_outbound(rows))) == (4, 3)


async def test_a_redelivery_is_counted_once_and_gets_its_first_answer(app: App) -> None:
    _limit(app, 2, 60)
    chat = Chat(app, "retrier")
    first = await chat.say(PRICE, key="r-1")
    assert await chat.say(PRICE, key="r-1") == first  # a retry: replayed, not counted
    assert await chat.say(PRICE, key="r-1") == first
    assert "49.90" in (await chat.say(PRICE, key="r-2"))[0]  # the second message: still answered
    polite = await chat.say(PRICE, key="r-3")
    assert polite == [_polite(app, "en")]
    assert await chat.say(PRICE, key="r-3") == polite  # the notice's retry gets the notice again
    assert await chat.say(PRICE, key="r-4") == []
    rows = await _stored(app, chat)
    assert [m.delivery_key for m in _inbound(rows)] == ["r-1", "r-2", "r-3", "r-4"]
    assert len(_outbound(rows)) == 3


async def test_a_conversation_with_an_agent_is_relayed_and_not_limited(app: App) -> None:
    clock = _limit(app, 2, 60)
    chat = Chat(app, "waiting")
    await chat.say("I want to talk to a human please")
    number = chat.text.split("T-")[1][:4]
    await app.desk.reply(f"T-{number}", "Hi, Sam here.")
    async with app.tickets.session() as tx:
        customer = await tx.find_customer(chat.channel, chat.user)
        assert customer is not None and customer.owner == Owner.AGENT
    for n in range(6):
        assert await chat.say(f"my parcel never came ({n})") == []  # the bot never talks over an agent
    rows = await _stored(app, chat)
    inbound = _inbound(rows)
    assert len(inbound) == 7 and not any(m.payload.get("rate_limited") for m in inbound)
    assert all(m.ticket_id is not None for m in inbound[1:])  # relayed onto the ticket
    async with app.tickets.session() as tx:
        ticket = await tx.ticket_by_number(f"T-{number}")
        events = [e.kind for e in await tx.ticket_events(ticket.id)]
    assert events.count("customer_message") == 6

    await app.desk.hand_back(f"T-{number}")
    clock.now += 1  # back with the bot: only the request for a human counted (the six did not)
    answers = [await chat.say(f"{PRICE} {n}") for n in range(3)]
    assert [len(a) for a in answers] == [1, 1, 0]
    assert "49.90" in answers[0][0] and answers[1] == [_polite(app, "en")]
