"""The one path every customer message takes, whatever its channel.

in-flight hint → customer → state → language → the customer's rate → classify → route
(``handlers/router.py``) → store the inbound message and the replies → commit → save state →
hand the replies back to the adapter. All writes of a turn share one transaction; a handler crash still keeps the
customer's message and answers with an apology. The Rasa action server runs the same turn
with the understanding supplied (:meth:`Pipeline.run_turn`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import unicodedata
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from common.errors import DuplicateDelivery, StoreUnavailable
from common.messages import Incoming, Outgoing, buttons_payload, stored_buttons
from handlers.context import Reply, Services, Turn
from handlers.conversation import ConversationState
from handlers.router import ROUTED, Handler, Router, build_routes
from intents.base import OUT_OF_SCOPE, Entity, IntentClassifier, Prediction
from intents.explicit import apply_explicit_request
from intents.language import detect_language
from storage import missed
from storage.customer_limits import CustomerLimiter, Pace
from storage.delivery_failures import fail_delivery
from storage.models import Author, Customer, DeliveryStatus, Direction, MissedReason, Owner, utcnow
from storage.state import StateKey, StateStore
from storage.tickets import TicketSession, TicketStore

log = logging.getLogger("deskbot.pipeline")

PAYLOAD = re.compile(r"^/(?P<intent>[a-z_]+)(?P<json>\{.*\})?$", re.S)
# A payload's intent is one deskbot knows (its routes, the forms' "choose"), at most as long
# as the stored column (VARCHAR(64)); anything else is out of scope, not a new label.
MAX_INTENT_CHARS = 64
MAX_ENTITY_CHARS = 500
PAYLOAD_INTENTS = frozenset(build_routes()) | {"choose", OUT_OF_SCOPE}
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")
MAX_STORED_CHARS = 64_000
MAX_CLASSIFIED_CHARS = 2_000
# E-mails, order/ticket numbers and URLs say nothing about the customer's language.
NOT_LANGUAGE = re.compile(r"\S+@\S+|https?://\S+|\b[A-Za-z]{0,3}-?\d[\w-]*\b")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    state_ttl: float = 24 * 3600
    # The in-flight hint on a delivery key: long enough for any turn, short enough that a
    # copy whose process died holds its retry up for seconds only.
    inflight_ttl: float = 10.0
    # How long a redelivery waits for a copy in flight before answering "retry shortly".
    inflight_wait: float = 5.0
    default_language: str = "en"
    languages: tuple[str, ...] = ("en", "zh")
    # An answered message classified below this confidence is still listed as missed (0: never).
    unsure_below: float = 0.0


def clean_text(text: str) -> str:
    """Strip control characters and normalise, so storage and classifier see clean text."""
    text = unicodedata.normalize("NFC", text)
    return CONTROL.sub("", text).strip()


def parse_payload(payload: str) -> Prediction | None:
    """Rasa-style button payloads: ``/intent`` or ``/intent{"slot": "value"}``.

    Anyone can type a payload, so it is read as untrusted input: an unknown or overlong
    intent is ``out_of_scope``; a slot keeps only a plain value (string, number, boolean)
    that is valid text, without control characters, cut to ``MAX_ENTITY_CHARS``.
    """
    match = PAYLOAD.match(payload.strip())
    if match is None:
        return None
    entities: list[Entity] = []
    if match.group("json"):
        try:
            data = json.loads(match.group("json"))
        except (ValueError, RecursionError):  # malformed, or an integer past 4,300 digits
            return None
        if not isinstance(data, dict):
            return None
        for key, value in data.items():
            slot, text = _payload_text(key), _payload_text(value)
            if slot and text is not None and len(slot) <= MAX_INTENT_CHARS:
                entities.append(Entity(slot, text, 0, 0, text))
    intent = match.group("intent")
    if len(intent) > MAX_INTENT_CHARS or intent not in PAYLOAD_INTENTS:
        intent = OUT_OF_SCOPE
    return Prediction(intent=intent, confidence=1.0, entities=tuple(entities))


def _payload_text(value: object) -> str | None:
    """A payload value as clean text; None for null, arrays, objects and invalid Unicode."""
    if value is None or isinstance(value, (dict, list)):
        return None
    text = clean_text(str(value))[:MAX_ENTITY_CHARS]
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800"): no database can store it
        return None
    return text


INFLIGHT_POLL_SECONDS = 0.05


class DeliveryInFlight(Exception):
    """Another copy of this delivery is being processed right now: retry shortly (HTTP 503)."""


class _ChatLocks:
    """One lock per conversation so a customer's messages are handled in order."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._locks: OrderedDict[tuple[str, str], asyncio.Lock] = OrderedDict()
        self._capacity = capacity

    def get(self, key: tuple[str, str]) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
            while len(self._locks) > self._capacity:
                old_key, old = next(iter(self._locks.items()))
                if old.locked():
                    break
                del self._locks[old_key]
        else:
            self._locks.move_to_end(key)
        return lock


