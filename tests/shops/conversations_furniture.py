"""Scripted customers of the furniture shop (tests/shops/furniture), over the REST channel.

Each function is one conversation (one test, one line of the bench). They check facts —
the price with its currency, stock, the FAQ answer's key fact, the ticket's kind, order id
and fields — never a reply's exact wording. The shop's order ids are year-month-serial
(``2026-11-000402``), which customers write with slashes, spaces or no separator at all.
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

SHOP = "furniture"
on = conversation(SHOP)
_GBP = re.compile(r"£\s*\d|\d\s*GBP")


# -- pre-sale -------------------------------------------------------------------------------
@on
async def price_by_partial_name_en(visit: Visit) -> None:
    chat = visit.chat("f-presale-1")
    await chat.say("how much is the oslo coffee table?")
    chat.expect(price("249.00", "GBP"))
    chat.refuse(price("649.00", "GBP"))
    await chat.say("and what does the oak sideboard cost?")
    chat.expect(price("529.00", "GBP"))
    await visit.expect_no_ticket(chat)


@on
async def stock_by_plural_en(visit: Visit) -> None:
    chat = visit.chat("f-presale-2")
    await chat.say("are the malmo dining chairs in stock?")
    chat.expect(IN_STOCK["en"])
    chat.refuse(OUT_OF_STOCK["en"], price("649.00", "GBP"))
    await chat.say("do you have any cushion covers left?")
    chat.expect(IN_STOCK["en"])


@on
async def price_by_a_typo_en(visit: Visit) -> None:
    chat = visit.chat("f-presale-typo")
    await chat.say("what's the price of the bergan linen sofa?")
    chat.expect(price("1099.00", "GBP"))
    await chat.say("how much is the linen armchiar?")
    chat.expect(price("549.00", "GBP"))
    chat.refuse(price("1099.00", "GBP"))


@on
async def a_table_lamp_is_no_table_en(visit: Visit) -> None:
    chat = visit.chat("f-lamp")
    await chat.say("is the table lamp in stock?")
    chat.expect(IN_STOCK["en"])
    if chat.buttons:
        chat.fail("a which-one question for a name only one product has")
    chat.refuse(price("649.00", "GBP"), price("249.00", "GBP"))


@on
async def rug_size_stock_en(visit: Visit) -> None:
    chat = visit.chat("f-rug")
    await chat.say("is the lund rug available in 200x300?")
    chat.expect(OUT_OF_STOCK["en"], "200x300")
    await chat.say("and in 160x230?")
    chat.expect(IN_STOCK["en"], "160x230")


@on
async def ambiguous_name_asks_which_one_en(visit: Visit) -> None:
    chat = visit.chat("f-ambiguous-en")
    await chat.say("how much is the oslo oak table?")
    chat.expect_buttons("Dining", "Coffee")
    chat.refuse(price("649.00", "GBP"), price("249.00", "GBP"))  # a question, not a guess
    if chat.button("Lamp"):
        chat.fail("the table lamp offered for an oak table")
    await chat.click("Coffee")
    chat.expect(price("249.00", "GBP"))


@on
async def ambiguous_name_asks_which_one_zh(visit: Visit) -> None:
    chat = visit.chat("f-ambiguous-zh")
    await chat.say("奥斯陆橡木桌有货吗？")
    chat.expect_buttons("餐桌", "咖啡桌")
    await chat.click("咖啡桌")
    chat.expect(OUT_OF_STOCK["zh"])


@on
async def price_and_stock_zh(visit: Visit) -> None:
    chat = visit.chat("f-presale-zh")
    await chat.say("卑尔根沙发多少钱？")
    chat.expect(price("1099.00", "GBP"))
    await chat.say("马尔默餐椅有货吗？")
    chat.expect(IN_STOCK["zh"])
    chat.refuse(OUT_OF_STOCK["zh"])


# -- FAQ ------------------------------------------------------------------------------------
@on
async def faq_by_paraphrase_naming_a_product_en(visit: Visit) -> None:
    chat = visit.chat("f-faq-para")
    await chat.say("will your team put the dining table together for me?")
    chat.expect("£45")


@on
async def faq_by_paraphrase_en(visit: Visit) -> None:
    chat = visit.chat("f-faq-para-2")
    await chat.say("can I choose which day you deliver?")
    chat.expect("2-hour")


@on
async def faq_of_another_topic_naming_a_product_en(visit: Visit) -> None:
    chat = visit.chat("f-faq-samples")
    await chat.say("can I get fabric samples of the bergen sofa?")
    chat.expect("4 free")


@on
async def follow_up_on_another_product_keeps_the_question_en(visit: Visit) -> None:
    chat = visit.chat("f-follow-up")
    await chat.say("is the bergen sofa in stock?")
    chat.expect(IN_STOCK["en"])
    await chat.say("and the armchair?")
    chat.expect(IN_STOCK["en"], "Armchair")
    chat.refuse("10 years")  # the guarantee entry names armchairs: no answer to this question


@on
async def faq_by_a_fact_only_in_the_answer_en(visit: Visit) -> None:
    chat = visit.chat("f-faq-fact")
    await chat.say("can I pay in monthly instalments?")
    chat.expect("Klarna")
    await chat.say("can you deliver to Belfast in Northern Ireland?")
    chat.expect("Northern Ireland", "quoted")
    await chat.say("how often should I oil the oak?")
    chat.expect("6–12 months")


@on
async def faq_about_returning_a_sofa_en(visit: Visit) -> None:
    chat = visit.chat("f-faq-returns")
    await chat.say("is there a fee if you collect a sofa I send back?")
    chat.expect("£49")
    await visit.expect_no_ticket(chat)


@on
async def faq_in_chinese(visit: Visit) -> None:
    chat = visit.chat("f-faq-zh")
    await chat.say("家具要自己装吗？")
    chat.expect("45 英镑")
    await chat.say("可以分期付款吗？")
    chat.expect("Klarna")
    await chat.say("亚麻套可以机洗吗？")
    chat.expect("30°C")


# -- returns and exchanges ---------------------------------------------------------------------
@on
async def return_in_one_shot_en(visit: Visit) -> None:
    chat = visit.chat("f-return-1")
    await chat.say("I'd like to return the rug from order 2026-11-000405, it's too big for our room")
    chat.refuse("couldn't find")
    await finish_return(chat, contact="hannah.price@example.co.uk")
    number = chat.ticket_number()
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, number=number, kind="return", order_id="2026-11-000405", fields__item="LND-RUG",
                  fields__reason=re.compile("too big", re.I), fields__resolution="refund")


@on
async def return_step_by_step_with_slashes_en(visit: Visit) -> None:
    chat = visit.chat("f-return-2")
    await chat.say("I need to send back one of the chairs")
    chat.expect_any("order number", "which order")
    if demo_order_ids(chat.text):
        chat.fail("the question shows the demo shop's order id format")
    await chat.say("it's 2026/11/000402")
    chat.expect_any("e-mail", "email", "phone")
    await chat.say("oliver.hughes@example.co.uk")
    await finish_return(chat, reason="the oak is much darker than in the photos")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="return", order_id="2026-11-000402", fields__item="MLM-DC2",
                  fields__reason=re.compile("darker"), fields__resolution="refund")


@on
async def exchange_step_by_step_without_dashes_zh(visit: Visit) -> None:
    chat = visit.chat("f-exchange-zh")
    await chat.say("我想换货")
    chat.expect_any("订单号", "哪个订单")
    await chat.say("订单号是202611000409")
    await finish_return(chat, contact="wang.fang@example.co.uk", reason="颜色和沙发不搭", resolution="exchange",
                        wanted="鼠尾草绿")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="exchange", order_id="2026-11-000409", fields__item="BRG-CC5",
                  fields__wanted=re.compile("鼠尾草|sage"))


@on
async def return_with_a_defect_in_one_shot_zh(visit: Visit) -> None:
    chat = visit.chat("f-return-zh")
    await chat.say("我要退货，订单2026-11-000412的台灯一直闪")
    await finish_return(chat, contact="liu.yang@example.co.uk", reason="台灯一直闪")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="return", order_id="2026-11-000412", fields__item="NRD-TL1",
                  fields__reason=re.compile("闪"))


@on
async def return_with_a_defect_is_not_a_complaint_en(visit: Visit) -> None:
    chat = visit.chat("f-return-defect")
    await chat.say("I want to return order #2026-11-000419, the bookshelf arrived with a split side panel. Really poor.")
    await finish_return(chat, contact="jack.morris@example.co.uk", reason="it arrived with a split side panel")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="return", order_id="2026-11-000419", fields__item="ASK-BS5")


@on
async def return_outside_the_window_goes_to_a_person(visit: Visit) -> None:
    chat = visit.chat("f-return-late")
    await chat.say("I'd like to return the bookshelf from order 2026 10 000388, we've moved house")
    await chat.say("george.walsh@example.co.uk")
    chat.expect("2026-10-000388", "30")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="return", order_id="2026-10-000388", escalation_reason=re.compile("30-day"))


@on
async def unknown_order_id_is_named_in_full(visit: Visit) -> None:
    chat = visit.chat("f-unknown")
    await chat.say("I want to return order 2026-11-000999, the table legs wobble")
    chat.expect("2026-11-000999")
    stray = set(order_ids_in(chat.text)) - {"000999", "2026"} - {i.split("-")[-1] for i in await visit.order_ids()}
    if stray:
        chat.fail(f"the reply names a truncated or made-up id: {sorted(stray)}")
    await chat.say("where is 2026-11-000998?")
    chat.expect("2026-11-000998")


@on
async def order_status_with_the_id_written_in_spaces(visit: Visit) -> None:
    chat = visit.chat("f-status")
    await chat.say("hi, what's the status of 2026 11 000415? it's under sophie.turner@example.co.uk")
    chat.expect("2026-11-000415")
    chat.expect_any("shipped", "on its way", "dispatched")
    await visit.expect_no_ticket(chat)


@on
async def unknown_order_id_without_a_cue_is_named_in_full(visit: Visit) -> None:
    chat = visit.chat("f-unknown-bare")
    await chat.say("where is 2026-11-000998?")
    chat.expect("2026-11-000998")
    await visit.expect_no_ticket(chat)


# -- complaints, handoff, small talk, off-topic ----------------------------------------------------
@on
async def complaint_on_a_high_value_order_is_prioritised(visit: Visit) -> None:
    chat = visit.chat("f-complaint-1")
    await chat.say("Really disappointed: the dining table from order 2026-11-000402 has a deep scratch across the top")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="complaint", order_id="2026-11-000402", priority="high")


@on
async def complaint_zh(visit: Visit) -> None:
    chat = visit.chat("f-complaint-zh")
    await chat.say("扶手椅的布料才用一周就起球了，订单2026-11-000398，质量太差，我要投诉")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="complaint", order_id="2026-11-000398", priority="high")


@on
async def handoff_then_ticket_status_en(visit: Visit) -> None:
    chat = visit.chat("f-handoff")
    await chat.say("could I talk to someone from your team please")
    number = chat.ticket_number()
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, number=number, kind="handoff")
    await visit.app.desk.resolve(number)
    await chat.say("any news on my ticket?")  # the rating request comes first, then the status
    chat.expect(number, "resolved", final=True)


@on
async def handoff_zh(visit: Visit) -> None:
    chat = visit.chat("f-handoff-zh")
    await chat.say("麻烦帮我转一下人工")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="handoff")


@on
async def greeting_and_thanks_make_no_ticket(visit: Visit) -> None:
    chat = visit.chat("f-smalltalk")
    await chat.say("good morning to you!")
    chat.refuse(*visit.faq_answers("en"), _GBP)
    await chat.say("great, thanks a lot, that's all")
    chat.refuse(*visit.faq_answers("en"), _GBP)
    await chat.say("你好呀，在吗")
    chat.refuse(*visit.faq_answers("zh"), _GBP)
    await visit.expect_no_ticket(chat)


@on
async def off_topic_gets_no_shop_answer(visit: Visit) -> None:
    chat = visit.chat("f-offtopic")
    await chat.say("what's the capital of Peru?")
    chat.refuse(*visit.faq_answers("en"), _GBP)
    await chat.say("推荐一部好看的电影")
    chat.refuse(*visit.faq_answers("zh"), _GBP)
    await visit.expect_no_ticket(chat)
