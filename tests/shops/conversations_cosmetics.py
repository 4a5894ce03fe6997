"""Scripted customers of the Chinese-first cosmetics shop (tests/shops/cosmetics), over REST.

As in conversations_electronics: one function a conversation, facts checked, not wording.
This shop returns within 15 days and calls an order of 1,000 CNY high value (harness.SHOPS).
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

SHOP = "cosmetics"
on = conversation(SHOP)


# -- pre-sale -------------------------------------------------------------------------------
@on
async def price_by_partial_name_zh(visit: Visit) -> None:
    chat = visit.chat("c-presale-1")
    await chat.say("玻尿酸精华多少钱？")
    chat.expect(price("168.00", "CNY"))
    chat.refuse(price("238.00", "CNY"), price("198.00", "CNY"))
    await chat.say("玻尿酸面霜呢？")
    chat.expect(price("198.00", "CNY"))
    await visit.expect_no_ticket(chat)


@on
async def stock_by_partial_name_zh(visit: Visit) -> None:
    chat = visit.chat("c-presale-2")
    await chat.say("洁面乳有货吗？")
    chat.expect(IN_STOCK["zh"])
    chat.refuse(OUT_OF_STOCK["zh"])
    await chat.say("玻尿酸化妆水还有货吗？")
    chat.expect(OUT_OF_STOCK["zh"])


@on
async def lipstick_shade_stock_zh(visit: Visit) -> None:
    chat = visit.chat("c-shade")
    await chat.say("口红N02有货吗？")
    chat.expect("N02", OUT_OF_STOCK["zh"])
    await chat.say("口红B03有货吗？")
    chat.expect("B03", IN_STOCK["zh"])
    chat.refuse(OUT_OF_STOCK["zh"])


@on
async def price_and_stock_en(visit: Visit) -> None:
    chat = visit.chat("c-presale-en")
    await chat.say("how much is the hyaluronic cream?")
    chat.expect(price("198.00", "CNY"))
    await chat.say("is the retinol serum in stock?")
    chat.expect(IN_STOCK["en"])
    chat.refuse(OUT_OF_STOCK["en"])


@on
async def ambiguous_name_asks_which_one_zh(visit: Visit) -> None:
    chat = visit.chat("c-ambiguous-1")
    await chat.say("氨基酸洁面多少钱？")
    chat.expect_buttons("洁面乳", "洁面慕斯")
    chat.refuse(price("89.00", "CNY"), price("99.00", "CNY"))
    await chat.click("慕斯")
    chat.expect(price("99.00", "CNY"))


@on
async def ambiguous_serum_asks_which_one_zh(visit: Visit) -> None:
    chat = visit.chat("c-ambiguous-2")
    await chat.say("精华液有货吗？")
    chat.expect_buttons("玻尿酸", "视黄醇")
    await chat.click("视黄醇")
    chat.expect(IN_STOCK["zh"])
    chat.refuse(OUT_OF_STOCK["zh"])


# -- FAQ ------------------------------------------------------------------------------------
@on
async def faq_by_paraphrase_zh(visit: Visit) -> None:
    chat = visit.chat("c-faq-para")
    await chat.say("下单以后几天能收到？")
    chat.expect("顺丰")
    await chat.say("擦完脸上起红疹了怎么办？")
    chat.expect("停用")


@on
async def faq_by_a_fact_only_in_the_answer_zh(visit: Visit) -> None:
    chat = visit.chat("c-faq-fact")
    await chat.say("能用微信付款吗？")
    chat.expect("微信支付", "支付宝")
    await chat.say("开封后能放多久？")
    chat.expect("12 个月")
    await chat.say("怎么查防伪码？")
    chat.expect("防伪码", "官网")


@on
async def faq_in_english(visit: Visit) -> None:
    chat = visit.chat("c-faq-en")
    await chat.say("does your shop take WeChat Pay?")
    chat.expect("WeChat Pay", "Alipay")
    await chat.say("is it safe to use while breastfeeding?")
    chat.expect("retinol")


# -- returns and exchanges ---------------------------------------------------------------------
@on
async def return_for_an_allergy_in_one_shot_zh(visit: Visit) -> None:
    chat = visit.chat("c-return-1")
    await chat.say("我要退货，订单号DD20261115002的精华液，用了过敏")
    chat.refuse("没有找到")
    await finish_return(chat, contact="+86 139 0101 0002")
    number = chat.ticket_number()
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, number=number, kind="return", order_id="DD20261115002", fields__item="HA-SER",
                  fields__reason=re.compile("过敏"), fields__resolution="refund")


@on
async def return_with_a_defect_is_not_a_complaint_zh(visit: Visit) -> None:
    chat = visit.chat("c-return-2")
    await chat.say("订单DD20261108008的面膜包装破了，全漏液了，我想退货")
    await finish_return(chat, contact="guo.ting@example.net", reason="包装破了，漏液")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="return", order_id="DD20261108008", fields__item="HA-MSK",
                  fields__reason=re.compile("漏液|破"))


@on
async def return_in_one_shot_en(visit: Visit) -> None:
    chat = visit.chat("c-return-en")
    await chat.say("I'd like to return the sunscreen from order DD20261119005, it made my skin break out")
    await finish_return(chat, contact="emma.wilson@example.net")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="return", order_id="DD20261119005", fields__item="SPF-50",
                  fields__reason=re.compile("skin"))


@on
async def exchange_step_by_step_with_a_lower_case_id_zh(visit: Visit) -> None:
    chat = visit.chat("c-exchange")
    await chat.say("我想换货")
    chat.expect_any("订单号", "哪个订单")
    if demo_order_ids(chat.text):
        chat.fail("the question shows the demo shop's order id format")
    await chat.say("dd20261117003")
    chat.expect_any("邮箱", "手机")
    await chat.say("zhao.min@example.net")
    await finish_return(chat, reason="颜色太红了，不适合我", resolution="exchange", wanted="B03")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="exchange", order_id="DD20261117003", fields__item="LIP-VM",
                  fields__wanted=re.compile("B03"))


@on
async def return_outside_the_shops_window_goes_to_a_person(visit: Visit) -> None:
    chat = visit.chat("c-return-late")
    await chat.say("我要退货，订单号DD20261002001，面霜不想要了")
    await chat.say("he.jia@example.net")
    chat.expect("DD20261002001", "15")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="return", order_id="DD20261002001", escalation_reason=re.compile("15-day"))


@on
async def unknown_order_id_is_named_in_full(visit: Visit) -> None:
    chat = visit.chat("c-unknown")
    await chat.say("我要退货，订单号DD20261130999")
    chat.expect("DD20261130999")
    stray = set(order_ids_in(chat.text)) - {"DD20261130999"} - await visit.order_ids()  # examples may be the shop's
    if stray:
        chat.fail(f"the reply names a truncated or made-up id: {sorted(stray)}")
    await chat.say("订单dd20261130998到哪了？")
    chat.expect("DD20261130998")


# -- complaints, handoff, status, off-topic ------------------------------------------------------
@on
async def complaint_strong_words_and_high_value_is_urgent(visit: Visit) -> None:
    chat = visit.chat("c-complaint-1")
    await chat.say("太差了！订单DD20261118004的视黄醇精华才用两次就变质发臭，我要投诉")
    number = chat.ticket_number()
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, number=number, kind="complaint", order_id="DD20261118004", priority="urgent")


@on
async def complaint_without_order_is_normal(visit: Visit) -> None:
    chat = visit.chat("c-complaint-2")
    await chat.say("客服回复太慢了，昨天问的问题到现在都没人理，我要投诉")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="complaint", order_id=None, priority="normal")


@on
async def handoff_then_ticket_status_zh(visit: Visit) -> None:
    chat = visit.chat("c-handoff")
    await chat.say("我要找人工客服")
    number = chat.ticket_number()
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, number=number, kind="handoff")
    await visit.app.desk.resolve(number)
    await chat.say("我的工单处理得怎么样了？")  # the rating request comes first, then the status
    chat.expect(number, "已解决", final=True)


@on
async def handoff_en(visit: Visit) -> None:
    chat = visit.chat("c-handoff-en")
    await chat.say("can I speak to a human please")
    ticket = await visit.only_ticket(chat)
    expect_ticket(chat, ticket, kind="handoff")


@on
async def off_topic_gets_no_shop_answer(visit: Visit) -> None:
    chat = visit.chat("c-offtopic")
    await chat.say("今天上海天气怎么样？")
    chat.refuse(*visit.faq_answers("zh"), re.compile(r"\d\s*(?:CNY|元)|¥\s*\d"))
    await chat.say("who won the football match last night?")
    chat.refuse(*visit.faq_answers("en"), re.compile(r"\d\s*(?:CNY|元)|¥\s*\d"))
    await visit.expect_no_ticket(chat)