class TurnObserver:
    """What the pipeline tells about its turns, for monitoring; this base tells nobody.

    ``bot/metrics.py`` implements it for Prometheus, so the core never imports a metrics
    library. Called on the event loop in the middle of a turn: an implementation must be
    quick and must not raise.
    """

    def message_in(self, channel: str) -> None:
        """A customer's message was stored by a turn (once per delivery: a redelivery is not)."""

    def answered(self, channel: str, replies: int) -> None:
        """``replies`` went back in the answer of a pull channel (REST, web chat); a push
        channel's replies are the outbox's to count when they are delivered."""

    def turn_done(self, channel: str, seconds: float) -> None:
        """A turn ended (answered, replayed, apologised for, or failed by an outage): its
        duration from the delivery's arrival at the pipeline, the chat's lock wait included."""

    def classified(self, seconds: float) -> None:
        """The intent classifier answered one message in ``seconds``."""


class Pipeline:
    def __init__(
        self,
        tickets: TicketStore,
        state: StateStore,
        classifier: IntentClassifier,
        services: Services,
        settings: PipelineSettings | None = None,
        before_turn: Callable[[], Awaitable[object]] | None = None,
        observer: TurnObserver | None = None,
        limiter: CustomerLimiter | None = None,
    ) -> None:
        """``before_turn`` runs before each turn's transaction (the shop's order ids follow the store);
        ``observer`` hears the turns' counts and timings (metrics); ``limiter`` holds each
        customer to a rate (None: no limit; see :meth:`_pace`)."""
        self.tickets = tickets
        self.state = state
        self.classifier = classifier
        self.services = services
        self.settings = settings or PipelineSettings()
        self.router = Router()
        self._locks = _ChatLocks()
        self.before_turn = before_turn
        self.observer = observer or TurnObserver()
        self.limiter = limiter

    @property
    def routes(self) -> dict[str, Handler]:
        """Intent → handler: the router's."""
        return self.router.routes

    async def handle(self, msg: Incoming) -> list[Outgoing]:
        """Process one message; returns the replies the adapter must deliver (maybe none).

        The database's unique ``(channel, delivery_key)`` is the one check for duplicates:
        the turn inserting a delivery already stored rolls back (``DuplicateDelivery``), and a
        channel that answers in its response (``replies_in_answer``) gets the stored replies
        again, so a client retrying after a lost answer or a crash gets what the first copy
        got. The state store's claim is only an in-flight hint (seconds, released after the
        turn) that keeps two concurrent copies from both running; a copy that finds one in
        flight waits for it briefly and raises :class:`DeliveryInFlight` if it is still running.
        """
        if msg.delivery_key is None:
            return await self._handle_claimed(msg)
        deadline = time.monotonic() + self.settings.inflight_wait
        while not await self.state.claim_delivery(msg.channel, msg.delivery_key, self.settings.inflight_ttl):
            if time.monotonic() >= deadline:
                raise DeliveryInFlight(f"delivery {msg.channel}:{msg.delivery_key} is still being processed")
            await asyncio.sleep(INFLIGHT_POLL_SECONDS)
        try:
            return await self._handle_claimed(msg)
        finally:
            try:
                await self.state.release_delivery(msg.channel, msg.delivery_key)
            except StoreUnavailable as exc:  # Redis is down: said without a traceback
                log.warning("in-flight hint not released: %s", exc, extra={"channel": msg.channel})
            except Exception:  # noqa: BLE001 - the turn is done; the hint expires by itself
                log.warning("in-flight hint not released", extra={"channel": msg.channel}, exc_info=True)

    async def _handle_claimed(self, msg: Incoming) -> list[Outgoing]:
        started = time.perf_counter()
        try:
            return await self._locked_turn(msg)
        finally:
            self.observer.turn_done(msg.channel, time.perf_counter() - started)

    async def _locked_turn(self, msg: Incoming) -> list[Outgoing]:
        started = time.perf_counter()
        async with self._locks.get((msg.channel, msg.user_id)):
            try:
                out = await self._turn(msg, self._route)
            except DuplicateDelivery:
                stored = await self._stored_answer(msg)
                if stored is not None:
                    # An earlier copy stored this delivery (a retry after a lost answer, or
                    # another process whose hint had expired or whose state store is its own).
                    return stored
                log.exception("turn failed on a constraint", extra={"channel": msg.channel, "chat": msg.chat_id})
                return await self._apologise(msg)
            except StoreUnavailable:
                # An outage: nothing was stored, so the channel must say "retry" (503, or no
                # confirmation to Telegram); an apology would confirm a message that is lost.
                raise
            except Exception:
                log.exception("turn failed", extra={"channel": msg.channel, "chat": msg.chat_id})
                return await self._apologise(msg)
        log.debug("turn done", extra={"channel": msg.channel, "ms": round((time.perf_counter() - started) * 1000, 2)})
        return out

    async def run_turn(self, msg: Incoming, prediction: Prediction, handler: Handler) -> list[Outgoing]:
        """One turn whose understanding is supplied: a Rasa assistant classified the message
        and chose the action, so ``prediction`` is taken as it is and ``handler`` runs in place
        of the router. Returns the turn's replies.

        Everything else is :meth:`handle`'s turn: the customer, the conversation state and its
        language, the inbound message and the replies stored in one transaction, the state
        saved. Unlike :meth:`handle`, a failure is the caller's to answer: the transaction
        rolled back and nothing of the turn is stored (a duplicate delivery key raises
        ``DuplicateDelivery``). A message without text, payload or files (an action the
        assistant ran on its own) stores no inbound row: the customer said nothing.
        """
        async with self._locks.get((msg.channel, msg.user_id)):
            return await self._turn(msg, handler, prediction)

    async def _stored_answer(self, msg: Incoming) -> list[Outgoing] | None:
        """None when the delivery is not stored yet; else what to answer for the redelivery.

        A channel answering in its response gets the stored replies again; a push channel gets
        nothing (its replies are the outbox's to deliver, once).
        """
        if msg.delivery_key is None:
            return None
        async with self.tickets.session() as tx:
            rows = await tx.delivery_replies(msg.channel, msg.delivery_key)
        if rows is None:
            return None
        log.info("duplicate delivery", extra={"channel": msg.channel, "delivery": msg.delivery_key})
        if not msg.replies_in_answer:
            return []
        return [
            Outgoing(msg.channel, row.chat_id, row.text, stored_buttons(row.payload), message_id=row.id) for row in rows
        ]

    # -- the turn --------------------------------------------------------------------
    async def _turn(self, msg: Incoming, route: Handler, supplied: Prediction | None = None) -> list[Outgoing]:
        """One turn: ``route`` answers it (the router, or the handler of ``run_turn``);
        ``supplied`` is the understanding when the message was classified elsewhere."""
        if self.before_turn is not None:
            await self.before_turn()
        text = clean_text(msg.text)
        async with self.tickets.session() as tx:
            customer, _new = await tx.resolve_customer(
                msg.channel, msg.user_id, msg.chat_id, msg.display_name, self._hint(msg.language)
            )
            key = StateKey(customer.id)
            state = ConversationState.from_dict(await self.state.get(key), customer.language)
            self._update_language(state, customer, text, msg.language)
            pace = await self._pace(msg, customer) if supplied is None else Pace.ANSWER
            prediction: Prediction | None = None  # None: over the rate, not understood
            if pace is Pace.ANSWER:
                prediction, stored, out = await self._answer(tx, msg, route, supplied, customer, state, text)
            else:
                stored, out = True, await self._store_unanswered(tx, customer, msg, text, state.language, pace)
        self._committed(msg, stored, out)
        await self.state.set(key, state.to_dict(), self.settings.state_ttl)
        if prediction is None:
            log.info("customer over the rate", extra={"channel": msg.channel, "customer": customer.id,
                                                      "pace": pace.value, "replies": len(out)})
            return out
        log.info(
            "message handled",
            extra={
                "channel": msg.channel,
                "customer": customer.id,
                "intent": prediction.intent,
                "confidence": round(prediction.confidence, 3),
                "owner": customer.owner.value,
                "replies": len(out),
            },
        )
        return out

    async def _answer(
        self, tx: TicketSession, msg: Incoming, route: Handler, supplied: Prediction | None, customer: Customer,
        state: ConversationState, text: str,
    ) -> tuple[Prediction, bool, list[Outgoing]]:
        """Understand and answer the message in the turn's transaction: (the understanding,
        whether an inbound row was stored, the replies)."""
        if supplied is None:
            prediction = await self._understand(msg, text, state.language)
        else:
            prediction = replace(supplied, language=state.language)
        # Handlers see the cleaned text (no control characters: PostgreSQL refuses NUL).
        turn = Turn(replace(msg, text=text), customer, state, prediction, tx, self.services)
        await route(turn)
        # The inbound message and the replies go in together at the end: one statement,
        # and a duplicate delivery key rolls back the whole turn.
        inbound: dict[str, object] | None = None
        if supplied is None or text or msg.payload or msg.attachments:
            inbound = self._inbound_row(msg, customer, text, turn.ticket_id)
            inbound |= {"intent": prediction.intent, "confidence": round(prediction.confidence, 4)}
        inbound_id, out = await self._store_replies(tx, customer, msg, turn.replies, inbound)
        if turn.missed is not None and text and inbound_id is not None:
            await missed.record(
                tx, message_id=inbound_id, customer_id=customer.id, reason=MissedReason(turn.missed),
                language=state.language, intent=prediction.intent, confidence=round(prediction.confidence, 4),
            )
        return prediction, inbound is not None, out

    # -- the customer's rate ---------------------------------------------------------
    async def _pace(self, msg: Incoming, customer: Customer) -> Pace:
        """Whether the bot answers this message, by the customer's rate (``limits.customer``).

        Where it sits in the turn, and why:

        - after the customer and their state are loaded: the limit is per customer (their
          id, whatever the channel), and the polite reply speaks the conversation's language;
        - before the classifier and the handlers: a flood is what the limit is for, and the
          classifier is the turn's costliest step; a form in progress does not advance on a
          message the bot does not answer;
        - inside the turn's transaction, like every message: the message over the rate is
          still stored (the agents see it; nothing is lost) in the same statement as always,
          so the database's unique delivery key stays the one dedupe. The limiter is the only
          step before that insert with an effect outside the transaction, so it keys each
          count by the delivery: a redelivery is not counted twice, and is answered as the
          first copy was (``Pace.ANSWER`` → its turn rolls back on the duplicate key and the
          stored replies are replayed). A copy whose first run died before its commit is
          answered as usual: failing open there loses nothing.

        Only while the bot owns the conversation: a conversation queued for or owned by an
        agent is relayed to the ticket as before and not counted. The polite reply would be
        the bot talking over the agent, and the agent must see every message; the human on
        the other side decides what a flood deserves. Nor with the understanding supplied
        (:meth:`run_turn`): a Rasa assistant decides its own answers.
        """
        if self.limiter is None or (customer.owner is not Owner.BOT and customer.handoff_ticket_id is not None):
            return Pace.ANSWER
        message = f"{msg.channel}:{msg.delivery_key}" if msg.delivery_key is not None else f"anon:{uuid.uuid4().hex}"
        return await self.limiter.check(customer.id, message)

    async def _store_unanswered(
        self, tx: TicketSession, customer: Customer, msg: Incoming, text: str, language: str, pace: Pace
    ) -> list[Outgoing]:
        """A message over the customer's rate: stored as received and marked ``rate_limited``
        in its payload (the agents see why the bot said nothing), with the polite reply only
        when it is the window's first (``Pace.NOTICE``)."""
        inbound = self._inbound_row(msg, customer, text, None)
        inbound["payload"] = {**self._inbound_payload(msg), "rate_limited": True}
        replies = [Reply(self.services.responses.text(language, "rate_limited"))] if pace is Pace.NOTICE else []
        _, out = await self._store_replies(tx, customer, msg, replies, inbound)
        return out

    async def _route(self, turn: Turn) -> None:
        """The router answers the turn; an intent's answer below ``unsure_below`` is still
        listed as missed."""
        handled = await self.router.dispatch(turn)
        if handled.name == ROUTED and turn.missed is None and turn.prediction.confidence < self.settings.unsure_below:
            turn.missed = "low_confidence"

    # -- helpers ---------------------------------------------------------------------
    async def _understand(self, msg: Incoming, text: str, language: str) -> Prediction:
        if msg.payload:
            parsed = parse_payload(msg.payload)
            if parsed is not None:
                return Prediction(parsed.intent, 1.0, parsed.ranking, parsed.entities, language)
            text = msg.payload if not text else text
        if not text:
            return Prediction(OUT_OF_SCOPE, 0.0, language=language)
        text = text[:MAX_CLASSIFIED_CHARS]
        # The shop's entities first (its order ids, its products), so the intent is decided on
        # placeholders, never on one shop's nouns or id format.
        known = self.services.shop.entities(text, language)
        started = time.perf_counter()
        predicted = await self.classifier.predict(text, language, known)
        self.observer.classified(time.perf_counter() - started)
        return apply_explicit_request(predicted, text)

    def _hint(self, hint: str | None) -> str | None:
        if not hint:
            return None
        short = hint.split("-")[0].split("_")[0].lower()
        return short if short in self.settings.languages else None

    def language_of(self, text: str, hint: str | None = None) -> str | None:
        """The enabled language a message is written in (None: it does not say); an empty
        message goes by the channel's ``hint`` (a browser's, Telegram's language code)."""
        detected: str | None = None
        words = NOT_LANGUAGE.sub(" ", text)
        if any("\u4e00" <= c <= "\u9fff" for c in words):
            detected = "zh"
        elif len(LATIN_WORD.findall(words)) >= 2:
            detected = detect_language(words)
        elif not text:
            detected = self._hint(hint)
        return detected if detected in self.settings.languages else None

    def _update_language(self, state: ConversationState, customer: Customer, text: str, hint: str | None) -> None:
        detected = self.language_of(text, hint)
        if detected is not None and detected != state.language:
            state.language = detected
        if customer.language != state.language:
            customer.language = state.language

    @staticmethod
    def _inbound_payload(msg: Incoming) -> dict[str, object]:
        data: dict[str, object] = {}
        if msg.payload:
            data["button"] = msg.payload[:500]
        if msg.attachments:
            data["attachments"] = [
                {"kind": a.kind, "file_id": a.file_id, "name": a.name, "size": a.size, "mime_type": a.mime_type}
                | ({"refused": a.refused} if a.refused else {})
                for a in msg.attachments
            ]
        if msg.edited:
            data["edited"] = True
        return data

    def _inbound_row(self, msg: Incoming, customer: Customer, text: str, ticket_id: int | None) -> dict[str, object]:
        return {
            "customer_id": customer.id,
            "ticket_id": ticket_id,
            "channel": msg.channel,
            "chat_id": msg.chat_id,
            "direction": Direction.INBOUND,
            "author": Author.CUSTOMER,
            "text": text[:MAX_STORED_CHARS],
            "status": DeliveryStatus.RECEIVED,
            "delivery_key": msg.delivery_key,
            "payload": self._inbound_payload(msg),
        }

    @staticmethod
    async def _store_replies(
        tx: TicketSession, customer: Customer, msg: Incoming, replies: list[Reply], inbound: dict[str, object] | None
    ) -> tuple[int | None, list[Outgoing]]:
        """Store the inbound message (if any), then its replies: (the inbound id, the replies).

        A pull channel answers the replies in its response (``replies_in_answer``): they are
        stored SENT. A push channel's are QUEUED for the outbox reader, which marks them sent
        once the platform accepted them. Each reply points at the message it answers, so a
        retried request can be answered with the same replies.
        """
        inbound_id = (await tx.insert_messages([inbound]))[0] if inbound is not None else None
        answered = msg.replies_in_answer
        now = utcnow()
        rows = [
            {
                "customer_id": customer.id,
                "ticket_id": reply.ticket_id,
                "channel": msg.channel,
                "chat_id": msg.chat_id,
                "direction": Direction.OUTBOUND,
                "author": Author.BOT,
                "text": reply.text,
                "status": DeliveryStatus.SENT if answered else DeliveryStatus.QUEUED,
                "sent_at": now if answered else None,
                "reply_to_id": inbound_id,
                "payload": buttons_payload(reply.buttons),
            }
            for reply in replies
        ]
        ids = await tx.insert_messages(rows)
        return inbound_id, [
            Outgoing(msg.channel, msg.chat_id, reply.text, reply.buttons, message_id=row_id)
            for row_id, reply in zip(ids, replies, strict=True)
        ]

    async def _apologise(self, msg: Incoming) -> list[Outgoing]:
        """After a failed turn: keep the customer's words and say sorry, in a fresh transaction."""
        try:
            async with self.tickets.session() as tx:
                customer, _ = await tx.resolve_customer(msg.channel, msg.user_id, msg.chat_id, msg.display_name)
                inbound = self._inbound_row(msg, customer, clean_text(msg.text), None)
                text = self.services.responses.text(customer.language, "error_apology")
                _, out = await self._store_replies(tx, customer, msg, [Reply(text)], inbound)
            self._committed(msg, True, out)
            return out
        except DuplicateDelivery:
            return []  # another copy stored this delivery meanwhile: it answered
        except StoreUnavailable:
            raise  # not stored: the channel says "retry" (see _handle_claimed)
        except Exception:
            log.exception("could not store message after a failed turn", extra={"channel": msg.channel})
            text = self.services.responses.text(self.settings.default_language, "error_apology")
            if msg.replies_in_answer:
                self.observer.answered(msg.channel, 1)
            return [Outgoing(msg.channel, msg.chat_id, text)]

    def _committed(self, msg: Incoming, stored_inbound: bool, replies: list[Outgoing]) -> None:
        """Tell the observer what a committed turn stored and answered."""
        if stored_inbound:
            self.observer.message_in(msg.channel)
        if msg.replies_in_answer and replies:
            self.observer.answered(msg.channel, len(replies))

    async def delivery_failed(self, message_id: int, error: str, *, unreachable: bool = False) -> None:
        """A reply that could not be delivered: FAILED, visible on the ticket (see
        ``storage.delivery_failures.fail_delivery``; the outbox reader records its own failures).

        ``unreachable`` (the user blocked the bot) marks the customer so agents know why
        nothing arrives; their next message clears it.
        """
        await fail_delivery(self.tickets, message_id, error, unreachable=unreachable)
