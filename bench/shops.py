"""deskbot on shops it was not built around: the test shops of tests/shops, scored per shop.

For each shop (catalog, FAQ and orders unlike the demo's, see tests/shops/README.md):

* conversations — the scripted REST conversations of ``tests/shops/conversations_<shop>.py``
  (the very functions the tests run), each on a fresh app: passed / total, and why each
  failure failed;
* FAQ answers with abstention — every FAQ probe of ``probes.yml`` sent as a new customer
  through the REST channel; the reply counts as the entry whose answer it quotes, or as an
  abstention. Precision = right answers / answers given, recall = right answers /
  answerable probes, and how many unanswerable probes got no answer. The same over the
  FAQ index alone (``search(k=1)``), to tell retrieval from routing;
* product matching — every product probe through ``services.shop.products.mentions``: a
  probe naming one product is right when the best mention names it and only it; one that
  fits several, when the mention offers exactly those; one naming none, when there is no
  mention.

deskbot runs as ``make run`` runs it (orders imported through the real importer, then the
app built from config.yaml with the shop's files), on SQLite in a temporary folder and
in-memory state, with the classifier trained from intents/data (loaded from ``--model``
when it is up to date, else trained and saved there).

Run: ``.venv/bin/python bench/shops.py [--shop electronics] [--verbose]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Run as a script, bench/ is first on the path, and a module named like a standard one would shadow the standard
# library's queue (imported by concurrent.futures, which bm25s imports): the root instead.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

import httpx  # noqa: E402

from bot.app import App  # noqa: E402
from bot.config import Settings, load_settings  # noqa: E402
from bot.web.app import create_web_app  # noqa: E402
from intents.base import IntentClassifier  # noqa: E402
from intents.classifier import load_or_train  # noqa: E402
from knowledge.products import ProductMention  # noqa: E402
from knowledge.shop import load_faq  # noqa: E402
from tests.shops import (  # noqa: E402, F401 (registers them)
    conversations_cosmetics,
    conversations_electronics,
    conversations_furniture,
)
from tests.shops.harness import (  # noqa: E402
    CONVERSATIONS,
    SHOPS,
    FaqProbe,
    ProductProbe,
    RestChat,
    ShopSpec,
    load_probes,
    open_shop_app,
    play,
    shop_settings,
)


@dataclass
class Ratio:
    hits: int = 0
    total: int = 0

    def add(self, hit: bool) -> None:
        self.hits += int(hit)
        self.total += 1

    def __str__(self) -> str:
        share = f"{self.hits / self.total:.2f}" if self.total else "  - "
        return f"{share} ({self.hits}/{self.total})"


@dataclass
class FaqScore:
    precision: Ratio = field(default_factory=Ratio)  # right / answered
    recall: Ratio = field(default_factory=Ratio)  # right / answerable
    abstained: Ratio = field(default_factory=Ratio)  # no answer / unanswerable
    misses: list[str] = field(default_factory=list)

    def record(self, probe: FaqProbe, answered: str | None) -> None:
        if answered is not None:
            self.precision.add(answered == probe.entry)
        if probe.entry is not None:
            self.recall.add(answered == probe.entry)
        else:
            self.abstained.add(answered is None)
        if answered != probe.entry:
            self.misses.append(f"{probe.text!r}: expected {probe.entry or 'no answer'}, got {answered or 'no answer'}")

    def __str__(self) -> str:
        return f"precision {self.precision}  recall {self.recall}  abstained on {self.abstained} unanswerable"


@dataclass
class ShopReport:
    spec: ShopSpec
    conversations: Ratio = field(default_factory=Ratio)
    failures: list[tuple[str, str]] = field(default_factory=list)
    faq_replies: FaqScore = field(default_factory=FaqScore)
    faq_index: FaqScore = field(default_factory=FaqScore)
    products: Ratio = field(default_factory=Ratio)
    products_by_kind: dict[str, Ratio] = field(default_factory=dict)
    product_misses: list[str] = field(default_factory=list)
    seconds: float = 0.0


# -- running ----------------------------------------------------------------------------------
def settings_for(spec: ShopSpec, workdir: Path, model: str) -> Settings:
    environ = {
        "DESKBOT_STORAGE__URL": f"sqlite+aiosqlite:///{workdir / 'deskbot.db'}",
        "DESKBOT_CLASSIFIER__MODEL": model,
    }
    return shop_settings(spec, workdir, environ)


async def conversations(
    spec: ShopSpec, classifier: IntentClassifier, root: Path, model: str, report: ShopReport
) -> None:
    for index, script in enumerate(CONVERSATIONS[spec.key]):
        workdir = root / f"{spec.key}-conversation-{index}"
        workdir.mkdir()
        failure: str | None = None
        async with open_shop_app(settings_for(spec, workdir, model), classifier, create_schema=True) as app:
            try:
                await play(spec, app, script)
            except AssertionError as exc:
                failure = str(exc)
            except Exception as exc:  # noqa: BLE001 - a crash is a failed conversation, reported with its cause
                failure = f"{exc.__class__.__name__}: {exc}"
        report.conversations.add(failure is None)
        if failure is not None:
            report.failures.append((script.__name__, failure))


def quoted_entry(replies: Sequence[str], answers: dict[str, list[str]]) -> str | None:
    """The FAQ entry whose answer (in any language) one of the replies quotes."""
    for reply in replies:
        for entry_id, texts in answers.items():
            if any(text.strip() and text.strip() in reply for text in texts):
                return entry_id
    return None


async def faq_probes(app: App, spec: ShopSpec, probes: Sequence[FaqProbe], report: ShopReport) -> None:
    faq = load_faq(spec.faq)
    answers = {e.id: [e.answer_for(lang) for lang in ("en", "zh", *e.answer)] for e in faq.entries}
    transport = httpx.ASGITransport(app=create_web_app(app))
    async with httpx.AsyncClient(transport=transport, base_url="http://shop.test", timeout=60) as http:
        for index, probe in enumerate(probes):
            chat = RestChat(http, f"faq-probe-{index}", probe.language)
            replies = await chat.say(probe.text)
            report.faq_replies.record(probe, quoted_entry([r.text for r in replies], answers))
            hits = app.services.shop.faq.search(probe.text, probe.language, k=1)
            report.faq_index.record(probe, hits[0][0].id if hits else None)


def product_verdict(probe: ProductProbe, mentions: Sequence[ProductMention]) -> tuple[bool, tuple[str, ...]]:
    """Whether the matcher got ``probe`` right, and the skus it offered (its surest mention's)."""
    got: tuple[str, ...] = ()
    if mentions:
        surest = max(mentions, key=lambda m: m.candidates[0][1])
        got = tuple(product.sku for product, _ in surest.candidates)
    if len(probe.products) > 1:  # a which-one question must offer exactly these
        return set(got) == set(probe.products), got
    return got == probe.products, got


def product_probes(app: App, probes: Sequence[ProductProbe], report: ShopReport) -> None:
    matcher = app.services.shop.products
    for probe in probes:
        right, got = product_verdict(probe, matcher.mentions(probe.text, probe.language))
        kind = {0: "none", 1: "one"}.get(len(probe.products), "several")
        report.products.add(right)
        report.products_by_kind.setdefault(kind, Ratio()).add(right)
        if not right:
            report.product_misses.append(f"{probe.text!r}: expected {list(probe.products)}, got {list(got)}")


async def bench_shop(spec: ShopSpec, classifier: IntentClassifier, root: Path, model: str) -> ShopReport:
    report = ShopReport(spec)
    started = time.perf_counter()
    await conversations(spec, classifier, root, model, report)
    faq, products = load_probes(spec)
    workdir = root / f"{spec.key}-probes"
    workdir.mkdir()
    async with open_shop_app(settings_for(spec, workdir, model), classifier, create_schema=True) as app:
        await faq_probes(app, spec, faq, report)
        product_probes(app, products, report)
    report.seconds = time.perf_counter() - started
    return report


# -- output -----------------------------------------------------------------------------------
def first_line(failure: str) -> str:
    return failure.splitlines()[0] if failure else ""


def show(report: ShopReport, verbose: bool) -> None:
    spec = report.spec
    print(f"\n{spec.key} — {spec.name}  ({report.seconds:.1f} s)")
    print(f"  conversations passed    {report.conversations.hits}/{report.conversations.total}")
    print(f"  FAQ answers (replies)   {report.faq_replies}")
    print(f"  FAQ index (search k=1)  {report.faq_index}")
    kinds = ", ".join(f"{kind} {ratio.hits}/{ratio.total}" for kind, ratio in sorted(report.products_by_kind.items()))
    print(f"  product match accuracy  {report.products}  [{kinds}]")
    for name, failure in report.failures:
        print(f"  FAILED {name}: {failure if verbose else first_line(failure)}")
    if verbose:
        for miss in report.faq_replies.misses:
            print(f"  faq reply miss: {miss}")
        for miss in report.faq_index.misses:
            print(f"  faq index miss: {miss}")
        for miss in report.product_misses:
            print(f"  product miss: {miss}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--shop", choices=sorted(SHOPS), action="append", help="only this shop (repeatable)")
    parser.add_argument("--model", type=Path, default=None, help="classifier model file (default: config's)")
    parser.add_argument("--classifier-model", choices=["fast", "accurate"], default=None,
                        help="classifier.model (default: config.yaml's)")
    parser.add_argument("--verbose", "-v", action="store_true", help="full transcripts of failures and every miss")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("bm25s").setLevel(logging.ERROR)  # it logs every index build at DEBUG

    base = load_settings(ROOT / "config.yaml", environ={})
    model = args.classifier_model or base.classifier.model
    config = base.classifier.model_copy(update={"model": model})
    model_path = args.model or base.classifier.model_path
    started = time.perf_counter()
    classifier, retrained = load_or_train(config.data_dir, model_path, config)
    how = "trained" if retrained else "loaded"
    print(f"classifier ({model}) {how} in {time.perf_counter() - started:.1f} s: {model_path}")

    async def run() -> list[ShopReport]:
        with tempfile.TemporaryDirectory(prefix="deskbot-shops-") as tmp:
            return [await bench_shop(SHOPS[key], classifier, Path(tmp), model) for key in args.shop or sorted(SHOPS)]

    reports = asyncio.run(run())
    for report in reports:
        show(report, args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
