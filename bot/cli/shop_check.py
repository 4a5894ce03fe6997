"""``deskbot shop check``: a shop owner's self-test before going live.

Whether customers are understood depends on the shop's own files: a product nobody can name
in Chinese, an alias that is also how customers shorten another product's name, an FAQ entry
whose answer no customer's words reach. This command finds those before customers do.

It validates the three files (``shop.catalog``, ``shop.faq``, ``shop.orders_csv``) with the
loaders the bot uses, then asks the *running* pipeline — built by ``build_app`` as ``deskbot
serve`` builds it, with the same classifier, but on a throwaway SQLite file and in-memory
state, the orders imported there, so nothing reaches the shop's database — the questions a
customer would ask of this shop (``bot/cli/shop_probes.py``), one new customer per question, and
judges each reply by the facts it must hold:

- ``products``: the price (the reply holds it) and the stock (the reply names the product)
  of every product by its full name, its aliases and its short names, in each language of
  the catalog; a short name several products share must make the bot ask which one;
- ``faq``: every entry by its phrasings and by a paraphrase of its answer: the reply is that
  entry's answer (not another entry's, not "I don't have an answer"); a phrasing the bot acts
  on instead (a return starts) is noted, not failed;
- ``returns``: a one-shot return for a few real orders: the order id is taken;
- ``names`` (the catalog alone): every product has a name or alias in every catalog language,
  one customers type, and no alias is how customers shorten another product.

Every failure says what went wrong and what to add to the files. Exit codes: 0 every check
passed; 1 at least one failed; 2 a file does not load (then nothing is asked).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bot.cli.shop_probes import (
    ASK,
    CatalogView,
    FaqProbe,
    ProductProbe,
    catalog_languages,
    faq_probes,
    hard_to_type,
    return_orders,
    short_names,
    suggest_pattern,
)
from bot.config import Settings
from common.errors import DeskbotError
from knowledge.shop import Catalog, Faq, KnowledgeError, fold_text, load_catalog, load_faq
from storage.models import Order, Owner
from storage.orders_csv import OrdersCsvError, parse_orders_csv

if TYPE_CHECKING:
    from bot.app import App
    from intents.base import IntentClassifier

CATEGORIES = {
    "names": "every product has a name customers type in each language; no alias is another product's short name",
    "products": "price and stock by full name, aliases and short names",
    "faq": "every entry by its phrasings and by a paraphrase of its answer",
    "returns": "a one-shot return for real orders",
}
CHANNEL = "rest"  # the probes talk to the bot as the REST channel's customers do
NO_FIX = "nothing to add in the shop's files: the bot itself missed it"


# -- the report ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FileResult:
    """One of the shop's files: loaded (with what it holds) or not (with the loader's message)."""

    file: str  # catalog | faq | orders
    path: str | None
    ok: bool
    summary: str
    entry: str | None = None  # the first bad entry or line, when the loader names one


@dataclass(frozen=True, slots=True)
class Finding:
    """One check: what was asked (or looked at), what came back, and what to add if it failed."""

    category: str  # names | products | faq | returns
    check: str  # price, stock, phrasing, paraphrase, return, language, ambiguous_alias, full_name_only
    subject: str  # the sku, FAQ id or order id the check is about
    language: str
    ok: bool
    outcome: str  # answered, asked_which, request, wrong_product, wrong_entry, no_answer, ...
    detail: str
    message: str = ""  # what the probe sent (empty for checks of the data alone)
    form: str = ""  # the product form or FAQ wording probed
    reply: str = ""
    intent: str | None = None
    fix: str | None = None


@dataclass(slots=True)
class ShopReport:
    shop: str
    files: list[FileResult]
    findings: list[Finding] = field(default_factory=list)

    @property
    def files_ok(self) -> bool:
        return all(f.ok for f in self.files)

    @property
    def ok(self) -> bool:
        return self.files_ok and all(f.ok for f in self.findings)

    @property
    def exit_code(self) -> int:
        return 2 if not self.files_ok else 0 if self.ok else 1

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok]

    def summary(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for category in CATEGORIES:
            mine = [f for f in self.findings if f.category == category]
            counts[category] = {"passed": sum(f.ok for f in mine), "failed": sum(not f.ok for f in mine)}
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "shop": self.shop,
            "ok": self.ok,
            "exit_code": self.exit_code,
            "files": [asdict(f) for f in self.files],
            "summary": self.summary(),
            "checks": [asdict(f) for f in self.findings],
        }


# -- the files ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ShopFiles:
    catalog: Catalog
    faq: Faq
    orders: list[Order]


def load_files(settings: Settings) -> tuple[ShopFiles | None, list[FileResult]]:
    """Load and validate all three files as the bot does (each one even if another fails)."""
    shop = settings.shop
    results: list[FileResult] = []
    catalog: Catalog | None = None
    faq: Faq | None = None
    orders: list[Order] = []
    try:
        catalog = load_catalog(shop.catalog)
        langs = ", ".join(catalog_languages(catalog))
        results.append(FileResult("catalog", str(shop.catalog), True, f"{len(catalog.products)} products ({langs})"))
    except KnowledgeError as exc:
        results.append(FileResult("catalog", str(shop.catalog), False, str(exc), exc.entry))
    try:
        faq = load_faq(shop.faq)
        langs = ", ".join(sorted({lang for e in faq.entries for lang in e.questions}))
        results.append(FileResult("faq", str(shop.faq), True, f"{len(faq.entries)} entries ({langs})"))
    except KnowledgeError as exc:
        results.append(FileResult("faq", str(shop.faq), False, str(exc), exc.entry))
    if shop.orders_csv is None:
        results.append(FileResult("orders", None, True, "no shop.orders_csv configured: returns are not checked"))
    else:
        try:
            orders = parse_orders_csv(shop.orders_csv)
            results.append(FileResult("orders", str(shop.orders_csv), True, f"{len(orders)} orders"))
        except OrdersCsvError as exc:
            where = None if exc.line is None else f"line {exc.line}" + (f", column {exc.column}" if exc.column else "")
            results.append(FileResult("orders", str(shop.orders_csv), False, str(exc), where))
    if catalog is None or faq is None or not all(r.ok for r in results):
        return None, results
    return ShopFiles(catalog, faq, orders), results


# -- the catalog alone ----------------------------------------------------------------------
def name_findings(view: CatalogView) -> list[Finding]:
    """Per product and catalog language: can customers name it, and only it?"""
    findings: list[Finding] = []
    for product in view.catalog.products:
        label = view.label(product.sku)
        for language in view.languages:
            problems: list[Finding] = []
            name = product.name.get(language)
            own = [*([name] if name else []), *product.aliases.get(language, [])]
            if not own:
                problems.append(Finding(
                    "names", "language", product.sku, language, False, "no_form_in_language",
                    f"{label} has no name or alias in '{language}': customers writing '{language}' can only use "
                    f"\"{product.name_for(language)}\"",
                    fix=f"add aliases.{language} to {label}: what customers writing '{language}' call it",
                ))
            for form in own:
                probe = view.probe(form, language)
                others = [sku for sku in probe.fits if sku != product.sku]
                if others:
                    names = ", ".join(view.label(sku) for sku in others)
                    problems.append(Finding(
                        "names", "ambiguous_alias", product.sku, language, False, "ambiguous",
                        f"\"{form}\" ({probe.kind} of {label}) is also how customers shorten the name of {names}: "
                        f"they would get {product.sku} when they mean {', '.join(others)}",
                        form=form,
                        fix=f"make \"{form}\" more specific or remove it from {product.sku}, and give {names} "
                        "an alias of its own",
                    ))
            if name and not product.aliases.get(language) and not short_names(name) and hard_to_type(name):
                problems.append(Finding(
                    "names", "full_name_only", product.sku, language, False, "full_name_only",
                    f"{label} can only be found by its full name \"{name}\" in '{language}', which customers "
                    "rarely type",
                    form=name,
                    fix=f"add aliases.{language} to {label}: the words customers use for it (what it is)",
                ))
            findings += problems or [
                Finding("names", "language", product.sku, language, True, "answered", f"{label} in '{language}'")
            ]
    return findings


# -- asking the running pipeline ------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Seen:
    """What one probe's turn produced: the replies and what the bot did."""

    text: str  # every reply, and its buttons' titles, one per line
    intent: str | None
    form: str | None
    slots: dict[str, Any]
    requested_slot: str | None
    tickets: tuple[tuple[str, str | None], ...]  # (kind, order id)
    handed_over: bool
    crashed: bool
    request: bool  # the intent is one the bot acts on (return, complaint, handoff, status)

    @property
    def acted(self) -> bool:
        return self.form is not None or bool(self.tickets) or self.handed_over or self.request


