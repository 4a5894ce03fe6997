"""An explicit request wins over the mood: "I want to return it, the zip is broken" is a return.

A message that asks for a return, a refund or an exchange in so many words often also
describes a defect or a delay, and a statistical classifier weighs the angry words as much
as the request: it says ``complaint`` (or ``order_status`` when an order number is the
loudest token). The customer has already said what they want, so when the classifier's top
intent is one of those two and the message holds an explicit request cue, the request
decides. The defect stays in the text as the return's reason, and the ranking keeps the
classifier's scores, so a handler can still see how upset the customer is.

The cues are a small lexicon per language, checked with care for what is *not* a request:
questions about the policy ("how do returns work?", "退货政策是什么"), the status of a refund
already asked for ("where is my refund", "退款怎么还没到账"), and negations ("I don't want a
refund", "不想退货"). When in doubt the classifier's answer stands.
"""

from __future__ import annotations

import re
from dataclasses import replace

from intents.base import Prediction

RETURN = "request_return"
EXCHANGE = "request_exchange"
OVERRIDDEN = frozenset({"complaint", "order_status"})
"""Top intents an explicit request overrides: the mood (a defect, a delay) and the order number."""

_EN_WANT = (
    r"(?:want|wanna|need|would\s+like|'d\s+like|’d\s+like|\bd\s+like|wish|have\s+to|going\s+to|gonna"
    r"|plan\s+to|intend\s+to|would\s+rather|'d\s+rather|’d\s+rather|would\s+prefer|'d\s+prefer)"
)
_EN_OBJECT = r"(?:it|them|this|these|that|those|the\s+\w+|my\s+\w+|everything)"
_EN_CLAUSE = r"(?:^|[.,;:!?]\s*|\b(?:so|and|just|please|pls)\s+)"
_EN_RETURN = re.compile(
    rf"\b{_EN_WANT}\s+(?:to\s+)?(?:return(?!\s+to\b)|send\s+(?:\w+\s+){{0,3}}?back|get\s+(?:a\s+)?refund"
    rf"|get\s+my\s+money\s+back|(?:a\s+)?refund|my\s+money\s+back|a\s+return|start\s+a\s+return)\b"
    r"|\b(?:please\s+|pls\s+|can\s+you\s+|could\s+you\s+)?refund\s+(?:me|it|them|this|my|the|order)\b"
    r"|\b(?:i'?m|i\s+am|i’m)\s+(?:returning|sending\s+(?:\w+\s+){0,3}?back)\b"
    rf"|{_EN_CLAUSE}(?:return|send\s+back)\s+{_EN_OBJECT}\b"
    rf"|{_EN_CLAUSE}send\s+{_EN_OBJECT}\s+back\b"
    r"|\b(?:start|open|process)\s+(?:a|the|my)\s+return\b"
    r"|\bcan\s+i\s+(?:please\s+)?(?:return\s+(?:it|them|this|these)|send\s+(?:it|them|this|these)\s+back"
    r"|(?:get|have)\s+(?:a\s+)?refund|(?:get|have)\s+my\s+money\s+back)\b"
    r"|\b(?:refund|return)\s+(?:please|pls)\b",
    re.IGNORECASE,
)
# Not "I need to change my address" or "replace my card": those are about the order or the payment.
_EN_NOT_GOODS = r"(?!\s+(?:my\s+|the\s+)?(?:address|card|payment|email|e-mail|phone|number|delivery|shipping|password))"
_EN_EXCHANGE = re.compile(
    rf"\b{_EN_WANT}\s+(?:to\s+)?(?:exchange|swap|replace){_EN_NOT_GOODS}\b"
    rf"|\b{_EN_WANT}\s+(?:an?\s+)?(?:exchange|replacement|new\s+one|working\s+one|different\s+(?:size|colou?r))\b"
    rf"|{_EN_CLAUSE}(?:exchange|swap|replace){_EN_NOT_GOODS}\s+{_EN_OBJECT}\b"
    r"|\bcan\s+i\s+(?:please\s+)?(?:exchange|swap|replace)\s+(?:it|them|this|these)\b"
    r"|\bcan\s+i\s+(?:please\s+)?(?:get|have)\s+a\s+replacement\b"
    r"|\b(?:exchange|replacement)\s+(?:please|pls)\b",
    re.IGNORECASE,
)
# A negation just before the cue, within two words and not across a comma: "I don't really want a
# refund" is no request, "not happy, I want a refund" is one.
_EN_NEGATION = re.compile(
    r"\b(?:don'?t|don’t|do\s+not|doesn'?t|didn'?t|not|never|no|without|rather\s+not)(?:\s+[\w'’]+){0,2}\s*$",
    re.IGNORECASE,
)
_EN_NOT_A_REQUEST = re.compile(
    r"\bpolic(?:y|ies)\b"
    r"|\bhow\s+(?:do|does|can)\s+(?:returns?|refunds?|exchanges?)\s+work\b"
    r"|\bhow\s+long\s+(?:do|does|will)\s+(?:a\s+|the\s+|my\s+)?(?:refunds?|returns?)\b"
    r"|\bwhere(?:'s|’s|\s+is)\s+(?:my|the)\s+(?:refund|money|return)\b"
    r"|\b(?:status|progress)\s+of\s+(?:my|the)\s+(?:refund|return)\b"
    r"|\b(?:refund|return)\s+status\b"
    r"|\bwaiting\s+(?:for|on)\s+(?:my|the|a)\s+refund\b"
    r"|\b(?:my|the)\s+refund\s+(?:has|hasn'?t|has\s+not|didn'?t|did\s+not|never|still|is|was)\b"
    r"|\bwhen\s+(?:will|do|can)\s+i\s+(?:get|receive|see)\s+(?:my|the)\s+(?:refund|money)\b"
    r"|\b(?:has|did)\s+(?:my|the)\s+refund\b"
    r"|\b(?:already|have)\s+(?:returned|sent\s+(?:it|them)\s+back)\b",
    re.IGNORECASE,
)

