"""The return/exchange form: order id, item, reason, refund or exchange, then a ticket.

Declared as data (the slot order below) with one validation step per slot; customers
may fill several slots in one message, ``cancel`` leaves from any step, and an order
that fails the shop's rules (unknown, someone else's, outside the return window) is
escalated to a human with the reason instead of being refused by a machine.

The order id comes from the shop's own :class:`~knowledge.order_ids.OrderIds` (the ids it
imported and their shape), never from a guess at digits, and is looked up as the shop spells
it. The item is matched against the order's lines by sku, by the catalog's product matcher,
then by rapidfuzz similarity ("the shoes" → "Ridge Trail Running Shoes").
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

from rapidfuzz import fuzz, utils

from common.messages import Button
from handlers.complaints import strong_wording
from handlers.context import Turn
from handlers.handoff import escalate, sla_due
from handlers.order_access import contact_matches, link, owns
from intents.base import Prediction
from knowledge.bundle import ShopKnowledge
from knowledge.products import ProductMatcher
from knowledge.shop import Catalog, Product
from storage.models import Order, Priority, TicketKind

FORM = "returns"
SLOTS = ("order_id", "contact", "item", "reason", "resolution", "wanted", "confirm")
REFUND_WORDS = ("refund", "money back", "reimburse", "退款", "退钱", "退货")
EXCHANGE_WORDS = ("exchange", "swap", "replace", "another size", "different size", "换")
REASON_CUE = re.compile(
    r"(?:\bbecause\b|\bsince\b|\bas\b|\bit'?s\b|\bit is\b|\bthey'?re\b|因为|由于)\s*(.+)", re.I | re.S
)
# A one-shot request often gives its reason as a clause of its own after the request
# ("… from order #100234, they crackle", "我要退货，订单号…的精华液，用了过敏").
CLAUSE = re.compile(r"[^,，;；.。!！?？\n]+")
REQUEST_WORDS = re.compile(r"\breturn|\bsend\b.*\bback\b|\brefund|\bexchange|\bswap|\breplace|退|换", re.I)
COURTESY = re.compile(
    r"^(?:please|pls|thanks?(?: you)?(?: (?:so much|a lot|very much))?|thank you|cheers|hi|hello|hey|"
    r"谢谢(?:你|您)?|多谢|麻烦(?:了|你了|您了)?|请|你好|您好)$",
    re.I,
)
RESOLUTIONS = ("refund", "exchange")
REASON_CODES = ("too_small", "too_big", "damaged", "not_as_described", "changed_mind")
MAX_ORDER_ATTEMPTS = 2
FREE_TEXT_SLOTS = {"reason": 500, "wanted": 200, "item": 200}  # slot -> max length
# rapidfuzz WRatio (0-100) an order line's name needs to count as the item the customer named,
# and how far ahead of the next line it must be ("running shoes" with two pairs in the order:
# neither, the customer picks with the buttons).
ITEM_MIN_SCORE = 70.0
ITEM_MARGIN = 10.0
STRONG = "strong wording"


def _resolution_from_text(text: str) -> str | None:
    lowered = text.lower()
    if any(w in lowered for w in EXCHANGE_WORDS):
        return "exchange"
    if any(w in lowered for w in REFUND_WORDS):
        return "refund"
    return None


def _order_lines(order: Order, catalog: Catalog) -> tuple[Catalog, dict[str, dict[str, Any]]] | None:
    """The order's lines as a small catalog (the shop's product where the sku is the catalog's,
    with its aliases and other languages), keyed back to the lines by sku."""
    products: list[Product] = []
    lines: dict[str, dict[str, Any]] = {}
    for number, item in enumerate(order.items, start=1):
        sku = str(item.get("sku") or f"line-{number}")
        name = str(item.get("name") or "").strip()
        product = catalog.find_by_value(sku)
        if sku.casefold() in {key.casefold() for key in lines} or (product is None and not name):
            continue
        lines[sku] = item
        products.append(product or Product(sku=sku, name={"en": name}, price=Decimal(0), stock=0))
    try:
        return (Catalog(currency=catalog.currency, products=products), lines) if products else None
    except ValueError:  # two lines of one name: the customer chooses with the buttons
        return None


def _item_named(order: Order, text: str, shop: ShopKnowledge, language: str) -> dict[str, Any] | None:
    """The one order line ``text`` names ("the shoes" → "Ridge Trail Running Shoes"), found by
    the shop's product matcher over the order's lines; None when it names none or several."""
    found = _order_lines(order, shop.catalog)
    if found is None:
        return None
    catalog, lines = found
    for mention in ProductMatcher(catalog).mentions(text, language):
        if not mention.ambiguous:
            return lines[mention.candidates[0][0].sku]
    return None


def _item_in_order(order: Order, wanted: str, shop: ShopKnowledge, language: str) -> dict[str, Any] | None:
    """The order line the customer means: its sku or name, the one line the words name (partial
    names, typos, the catalog's aliases and other languages), else the one line whose name
    is clearly the most similar (rapidfuzz)."""
    folded = wanted.strip().casefold()
    for item in order.items:
        if folded in (str(item.get("sku", "")).casefold(), str(item.get("name", "")).casefold()):
            return item
    named = _item_named(order, wanted, shop, language)
    if named is not None:
        return named
    if len(utils.default_process(wanted)) < 3:
        return None
    scored = sorted(
        ((fuzz.WRatio(wanted, str(item.get("name", "")), processor=utils.default_process), i)
         for i, item in enumerate(order.items)),
        reverse=True,
    )
    if not scored or scored[0][0] < ITEM_MIN_SCORE:
        return None
    if len(scored) > 1 and scored[1][0] > scored[0][0] - ITEM_MARGIN:
        return None
    return order.items[scored[0][1]]


def _item_value(item: dict[str, Any]) -> str:
    return str(item.get("sku") or item.get("name"))


def _reason_clause(text: str, pred: Prediction) -> str | None:
    """A clause after the request that names neither the order nor a product, nor only says
    thanks: the customer's reason, in their words."""
    spans = [(e.start, e.end) for e in pred.entities if e.type in ("order_id", "product")]
    requested = False
    for match in CLAUSE.finditer(text):
        clause = match.group().strip()
        if REQUEST_WORDS.search(clause):
            requested = True
            continue
        if not requested or any(a < match.end() and match.start() < b for a, b in spans):
            continue
        cjk = sum("\u4e00" <= ch <= "\u9fff" for ch in clause)
        if COURTESY.match(clause) or (len(clause.split()) < 2 and cjk < 2):
            continue
        return clause
    return None


def _item_label(item: dict[str, Any]) -> str:
    size = f" ({item['size']})" if item.get("size") else ""
    return f"{item.get('name', item.get('sku'))}{size}"


class ReturnsForm:
    """One turn of the form; a new instance per turn keeps the steps free of hidden state."""

    def __init__(self, turn: Turn) -> None:
        self.turn = turn
        self.slots: dict[str, Any] = turn.state.slots
        self.order: Order | None = None

    # -- filling ---------------------------------------------------------------------
    def _absorb(self, starting: bool) -> None:
        """Take every slot value this message offers, whatever slot was asked."""
        pred, text, requested = self.turn.prediction, self.turn.msg.text, self.turn.state.requested_slot
        for slot in ("order_id", "item", "reason", "resolution", "wanted"):
            value = pred.entity(slot)
            # A button payload can be typed by hand: an unknown resolution fills nothing, so
            # the question is asked again, and free text keeps its length limit.
            if value and (slot != "resolution" or value in RESOLUTIONS):
                self.slots[slot] = value[: FREE_TEXT_SLOTS.get(slot, 100)]
        if pred.entity("order_id") is None and requested == "order_id":
            # Asked for the order: a bare id-like answer counts, as the shop's OrderIds reads it.
            found = self.turn.services.shop.order_ids.find(text, expect=True)
            if found:
                self.slots["order_id"] = found[0].value
        if strong_wording(text) and STRONG not in self.slots.get("signals", []):
            self.slots["signals"] = [*self.slots.get("signals", []), STRONG]
        for kind in ("email", "phone"):
            value = pred.entity(kind)
            if value:
                self.slots["contact"] = value
        if pred.entity("product") and "item" not in self.slots:
            self.slots["item"] = pred.entity("product")
        resolution = _resolution_from_text(text)
        if resolution and ("resolution" not in self.slots or requested == "resolution"):
            self.slots["resolution"] = resolution
        if starting and "resolution" not in self.slots and pred.intent == "request_exchange":
            self.slots["resolution"] = "exchange"
        wanted = [v for v in (pred.entity("size"), pred.entity("colour")) if v]
        if wanted and (requested == "wanted" or (starting and self.slots.get("resolution") == "exchange")):
            self.slots["wanted"] = " ".join(wanted)
        typed = text.strip() if not self.turn.msg.payload else ""
        if typed and requested in FREE_TEXT_SLOTS and requested not in self._filled_now(pred):
            # The answer to a free-text question is the whole message ("it's too small"),
            # even when it happens to contain an entity such as a size.
            self.slots[requested] = typed[: FREE_TEXT_SLOTS[requested]]
        if starting and "reason" not in self.slots:
            cue = REASON_CUE.search(text)
            if cue and len(cue.group(1).strip()) > 2:
                self.slots["reason"] = cue.group(1).strip()[:500]
            else:
                clause = _reason_clause(text, pred)
                if clause:
                    self.slots["reason"] = clause[:500]

    @staticmethod
    def _filled_now(pred: Prediction) -> set[str]:
        """Slots this message fills through entities (which beat the free-text reading)."""
        filled = {e.type for e in pred.entities}
        if "product" in filled:
            filled.add("item")
        if "size" in filled or "colour" in filled:
            filled.add("wanted")
        return filled - {"reason"} if pred.intent != "choose" else filled

    # -- validation ------------------------------------------------------------------
    async def _validate_order(self) -> tuple[str, dict[str, Any]] | None:
        """None when fine so far; else ``("re-ask", {})`` or an escalation reason template."""
        turn = self.turn
        order_id = turn.services.shop.order_ids.canonical(str(self.slots["order_id"]))
        self.slots["order_id"] = order_id
        order = await turn.tx.get_order(order_id)
        if order is None:
            turn.state.form_failures += 1
            del self.slots["order_id"]
            if turn.state.form_failures >= MAX_ORDER_ATTEMPTS:
                return "why_order_not_found", {"order_id": order_id, "attempts": MAX_ORDER_ATTEMPTS}
            turn.say("return_order_not_found", order_id=order_id)
            return "re-ask", {}
        self.order = order
        if not owns(turn.customer, order):
            contact = self.slots.get("contact")
            if contact is None:
                return None  # the contact slot will be asked next
            if not contact_matches(order, str(contact)):
                return "why_contact_mismatch", {"order_id": order_id}
            link(order, turn.customer, str(contact))
        if order.delivered_at is None:
            return "why_not_delivered", {"order_id": order_id, "status": order.status}
        window = turn.services.policy.return_window_days
        age = turn.now() - order.delivered_at
        if age > timedelta(days=window):
            # Days begun, not whole days: 30 days and 22 hours is past a 30-day window, and
            # "delivered 30 days ago, outside our 30-day window" would read as a contradiction.
            days = math.ceil(age / timedelta(days=1))
            return "why_outside_window", {"order_id": order_id, "days": days, "window": window}
        if len(order.items) == 1 and "item" not in self.slots:
            self.slots["item"] = _item_value(order.items[0])
        return None

    def _validate_item(self) -> None:
        """Match the item to a line of the order; failing that, a line this message names
        ("send back the shoes from order KX-20417": a catalog product of another name may
        have been read first, the order's own line wins)."""
        turn = self.turn
        if self.order is None:
            return
        shop, typed = turn.services.shop, turn.msg.text if not turn.msg.payload else ""
        wanted = self.slots.get("item")
        item = _item_in_order(self.order, str(wanted), shop, turn.lang) if wanted is not None else None
        if item is None and typed:
            item = _item_named(self.order, typed, shop, turn.lang)
        if item is not None:
            self.slots["item"] = _item_value(item)
            self.slots["item_name"] = _item_label(item)
        elif wanted is not None:
            del self.slots["item"]
            product = shop.catalog.find_by_value(str(wanted))
            shown = (product.name.get(turn.lang) or product.name["en"]) if product is not None else wanted
            turn.say("return_item_not_in_order", item=shown)

    def _needs_contact(self) -> bool:
        return self.order is not None and not owns(self.turn.customer, self.order)

    # -- asking ----------------------------------------------------------------------
    def _next_slot(self) -> str | None:
        for slot in SLOTS:
            if slot == "contact" and not self._needs_contact():
                continue
            if slot == "wanted" and self.slots.get("resolution") != "exchange":
                continue
            if slot not in self.slots:
                return slot
        return None

    def _ask(self, slot: str) -> None:
        turn = self.turn
        turn.state.requested_slot = slot
        buttons: tuple[Button, ...] = ()
        if slot == "item" and self.order is not None:
            buttons = tuple(
                Button(_item_label(i), f'/choose{{"item": "{i.get("sku") or i.get("name")}"}}')
                for i in self.order.items
            )
        elif slot == "reason":
            buttons = tuple(turn.button(f"reason_{c}", f'/choose{{"reason": "{c}"}}') for c in REASON_CODES)
        elif slot == "resolution":
            buttons = (
                turn.button("button_refund", '/choose{"resolution": "refund"}'),
                turn.button("button_exchange", '/choose{"resolution": "exchange"}'),
            )
        elif slot == "confirm":
            turn.say(
                "return_confirm",
                buttons=(turn.button("button_yes", "/affirm"), turn.button("button_no", "/deny")),
                summary=self._summary(),
            )
            return
        if slot == "order_id":
            example = turn.services.shop.order_ids.example()
            turn.say("ask_order_id" if example else "ask_order_id_plain", example=example)
            return
        turn.say(f"ask_{slot}", buttons=buttons)

    def _summary(self) -> str:
        turn = self.turn
        reason = self.slots.get("reason", "")
        if reason in REASON_CODES:
            reason = turn.t(f"reason_{reason}")
        lines = [
            turn.t("field_order_id", value=self.slots.get("order_id")),
            turn.t("field_item", value=self.slots.get("item_name", self.slots.get("item"))),
            turn.t("field_reason", value=reason),
            turn.t("field_resolution", value=turn.t(f"button_{self.slots.get('resolution', 'refund')}")),
        ]
        if self.slots.get("resolution") == "exchange":
            lines.append(turn.t("field_wanted", value=self.slots.get("wanted")))
        return "\n".join(lines)

    def _ticket_fields(self) -> dict[str, Any]:
        return {k: v for k, v in self.slots.items() if k not in ("confirm",)}

    def _kind(self) -> TicketKind:
        return TicketKind.EXCHANGE if self.slots.get("resolution") == "exchange" else TicketKind.RETURN

    def _priority(self) -> Priority:
        """A return stays a return however angry the words; they raise its priority."""
        return Priority.HIGH if self.slots.get("signals") else Priority.NORMAL

    # -- the turn --------------------------------------------------------------------
    async def run(self, starting: bool) -> None:
        turn = self.turn
        requested = turn.state.requested_slot
        if requested == "confirm" and not starting:
            if turn.prediction.intent == "affirm":
                await self._open_ticket()
                return
            if turn.prediction.intent == "deny":
                turn.state.end_form()
                turn.say("return_discarded")
                return
        before = dict(self.slots)
        self._absorb(starting)
        if "order_id" in self.slots:
            problem = await self._validate_order()
            if problem is not None and problem[0] == "re-ask":
                self._ask("order_id")
                return
            if problem is not None:
                await self._escalate(*problem)
                return
        self._validate_item()
        slot = self._next_slot() or "confirm"
        if not starting and self.slots == before:
            turn.state.form_stalls += 1
            if turn.state.form_stalls >= 2:
                turn.say(
                    "form_stuck",
                    buttons=(turn.button("button_cancel", "/cancel"), turn.button("button_human", "/human_handoff")),
                )
        else:
            turn.state.form_stalls = 0
        self._ask(slot)

    async def _open_ticket(self) -> None:
        turn = self.turn
        kind = self._kind()
        priority = self._priority()
        first_due, resolution_due = sla_due(turn.services.policy, priority, turn.now())
        subject = turn.services.responses.text(
            "en", f"subject_{kind.value}", item=self.slots.get("item_name", self.slots.get("item"))
        )
        ticket = await turn.tx.open_ticket(
            turn.customer,
            kind=kind,
            subject=subject,
            channel=turn.msg.channel,
            actor="bot",
            priority=priority,
            order_id=self.slots.get("order_id"),
            fields=self._ticket_fields(),
            first_response_due=first_due,
            resolution_due=resolution_due,
        )
        turn.ticket_id = ticket.id
        turn.state.end_form()
        # The shop's own SLA says when, not a promise written for one shop (a return label…).
        turn.say(f"{kind.value}_opened", number=ticket.number, **turn.services.policy.calendar.due_params(first_due))

    async def _escalate(self, why: str, params: dict[str, Any]) -> None:
        """Hand the request to a human; the ticket keeps the reason in English for agents."""
        turn = self.turn
        kind = self._kind()
        reason = turn.services.responses.text("en", why, **params)
        ticket = await escalate(
            turn,
            kind=kind,
            subject=turn.services.responses.text("en", f"subject_{kind.value}", item=self.slots.get("item", "?")),
            reason=reason,
            priority=self._priority(),
            order_id=self.slots.get("order_id"),
            fields=self._ticket_fields(),
        )
        turn.state.end_form()
        turn.say("return_escalated", number=ticket.number, reason=turn.t(why, **params))


async def submit_return(turn: Turn, filled: dict[str, Any]) -> str | None:
    """Open the return/exchange from slots another dialogue engine collected (a Rasa form).

    The same rules as this form: the order must exist, be the customer's (or match the
    contact given), be delivered and inside the return window, and hold the item; a
    policy failure escalates with the reason. There is no confirmation step — the caller
    confirmed. Returns the slot still missing or rejected (its question or the reason is
    in ``turn.replies``), or None when a ticket was opened or the request escalated.
    """
    # Unknown order numbers count across calls, as in the form: the second one escalates.
    failures = turn.state.form_failures if turn.state.form == FORM else 0
    turn.state.end_form()
    turn.state.form, turn.state.form_failures = FORM, failures
    form = ReturnsForm(turn)
    for slot in ("order_id", "contact", "item", "reason", "wanted"):
        value = filled.get(slot)
        if value not in (None, ""):
            form.slots[slot] = str(value)[: FREE_TEXT_SLOTS.get(slot, 200)]
    if strong_wording(turn.msg.text):
        form.slots["signals"] = [STRONG]
    resolution = str(filled.get("resolution") or "")
    if resolution:
        form.slots["resolution"] = resolution if resolution in ("refund", "exchange") else (
            _resolution_from_text(resolution) or "refund"
        )
    if "order_id" in form.slots:
        problem = await form._validate_order()
        if problem is not None and problem[0] == "re-ask":
            turn.state.requested_slot = "order_id"
            return "order_id"
        if problem is not None:
            await form._escalate(*problem)
            return None
        form._validate_item()
    missing = form._next_slot()
    if missing is not None and missing != "confirm":
        form._ask(missing)
        return missing
    await form._open_ticket()
    return None


SLOT_ENTITIES = {"order_id": ("order_id",), "contact": ("email", "phone"), "item": ("product",)}
"""Entity types that answer the question the form asked."""


def answers_requested_slot(turn: Turn) -> bool:
    """Whether the message holds a value for the slot the form just asked for.

    Such a message is the answer, whatever intent the classifier guessed: a bare e-mail
    address after "which e-mail is on the order?" can read as a request for a person.
    """
    wanted = SLOT_ENTITIES.get(turn.state.requested_slot or "", ())
    return any(turn.prediction.entity(kind) for kind in wanted)


async def start_return(turn: Turn) -> None:
    turn.state.end_form()
    turn.state.form = FORM
    await ReturnsForm(turn).run(starting=True)


async def continue_return(turn: Turn) -> None:
    await ReturnsForm(turn).run(starting=False)


ROUTES = {"request_return": start_return, "request_exchange": start_return}