class Asker:
    """Sends each probe as a new customer through ``app.pipeline.handle`` and reads back the turn."""

    def __init__(self, app: App) -> None:
        from handlers import fallback, presale
        from intents.base import OUT_OF_SCOPE

        self.app = app
        self._count = 0
        responses = app.services.responses
        self._apologies = {fold_text(responses.text(lang, "error_apology")) for lang in responses.templates}
        answering = set(presale.ROUTES) | set(fallback.ROUTES) | {OUT_OF_SCOPE}
        self._requests = frozenset(set(app.pipeline.routes) - answering)

    async def ask(self, text: str, language: str) -> Seen:
        from common.messages import Incoming
        from handlers.conversation import ConversationState
        from storage.models import Direction
        from storage.state import StateKey

        self._count += 1
        user = f"shop-check-{self._count}"
        out = await self.app.pipeline.handle(Incoming(CHANNEL, user, user, text, delivery_key=user, language=language))
        async with self.app.tickets.session() as tx:
            customer = await tx.find_customer(CHANNEL, user)
            if customer is None:
                raise DeskbotError(f"shop check: the pipeline stored no customer for {text!r}")
            inbound = [m for m in await tx.conversation(customer.id) if m.direction == Direction.INBOUND]
            tickets = await tx.list_tickets(customer_id=customer.id)
            owner = customer.owner
        state = ConversationState.from_dict(await self.app.state.get(StateKey(customer.id)))
        intent = inbound[-1].intent if inbound else None
        return Seen(
            text="\n".join([o.text for o in out] + [b.title for o in out for b in o.buttons]),
            intent=intent,
            form=state.form,
            slots=dict(state.slots),
            requested_slot=state.requested_slot,
            tickets=tuple((t.kind.value, t.order_id) for t in tickets),
            handed_over=owner != Owner.BOT,
            crashed=any(fold_text(o.text) in self._apologies for o in out),
            request=intent in self._requests,
        )


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", fold_text(text)).strip()


