"""What the bot missed is recorded by the pipeline, and what admins teach it is used without a restart.

On both backend pairs (``app``: SQLite + memory, PostgreSQL + Redis) with the demo shop and the
real classifier; the questions below are ones it cannot answer from the demo's data.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.jobs.knowledge_sync import KnowledgeSync
from common.messages import Incoming
from intents.base import IntentClassifier
from knowledge.shop import load_faq
from storage import missed
from storage.events import BusEvent, InProcessEventBus
from storage.missed import KNOWLEDGE_CHANGED
from storage.models import AdditionKind, MissedReason, utcnow

FAQ = load_faq(Path(__file__).resolve().parents[2] / "examples" / "shop" / "faq.yml")
BITCOIN = "Do you take bitcoin?"  # ask_payment, but the FAQ has no answer (its payment answer names no crypto)
PULLOVER = "how much is the comfy pullover"  # ask_price, naming no product the catalog knows
DESIGNERS = "Who designs your clothes?"  # out of scope for the classifier


async def ask(app: App, sender: str, text: str) -> list[str]:
    replies = await app.pipeline.handle(Incoming(channel="rest", chat_id=sender, user_id=sender, text=text))
    return [reply.text for reply in replies]


async def open_misses(app: App) -> list[missed.MissedRow]:
    async with app.tickets.session() as tx:
        return await missed.open_missed(tx, utcnow() - timedelta(hours=1))


async def teach(app: App, kind: AdditionKind, target: str, text: str, language: str = "en") -> None:
    """What the workspace's POST does: store, announce, reload this process."""
    async with app.tickets.session() as tx:
        await missed.add_addition(tx, kind=kind, target=target, language=language, text=text,
                                  folded=text.casefold(), agent_id=None)
        app.knowledge.announce(tx, "test")
    await app.knowledge.reload()


async def test_what_the_bot_could_not_answer_is_recorded_with_its_reason(app: App) -> None:
    assert "don't have an answer" in (await ask(app, "c1", BITCOIN))[0]
    assert "couldn't find that product" in (await ask(app, "c2", PULLOVER))[0]
    assert "rephrase" in (await ask(app, "c3", DESIGNERS))[0]
    answered = await ask(app, "c4", "How long does delivery take?")
    assert answered == [FAQ.get("shipping_time").answer_for("en")]  # type: ignore[union-attr]
    rows = await open_misses(app)
    assert [(r.text, r.reason, r.language) for r in rows] == [
        (DESIGNERS, MissedReason.FALLBACK, "en"),
        (PULLOVER, MissedReason.PRODUCT_UNKNOWN, "en"),
        (BITCOIN, MissedReason.FAQ_UNKNOWN, "en"),
    ]
    assert rows[0].intent == "out_of_scope" and rows[2].intent == "ask_payment"
    assert rows[2].confidence is not None and rows[2].confidence > 0.5


async def test_an_unsure_answer_is_recorded_as_low_confidence(app: App) -> None:
    question = "How long does delivery take?"
    await ask(app, "c5", question)
    assert await open_misses(app) == []  # answered, and sure of it
    app.pipeline.settings = replace(app.pipeline.settings, unsure_below=1.01)  # as if every answer were unsure
    await ask(app, "c5", question)
    rows = await open_misses(app)
    assert [(r.text, r.reason) for r in rows] == [(question, MissedReason.LOW_CONFIDENCE)]


async def test_a_handoff_after_a_miss_is_counted(app: App) -> None:
    await ask(app, "c6", DESIGNERS)
    await app.pipeline.handle(Incoming(channel="rest", chat_id="c6", user_id="c6", text="", payload="/human_handoff"))
    rows = await open_misses(app)
    assert [(r.text, r.handed_off) for r in rows] == [(DESIGNERS, True)]


