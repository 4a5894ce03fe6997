"""Words customers and shop owners use for the same thing, in any shop: FAQ retrieval's synonyms.

A shop writes "warranty" once; its customers ask about the "guarantee". With one phrasing per
entry, BM25 over the shop's own words cannot bridge that, and the FAQ stays silent. These
groups are the customer-service vocabulary every shop shares — shipping, payment, returns,
refunds, warranty, defects, invoices, contact, authenticity — never a shop's products or
brands (payment networks such as Visa are how people say "card", not what a shop sells).
:mod:`knowledge.faq_search` counts a word matched through its group at
:data:`~knowledge.faq_search.SYNONYM_WEIGHT`, below the word itself, so a shop's own wording
still wins.

Keep groups tight: every member must be answerable by the same FAQ entry in most shops
("send back" and "return" are; "time" and "days" are not — they are asked of warranties,
batteries and deliveries alike; "how much" is asked of every product's price). English members
are matched after stemming (plurals go), a multi-word member as consecutive words once
stopwords are dropped ("send it back"), so it must keep two words then ("not working" would be
"working", and "working days" broken). Chinese members are matched as substrings, longest
first (a lone "退" is a return, "退款" a refund).
"""

from __future__ import annotations

ENGLISH: tuple[tuple[str, ...], ...] = (
    ("warranty", "guarantee", "guaranty", "guaranteed"),
    (
        "ship", "shipping", "shipped", "shipment", "deliver", "delivery", "delivered", "delivering",
        "dispatch", "dispatched", "courier", "arrive", "arrival", "arrived",
    ),
    ("package", "parcel", "packet"),
    ("pay", "payment", "paying", "paid", "checkout"),
    ("card", "credit", "debit", "visa", "mastercard", "maestro", "amex"),
    ("instalment", "installment", "financing", "pay later", "pay monthly"),
    ("refund", "refunded", "reimburse", "reimbursed", "reimbursement", "money back"),
    ("return", "returned", "returning", "send back", "sent back"),
    ("exchange", "exchanged", "swap", "replace", "replacement"),
    ("cancel", "cancelled", "canceled", "cancellation"),
    ("price", "cost", "fee", "charge", "charged"),
    ("declined", "rejected", "refused", "failed", "didn't go through"),
    ("discount", "coupon", "voucher", "promo", "promotion", "promotional"),
    (
        "broken", "broke", "damaged", "damage", "defective", "defect", "faulty", "fault", "cracked",
        "malfunction", "stopped working",
    ),
    ("repair", "repaired", "fix", "fixed", "mend"),
    ("invoice", "receipt", "bill"),
    ("phone", "telephone", "hotline", "call"),
    ("email", "e-mail", "mail"),
    ("size", "sizing"),
    ("stock", "restock", "restocked", "sold out", "back in stock"),
    ("track", "tracking", "trace"),
    ("change", "modify", "amend", "edit", "alter"),
    ("genuine", "authentic", "authenticity", "fake", "counterfeit", "legit"),
    ("international", "internationally", "abroad", "overseas", "worldwide"),
    ("customs", "duty", "tariff", "import tax"),
    ("wash", "washing", "laundry", "launder"),
    ("expire", "expiry", "expiration", "expired", "best before"),
    ("saturday", "sunday", "weekend"),
    ("free", "complimentary", "free of charge"),
    ("purchase", "buy", "bought"),
)
"""English groups, each a set of words (or multi-word phrases) meaning one thing."""

CHINESE: tuple[tuple[str, ...], ...] = (
    ("保修", "质保", "保固", "包修", "保修期"),
    ("快递", "物流", "配送", "发货", "送达", "到货", "邮寄", "运送", "送货", "派送", "寄出", "发出", "寄到"),
    ("运费", "邮费", "快递费", "配送费", "包邮", "免邮"),
    ("付款", "支付", "付钱", "结账", "买单"),
    ("信用卡", "银行卡", "借记卡", "储蓄卡"),
    ("分期", "分期付款"),
    ("退款", "退钱", "返款"),
    ("退货", "退换", "退回", "寄回", "退掉", "退"),
    ("换货", "更换", "调换", "换"),
    ("取消", "撤销", "撤单"),
    ("优惠券", "折扣", "打折", "优惠", "促销", "优惠码", "代金券"),
    ("坏了", "损坏", "破损", "故障", "碎了", "破了", "质量问题", "瑕疵", "坏掉"),
    ("维修", "修理", "返修"),
    ("发票", "收据", "开票"),
    ("客服", "人工"),
    ("电话", "热线"),
    ("邮箱", "电邮", "邮件"),
    ("尺码", "码数", "尺寸"),
    ("补货", "缺货", "库存", "断货", "有货", "售罄"),
    ("修改", "更改", "改成", "变更"),
    ("正品", "真货", "假货", "真假", "真伪", "正版", "仿冒", "防伪", "假的"),
    ("关税", "进口税", "税费"),
    ("海外", "国外", "国际", "境外"),
    ("清洗", "洗涤", "机洗", "手洗", "水洗"),
    ("过期", "保质期", "有效期", "保存期"),
    ("会员", "积分"),
    ("多久", "多长时间", "多少时间", "几天", "多少天"),
)
"""Chinese groups, matched as substrings of a message (longest member first)."""