class Judge:
    """Reads a reply for the shop's facts: which products it names, which FAQ answer it is."""

    def __init__(self, view: CatalogView, faq: Faq) -> None:
        self.view = view
        names: dict[str, str] = {}
        for product in view.catalog.products:
            for name in product.name.values():
                names.setdefault(_squash(name), product.sku)
        # Longest first, so a reply naming "Alpine Wool Scarf" does not also name "Wool Scarf".
        self._names = sorted(names.items(), key=lambda item: -len(item[0]))
        self._answers = sorted(
            ((_squash(text), e.id) for e in faq.entries for text in e.answer.values()), key=lambda a: -len(a[0])
        )

    def products_named(self, text: str) -> list[str]:
        folded = _squash(text)
        taken = [False] * len(folded)
        found: list[str] = []
        for name, sku in self._names:
            start = folded.find(name)
            while start >= 0:
                if not any(taken[start : start + len(name)]):
                    taken[start : start + len(name)] = [True] * len(name)
                    if sku not in found:
                        found.append(sku)
                start = folded.find(name, start + 1)
        return found

    def faq_answered(self, text: str) -> list[str]:
        folded = _squash(text)
        return list(dict.fromkeys(entry for answer, entry in self._answers if answer in folded))

    def has_price(self, text: str, sku: str) -> bool:
        product = self.view.catalog.find_by_value(sku)
        return product is not None and re.search(_price_pattern(product.price), text) is not None

    def came_back(self, seen: Seen, fits: Sequence[str] = ()) -> str:
        """What the reply was, in words, for a failure's detail."""
        if seen.crashed:
            return "the bot failed on it (an error apology)"
        entries = self.faq_answered(seen.text)
        if entries:
            return f"the answer of FAQ entry {entries[0]}"
        named = self.products_named(seen.text)
        if _listing(named, fits):
            return f"no answer, a list of {len(named)} products (read as {seen.intent}): \"{_short(seen.text, 100)}\""
        if named:
            return "a reply about " + ", ".join(self.view.label(sku) for sku in named)
        if seen.acted:
            return f"a request being handled (read as {seen.intent}): \"{_short(seen.text, 100)}\""
        return f"no answer (read as {seen.intent}): \"{_short(seen.text, 100)}\""


def _listing(named: Sequence[str], fits: Sequence[str]) -> bool:
    """Three or more products, not all the ones the question fits: a catalog overview or the
    "we have for example …" of a product the bot did not find, not an answer about them."""
    return len(named) >= 3 and not set(named) <= set(fits)