_ZH_ASK = r"(?:想|要|想要|需要|申请|准备|打算|帮我|给我|麻烦|请)(?:办理|申请|提交|办|走)?(?:个|一下)?"
_ZH_RETURN = re.compile(
    rf"{_ZH_ASK}(?:退货|退款|退掉|退回|退了|退钱|退(?![出订休伍学票]))"
    r"|退货退款|仅退款|把钱退给我|钱退给我|退掉吧|退了吧|寄回去退"
    r"|(?:^|[，,。.!！？?；;\s])(?:退货|退款|退掉|退钱)(?:吧|了|啊|呀)?(?=$|[，,。.!！？?；;\s]|谢谢)"
)
# Not "我要换地址" or "换个快递": those are about the order, not the goods.
_ZH_NOT_GOODS = r"(?!(?:个|成|一个|一下)?(?:收货)?(?:地址|手机|电话|快递|物流|支付|付款|号码|邮箱|人|客服|账号|时间))"
_ZH_EXCHANGE = re.compile(
    rf"{_ZH_ASK}(?:换货|调换|换一个|换一件|换个|换成|换新|换){_ZH_NOT_GOODS}"
    r"|换货|调换|换一个|换一件|换个新的|换件新的|换新的"
)
_ZH_NEGATION = re.compile(r"(?:不|别|没|甭|无需|不必|不用|不要|不想)(?:想|要|用|打算|需要|申请|是)?$")
_ZH_PAST = re.compile(r"(?:已经|已|早就|之前|上次|刚才)(?:申请|办理|提交)?(?:了)?$")
_ZH_NOT_A_REQUEST = re.compile(
    r"政策|规则|条件|流程是|运费谁|谁出运费|能退吗|可以退吗|能不能退|可不可以退"
    r"|退款(?:呢|了吗|到账|到了吗|进度|还没|怎么还|什么时候|啥时候|多久|几天|审核|处理到)"
    r"|(?:什么时候|啥时候|多久|几天)(?:能|才|会)?(?:给我)?(?:退款|退钱|到账)"
    r"|(?:退货|退款|换货)申请(?:审核|通过|处理|进度|怎么样|到哪|有结果)"
)


def explicit_request(text: str) -> str | None:
    """``request_exchange`` or ``request_return`` when ``text`` asks for one in so many words, else ``None``.

    An exchange cue wins over a refund cue ("I don't want a refund, I want an exchange"; a
    negated cue never counts). Questions about the policy and about a refund's progress are
    not requests.
    """
    if _EN_NOT_A_REQUEST.search(text) or _ZH_NOT_A_REQUEST.search(text):
        return None
    if _asks(text, _EN_EXCHANGE, _EN_NEGATION) or _asks(text, _ZH_EXCHANGE, _ZH_NEGATION, _ZH_PAST):
        return EXCHANGE
    if _asks(text, _EN_RETURN, _EN_NEGATION) or _asks(text, _ZH_RETURN, _ZH_NEGATION, _ZH_PAST):
        return RETURN
    return None


def _asks(text: str, cue: re.Pattern[str], *vetoes: re.Pattern[str]) -> bool:
    """Whether a cue occurs that no veto (a negation, a past tense) right before it cancels."""
    for match in cue.finditer(text):
        before = text[max(0, match.start() - 30) : match.start()]
        if not any(veto.search(before) for veto in vetoes):
            return True
    return False


def apply_explicit_request(prediction: Prediction, text: str) -> Prediction:
    """``prediction`` with an explicit return or exchange request put first, when the
    classifier heard a complaint or an order-status question instead.

    The top-ranked intent decides whether to look (also below the out-of-scope threshold: a
    request in so many words is understood). The confidence and the ranking stay the
    classifier's, so the mood it heard is still there for a handler to weigh.
    """
    top = prediction.ranking[0][0] if prediction.ranking else prediction.intent
    if top not in OVERRIDDEN:
        return prediction
    wanted = explicit_request(text)
    if wanted is None:
        return prediction
    return replace(prediction, intent=wanted)