async def test_what_admins_teach_is_answered_without_a_restart(app: App) -> None:
    payment = FAQ.get("payment_methods")
    assert payment is not None
    shop_before = app.services.shop
    await teach(app, AdditionKind.FAQ_PHRASING, "payment_methods", BITCOIN)
    assert app.services.shop is not shop_before
    assert await ask(app, "c7", BITCOIN) == [payment.answer_for("en")]

    # Out of scope for the classifier, yet answered: the fallback knows the taught question.
    contact = FAQ.get("contact")
    assert contact is not None
    await teach(app, AdditionKind.FAQ_PHRASING, "contact", DESIGNERS)
    assert await ask(app, "c8", "who designs your clothes") == [contact.answer_for("en")]
    await teach(app, AdditionKind.FAQ_PHRASING, "vouchers", "你们有会员卡吗", "zh")
    vouchers = FAQ.get("vouchers")
    assert vouchers is not None
    assert await ask(app, "c9", "你们有会员卡吗？") == [vouchers.answer_for("zh")]

    await teach(app, AdditionKind.PRODUCT_ALIAS, "HD-001", "comfy pullover")
    reply = await ask(app, "c10", PULLOVER)
    assert len(reply) == 1 and "49.90" in reply[0] and "Hoodie" in reply[0]
    assert await open_misses(app) == []  # none of the taught questions was missed again


async def test_an_addition_the_files_contradict_is_skipped_at_load(app: App, trained_classifier: IntentClassifier) -> None:
    async with app.tickets.session() as tx:
        for sku, text in (("HD-001", "jeans"), ("NO-SUCH-SKU", "thing"), ("HD-001", "comfy pullover")):
            await missed.add_addition(tx, kind=AdditionKind.PRODUCT_ALIAS, target=sku, language="en", text=text,
                                      folded=text, agent_id=None)
    # A restart (a new process) loads the files plus the additions that still fit them.
    async with build_app(app.settings, classifier=trained_classifier) as again:
        catalog = again.services.catalog
        assert catalog.find("the jeans").sku == "JN-001"  # type: ignore[union-attr]
        assert catalog.find("a comfy pullover").sku == "HD-001"  # type: ignore[union-attr]


@pytest.mark.parametrize("app", ["postgres+redis"], indirect=True)
async def test_another_process_learns_it_from_the_event_bus(app: App, trained_classifier: IntentClassifier) -> None:
    async with build_app(app.settings, classifier=trained_classifier) as other:
        assert "don't have an answer" in (await ask(other, "c11", BITCOIN))[0]
        reloads = other.knowledge.reloads
        await teach(app, AdditionKind.FAQ_PHRASING, "payment_methods", BITCOIN)
        for _ in range(200):
            if other.knowledge.reloads > reloads:
                break
            await asyncio.sleep(0.05)
        assert other.knowledge.reloads == reloads + 1
        assert await ask(other, "c11", BITCOIN) == [FAQ.get("payment_methods").answer_for("en")]  # type: ignore[union-attr]
    assert app.knowledge.reloads == 1  # its own event did not make it reload twice


async def test_reloads_are_coalesced_and_own_events_ignored(app: App) -> None:
    loads = 0
    gate = asyncio.Event()

    async def load() -> object:
        nonlocal loads
        loads += 1
        await gate.wait()
        return app.services.shop

    bus = InProcessEventBus()
    here = KnowledgeSync(load, replace(app.services), bus)  # type: ignore[arg-type]
    there = KnowledgeSync(load, replace(app.services), bus)  # type: ignore[arg-type]
    async with here.watching(), there.watching():
        first = asyncio.create_task(here.reload())
        await asyncio.sleep(0)
        waiting = [asyncio.create_task(here.reload()) for _ in range(5)]  # all arrive during the first load
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(first, *waiting)
        assert loads == 2 and here.reloads == 2  # one load for the first call, one for the five others

        await bus.publish(BusEvent(KNOWLEDGE_CHANGED, None, None, "test", {"origin": here.origin}))
        for _ in range(100):
            if there.reloads:
                break
            await asyncio.sleep(0.01)
        assert (here.reloads, there.reloads) == (2, 1)