def _price_pattern(price: Decimal) -> str:
    whole, cents = f"{price:.2f}".split(".")
    digits = r"(?<![\d.,])" + f"{int(whole):,}".replace(",", "[,\u00a0 ]?")
    return rf"{digits}(?:[.,]00)?(?!\d)" if cents == "00" else rf"{digits}[.,]{cents}(?!\d)"


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def judge_product(probe: ProductProbe, question: str, message: str, seen: Seen, judge: Judge) -> Finding:
    view = judge.view
    subject = probe.owner or probe.fits[0]
    named = judge.products_named(seen.text)
    answered_faq = judge.faq_answered(seen.text)
    wanted = probe.owner or (probe.fits[0] if len(probe.fits) == 1 else None)
    what = f"{question} of {view.label(subject)} by {probe.kind} \"{probe.form}\""

    def finding(ok: bool, outcome: str, detail: str, fix: str | None = None) -> Finding:
        return Finding("products", question, subject, probe.language, ok, outcome, f"{what}: {detail}", message,
                       probe.form, _short(seen.text), seen.intent, fix)

    if seen.crashed:
        return finding(False, "error", judge.came_back(seen))
    if wanted is not None and named == [wanted] and not answered_faq:
        if question == "price" and not judge.has_price(seen.text, wanted):
            return finding(False, "no_price", "the reply names the product but not its price", NO_FIX)
        return finding(True, "answered", "answered")
    if len(probe.fits) > 1 and len(named) >= 2 and set(named) <= set(probe.fits):
        return finding(True, "asked_which", f"asked which of {len(probe.fits)} products is meant")
    got = judge.came_back(seen, probe.fits)
    add_alias = f"add \"{probe.form}\" to aliases.{probe.language} of {view.label(subject)}"
    if wanted is None:
        shared = ", ".join(view.label(sku) for sku in probe.fits)
        return finding(False, "wrong_product" if named and not _listing(named, probe.fits) else "no_answer",
                       f"\"{probe.form}\" fits {shared}; the bot did not ask which one is meant and gave {got}",
                       "nothing to add if customers may mean any of them (the bot should ask which); if they mean one, "
                       f"add \"{probe.form}\" to that product's aliases.{probe.language}")
    fix = add_alias if probe.kind == "short name" else NO_FIX
    if answered_faq:
        return finding(False, "faq_instead", f"got {got}", fix)
    if named and not _listing(named, probe.fits) and wanted not in named:
        others = ", ".join(view.label(sku) for sku in named)
        return finding(False, "wrong_product", f"answered about {others}",
                       add_alias if probe.kind == "short name" else
                       f"make \"{probe.form}\" more distinct from the name of {others}")
    if len(named) > 1 and not _listing(named, probe.fits):
        others = ", ".join(view.label(sku) for sku in named if sku != wanted)
        return finding(False, "asked_which", f"asked which one, though only {view.label(wanted)} has this "
                       f"{probe.kind}; it also offered {others}",
                       f"make \"{probe.form}\" more distinct from the name of {others}")
    if seen.acted:
        return finding(False, "request", f"read as a request: {got}", NO_FIX)
    return finding(False, "no_answer", got, fix)


def judge_faq(probe: FaqProbe, seen: Seen, judge: Judge) -> Finding:
    answered = judge.faq_answered(seen.text)
    where = f"FAQ entry {probe.entry} by its {probe.kind} \"{probe.text}\""

    def finding(ok: bool, outcome: str, detail: str, fix: str | None = None) -> Finding:
        return Finding("faq", probe.kind, probe.entry, probe.language, ok, outcome, f"{where}: {detail}", probe.text,
                       probe.text, _short(seen.text), seen.intent, fix)

    if probe.entry in answered:
        return finding(True, "answered", "answered")
    if seen.crashed:
        return finding(False, "error", judge.came_back(seen))
    if seen.acted:
        # The owner's own wording is a request the bot acts on ("I want to return my order":
        # a return starts). That is an answer too, and no FAQ change alters it. A paraphrase
        # built from the answer's words may read as a request just as well ("…free exchange or
        # a full refund?"): listed as a note, since no FAQ change would alter that either.
        return finding(True, "request", f"handled as a request ({seen.intent}), not from the FAQ")
    got = judge.came_back(seen)
    if seen.acted:
        outcome = "request"
    elif answered:
        outcome = "wrong_entry"
    else:
        named = judge.products_named(seen.text)
        outcome = "wrong_product" if named and not _listing(named, ()) else "no_answer"
    questions = f"questions.{probe.language} of {probe.entry}"
    if probe.kind == "phrasing":
        if answered:
            fix = f"reword this phrasing so it differs from the questions of {answered[0]}, or add more to {questions}"
        else:
            fix = f"add more phrasings to {questions}"
        return finding(False, outcome, f"got {got}", fix)
    words = ", ".join(f"\"{k}\"" for k in probe.keywords)
    detail = f"a question about what the answer says ({words}) got {got}"
    fix = f"add a phrasing to {questions} with the words customers use for what its answer says, e.g. \"{probe.text}\""
    if probe.shared_with:
        shared = ", ".join(probe.shared_with)
        detail += f"; those words are also in entry {shared}"
        fix = (f"say in the answer of {probe.entry} what is particular to it (its most distinctive words are also "
               f"in {shared}), and add a phrasing to {questions}")
    return finding(False, outcome, detail, fix)


