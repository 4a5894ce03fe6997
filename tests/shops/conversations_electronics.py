"""Scripted customers of the electronics shop (tests/shops/electronics), over the REST channel.

Each function is one conversation (one test, one line of the bench). They check facts —
the price with its currency, stock, the FAQ answer's key fact, the ticket's kind, order id
and fields — never a reply's exact wording.
"""

from __future__ import annotations

import re

from tests.shops.harness import (
    IN_STOCK,
    OUT_OF_STOCK,
    Visit,
    conversation,
    demo_order_ids,
    expect_ticket,
    finish_return,
    order_ids_in,
    price,
)

SHOP = "electronics"
on = conversation(SHOP)


# -- pre-sale -------------------------------------------------------------------------------
@on
async def price_by_partial_name_en(visit: Visit) -> None:
    chat = visit.chat("e-presale-1")
    await chat.say("how much are the X2 Pro earbuds?")
    chat.expect(price("129.00", "USD"))
    chat.refuse(price("79.00", "USD"))
    await chat.say("and the charging case?")
    chat.expect(price("29.00", "USD"))
    await visit.expect_no_ticket(chat)


@on
async def stock_by_partial_name_en(visit: Visit) -> None:
    chat = visit.chat("e-presale-2")
    await chat.say("do you have the 65W charger in stock?")
    chat.expect(IN_STOCK["en"], "65W")
    chat.refuse(OUT_OF_STOCK["en"])
    await chat.say("is the 30W charger available?")
    chat.expect(OUT_OF_STOCK["en"], "30W")


@on
async def price_and_stock_by_partial_name_zh(visit: Visit) -> None:
    chat = visit.chat("e-presale-zh")
    await chat.say("X2 Pro 耳机多少钱？")
    chat.expect(price("129.00", "USD"))
    await chat.say("65W 充电器有货吗？")
    chat.expect(IN_STOCK["zh"])
    chat.refuse(OUT_OF_STOCK["zh"])


@on
async def ambiguous_name_asks_which_one_en(visit: Visit) -> None:
    chat = visit.chat("e-ambiguous-en")
    await chat.say("how much is the laptop sleeve?")
    chat.expect_buttons("Arc 14", "Arc 16")
    chat.refuse(price("34.00", "USD"), price("38.00", "USD"))  # a question, not a guess
    await chat.click("Arc 16")
    chat.expect(price("38.00", "USD"))


@on
async def ambiguous_name_asks_which_one_zh(visit: Visit) -> None:
    chat = visit.chat("e-ambiguous-zh")
    await chat.say("Volt 充电器有货吗？")
    chat.expect_buttons("65W", "30W")
    await chat.click("30W")
    chat.expect(OUT_OF_STOCK["zh"])


# -- FAQ ------------------------------------------------------------------------------------
@on
async def faq_by_paraphrase_en(visit: Visit) -> None:
    chat = visit.chat("e-faq-para")
    await chat.say("how long is the guarantee on your gadgets?")
    chat.expect("2-year")
    await chat.say("when will my package arrive if I order today?")
    chat.expect("3–5 business days")


@on
async def faq_by_a_fact_only_in_the_answer_en(visit: Visit) -> None:
    chat = visit.chat("e-faq-fact")
    await chat.say("is Apple Pay accepted at checkout?")
    chat.expect("Apple Pay", "PayPal")  # the payment entry, which names both
    await chat.say("do you ship to Canada?")
    chat.expect("Canada", "9.95")


@on
async def faq_in_chinese(visit: Visit) -> None:
    chat = visit.chat("e-faq-zh")
    await chat.say("保修期是多长时间？")
    chat.expect("2 年")
    await chat.say("可以用PayPal付款吗？")
    chat.expect("PayPal", "Klarna")


# -- returns and exchanges ---------------------------------------------------------------------
@on
async def return_in_one_shot_en(visit: Visit) -> None:
    chat = visit.chat("e-return-1")
    await chat.say("I want to return the earbuds from order #100234, they crackle")
    chat.refuse("couldn't find")
    await finish_return(chat, contact="jason.miller@example.com")
    number = chat.ticket_number()
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, number=number, kind="return", order_id="100234", fields__item="NX2-EB",
                  fields__reason=re.compile("crackle", re.I), fields__resolution="refund")