def _id_key(raw: object) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", str(raw)).upper()


def judge_return(order_id: str, language: str, message: str, seen: Seen, app: App, pattern: str | None) -> Finding:
    where = f"return of order {order_id}"

    def finding(ok: bool, outcome: str, detail: str, fix: str | None = None) -> Finding:
        return Finding("returns", "return", order_id, language, ok, outcome, f"{where}: {detail}", message, order_id,
                       _short(seen.text), seen.intent, fix)

    taken = seen.slots.get("order_id") if seen.form is not None else None
    ticketed = {_id_key(oid) for _kind, oid in seen.tickets if oid is not None}
    if (_id_key(taken) == _id_key(order_id) and seen.requested_slot != "order_id") or _id_key(order_id) in ticketed:
        return finding(True, "answered", "the order was recognised")
    if seen.crashed:
        return finding(False, "error", "the bot failed on it (an error apology)")
    found = [e.value for e in app.services.shop.entities(message, language) if e.type == "order_id"]
    configured = app.settings.shop.order_id_pattern
    if configured:
        set_pattern = f"shop.order_id_pattern {configured!r} does not match {order_id}: correct it"
    elif pattern:
        set_pattern = f"set shop.order_id_pattern: '{pattern}' in the configuration"
    else:
        set_pattern = "set shop.order_id_pattern to a regular expression matching the shop's order ids"
    if _id_key(order_id) not in map(_id_key, found):
        read = f" (it read {', '.join(repr(f) for f in found)})" if found else ""
        return finding(False, "not_recognised", f"the bot did not recognise the order id{read}", set_pattern)
    if seen.form is not None:
        return finding(False, "not_recognised", f"the return started but took the order as {taken!r}", set_pattern)
    return finding(False, "misread", f"read as {seen.intent}, not a return: \"{_short(seen.text, 100)}\"", NO_FIX)


# -- the check ------------------------------------------------------------------------------
def _throwaway(settings: Settings, url: str) -> Settings:
    """The shop's settings on a scratch database and in-memory state: nothing real is touched."""
    channels = settings.channels
    return settings.model_copy(
        update={
            "storage": settings.storage.model_copy(update={"url": url, "echo": False}),
            "state": settings.state.model_copy(update={"backend": "memory"}),
            "events": settings.events.model_copy(update={"backend": "memory"}),
            "channels": channels.model_copy(
                update={"telegram": channels.telegram.model_copy(update={"enabled": False})}
            ),
        }
    )


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Hundreds of probe turns would bury the report in "message handled" log lines."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(max(logging.WARNING, logger.getEffectiveLevel()))
    try:
        yield
    finally:
        logger.setLevel(level)


async def _import(url: str, orders: Sequence[Order]) -> None:
    """The orders into the scratch store before the bot starts, as ``orders import`` then ``serve``."""
    from storage.tickets import SqlTicketStore

    store = SqlTicketStore.from_url(url)
    try:
        await store.create_schema()
        async with store.session() as tx:
            await tx.upsert_orders(orders)
    finally:
        await store.close()


@dataclass(frozen=True, slots=True)
class _Plan:
    view: CatalogView
    names: list[Finding]
    products: list[ProductProbe]
    faq: list[FaqProbe]
    pattern: str | None


def _plan(files: ShopFiles, languages: Sequence[str]) -> _Plan:
    """Everything asked, worked out from the data before the bot starts (CPU only)."""
    view = CatalogView(files.catalog, languages)
    return _Plan(view, name_findings(view), view.probes(), faq_probes(files.faq, languages),
                 suggest_pattern([o.order_id for o in files.orders]))


async def check_shop(settings: Settings, *, classifier: IntentClassifier | None = None) -> ShopReport:
    """Validate the shop's files, then ask a throwaway copy of the bot what customers would ask.

    ``classifier``: the intent classifier to use; None loads (or trains) it from
    ``settings.classifier`` as ``deskbot serve`` does.
    """
    from bot.app import build_app

    files, results = await asyncio.to_thread(load_files, settings)
    report = ShopReport(settings.shop.name, results)
    if files is None:
        return report
    languages = [lang for lang in settings.languages if lang in ASK]
    plan = await asyncio.to_thread(_plan, files, languages)
    view, products, faq, pattern = plan.view, plan.products, plan.faq, plan.pattern
    judge = Judge(view, files.faq)
    report.findings += plan.names
    with tempfile.TemporaryDirectory(prefix="deskbot-shop-check-") as scratch, _quiet("deskbot.pipeline"):
        url = f"sqlite+aiosqlite:///{Path(scratch) / 'check.db'}"
        await _import(url, files.orders)
        async with build_app(_throwaway(settings, url), classifier=classifier, create_schema=True) as app:
            asker = Asker(app)
            for probe in products:
                for question in ("price", "stock"):
                    message = ASK[probe.language][question].format(form=probe.form)
                    seen = await asker.ask(message, probe.language)
                    report.findings.append(judge_product(probe, question, message, seen, judge))
            for faq_probe in faq:
                seen = await asker.ask(faq_probe.text, faq_probe.language)
                report.findings.append(judge_faq(faq_probe, seen, judge))
            for order in return_orders(files.orders):
                for language in languages:
                    message = ASK[language]["return"].format(order_id=order.order_id)
                    seen = await asker.ask(message, language)
                    report.findings.append(judge_return(order.order_id, language, message, seen, app, pattern))
    return report


# -- the command ----------------------------------------------------------------------------
def render(report: ShopReport) -> str:
    """The report for a person: per category, what passed, and each failure with its fix."""
    lines = [f"deskbot shop check: {report.shop}", "", "files"]
    for result in report.files:
        mark = "ok  " if result.ok else "FAIL"
        text = f"{result.path}: {result.summary}" if result.ok and result.path else result.summary
        lines.append(f"  {mark} {result.file}: " + text.replace("\n", "\n       "))
    if not report.files_ok:
        lines += ["", "A file does not load, so the bot would not start: fix it and run the check again.",
                  f"result: files invalid (exit code {report.exit_code})"]
        return "\n".join(lines)
    summary = report.summary()
    for category, about in CATEGORIES.items():
        counts = summary[category]
        lines += ["", f"{category}: {counts['passed']}/{counts['passed'] + counts['failed']} passed ({about})"]
        for f in report.findings:
            if f.category != category or f.ok:
                continue
            lines.append(f"  FAIL [{f.language}] {f.detail}")
            if f.message:
                lines.append(f"       asked: {f.message}")
                lines.append(f"       reply: {f.reply}")
            lines.append(f"       fix:   {f.fix or NO_FIX}")
    requests = [f for f in report.findings if f.ok and f.outcome == "request"]
    if requests:
        lines += ["", f"note: FAQ phrasings the bot acts on as requests, not answered from the FAQ ({len(requests)}):"]
        lines += [f"  [{f.language}] {f.subject}: \"{f.message}\" -> {f.intent}" for f in requests]
    verdict = "clean, every check passed" if report.ok else f"{len(report.failures)} checks failed"
    lines += ["", f"result: {verdict} (exit code {report.exit_code})"]
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    shop = sub.add_parser("shop", help="the shop's own data").add_subparsers(dest="action", required=True)
    check = shop.add_parser(
        "check",
        help="self-test before going live: validate the shop's files, ask the bot what customers would",
        description="Exit code 0: every check passed; 1: some checks failed; 2: a file does not load.",
    )
    check.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    # SUPPRESS: `deskbot --config X shop check` keeps X unless --config is given here too.
    check.add_argument("--config", default=argparse.SUPPRESS, help="configuration file (as `deskbot --config`)")


async def run(settings: Settings, args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = sys.stdout if out is None else out  # looked up now: a redirection made after import holds
    report = await check_shop(settings)
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2), file=out)
    else:
        print(render(report), file=out)
    return report.exit_code