@on
async def return_step_by_step_en(visit: Visit) -> None:
    chat = visit.chat("e-return-2")
    await chat.say("I'd like to send something back")
    chat.expect_any("order number", "which order")
    if demo_order_ids(chat.text):
        chat.fail("the question shows the demo shop's order id format")
    await chat.say("#100236")
    chat.expect_any("e-mail", "email", "phone")
    await chat.say("priya.shah@example.com")
    await finish_return(chat, reason="the padding is much thinner than in the photos")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="return", order_id="100236", fields__item="ARC-14",
                  fields__reason=re.compile("padding"), fields__resolution="refund")


@on
async def exchange_step_by_step_zh(visit: Visit) -> None:
    chat = visit.chat("e-exchange-zh")
    await chat.say("我想换货")
    chat.expect_any("订单号", "哪个订单")
    await chat.say("订单号100251")
    await finish_return(chat, contact="li.na@example.com", reason="颜色和图片不一样", resolution="exchange",
                        wanted="藏青色")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="exchange", order_id="100251", fields__item="ARC-16",
                  fields__wanted=re.compile("藏青|navy"))


@on
async def return_with_a_defect_in_one_shot_zh(visit: Visit) -> None:
    chat = visit.chat("e-return-zh")
    await chat.say("我想退货，订单#100250的耳机有杂音")
    await finish_return(chat, contact="zhang.wei@example.com", reason="耳机有杂音")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="return", order_id="100250", fields__item="NX2-EB",
                  fields__reason=re.compile("杂音"))


@on
async def return_with_a_defect_is_not_a_complaint_en(visit: Visit) -> None:
    chat = visit.chat("e-return-defect")
    await chat.say("I want to return order #100252, the speaker stopped charging after two days. Unacceptable.")
    await finish_return(chat, contact="chen.qiang@example.com", reason="it stopped charging after two days")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="return", order_id="100252", fields__item="PL-SPK")


@on
async def return_outside_the_window_goes_to_a_person(visit: Visit) -> None:
    chat = visit.chat("e-return-late")
    await chat.say("I want to return the charger from order 100231, I don't need it anymore")
    await chat.say("emily.carter@example.com")
    chat.expect("100231", "30")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="return", order_id="100231", escalation_reason=re.compile("30-day"))


@on
async def unknown_order_id_is_named_in_full(visit: Visit) -> None:
    chat = visit.chat("e-unknown")
    await chat.say("I want to return my order #100999, the case is scratched")
    chat.expect("100999")
    stray = set(order_ids_in(chat.text)) - {"100999"} - await visit.order_ids()  # the shop's own ids may be examples
    if stray:
        chat.fail(f"the reply names a truncated or made-up id: {sorted(stray)}")
    await chat.say("where is order 100998?")
    chat.expect("100998")


# -- complaints, handoff, status, off-topic ------------------------------------------------------
@on
async def complaint_with_strong_words_is_prioritised(visit: Visit) -> None:
    chat = visit.chat("e-complaint-1")
    await chat.say("The Pulse Mini from order #100240 sounds terrible, it distorts at half volume. Worst purchase ever.")
    number = chat.ticket_number()
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, number=number, kind="complaint", order_id="100240", priority="high")


@on
async def complaint_on_a_high_value_order_is_prioritised(visit: Visit) -> None:
    chat = visit.chat("e-complaint-2")
    await chat.say("I'm disappointed, the earbuds from order #100241 keep disconnecting from my phone")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="complaint", order_id="100241", priority="high")


@on
async def complaint_zh(visit: Visit) -> None:
    chat = visit.chat("e-complaint-zh")
    await chat.say("你们的音箱质量太差了，订单100252用了两天就坏了，我要投诉")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="complaint", order_id="100252", priority="high")


@on
async def handoff_then_ticket_status_en(visit: Visit) -> None:
    chat = visit.chat("e-handoff")
    await chat.say("I want to talk to a person")
    number = chat.ticket_number()
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, number=number, kind="handoff")
    await visit.app.desk.resolve(number)
    await chat.say("what's the status of my tickets?")  # the rating request comes first, then the status
    chat.expect(number, "resolved", final=True)


@on
async def handoff_zh(visit: Visit) -> None:
    chat = visit.chat("e-handoff-zh")
    await chat.say("我要找人工客服")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="handoff")


@on
async def off_topic_gets_no_shop_answer(visit: Visit) -> None:
    chat = visit.chat("e-offtopic")
    await chat.say("what's the weather going to be like in Chicago tomorrow?")
    chat.refuse(*visit.faq_answers("en"), re.compile(r"\$\s*\d|\d\s*USD"))
    await chat.say("给我讲个笑话")
    chat.refuse(*visit.faq_answers("zh"), re.compile(r"\$\s*\d|\d\s*USD"))
    await visit.expect_no_ticket(chat)
