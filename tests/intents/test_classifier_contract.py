"""One contract for every :class:`~intents.base.IntentClassifier` deskbot can stand on.

The pipeline and the handlers only see the port, so each implementation must keep the same
promises: a :class:`Prediction` whose intent is one it knows or ``out_of_scope``, a
confidence in [0, 1] (and a ranking in order, within [0, 1]), the language hint obeyed and
otherwise detected, the shop's known entities passed through untouched, and no failure on
empty, very long or Chinese text. The implementations:

- ``builtin`` — the project's trained model (the session's, ``tests/conftest.py``);
- ``rasa`` — :class:`RasaHttpClassifier` against the fake Rasa 3.6 server
  (``tests/fakes/rasa_nlu.py``) answering from the project's NLU examples;
- ``keyword`` — the tests' deterministic double (``tests/fakes/keyword_classifier.py``).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from intents.base import OUT_OF_SCOPE, Entity, IntentClassifier, Prediction
from intents.classifier import BuiltinClassifier
from intents.entities import EntityExtractor
from intents.nlu_data import NluData, load_nlu_data
from intents.rasa_config import RasaConfig
from intents.rasa_http import RasaHttpClassifier
from tests.fakes.keyword_classifier import KeywordClassifier, rule
from tests.fakes.rasa_nlu import FakeRasa, RunningServer, create_fake_rasa_app

PROJECT_DATA = Path(__file__).resolve().parents[2] / "intents" / "data"
THRESHOLD = 0.3

# Messages every implementation is taught to understand (the built-in model learns them from
# the project's data; test_classifier.py holds it to them too).
TAUGHT = [
    ("where is my order A12345", "order_status", "en"),
    ("let me talk to a real person", "human_handoff", "en"),
    ("我要退货", "request_return", "zh"),
    ("转人工", "human_handoff", "zh"),
]
LONG = "I bought a hoodie last week and " + "it is a very nice hoodie but " * 2000 + "where is my order?"
CHINESE = ["我的订单到哪了", "这件卫衣多少钱", "明天天气怎么样", "质量太差了，拉链坏了"]


@dataclass
class Subject:
    classifier: IntentClassifier
    intents: frozenset[str]
    """What it may answer besides ``out_of_scope``."""
    ranked: bool = True
    """Whether its ranking is best first. The fake Rasa's guess for a text it was not taught
    is not (``FakeRasa._ranking`` gives the guessed intent 0.21 and the next one 0.395):
    deskbot passes Rasa's ranking on in Rasa's order."""


@pytest.fixture(scope="module")
def project_data() -> NluData:
    return load_nlu_data(PROJECT_DATA)


@pytest.fixture(params=["builtin", "rasa", "keyword"])
async def subject(request: pytest.FixtureRequest, project_data: NluData) -> AsyncIterator[Subject]:
    if request.param == "builtin":
        builtin: BuiltinClassifier = request.getfixturevalue("trained_classifier")
        yield Subject(builtin, frozenset(builtin.model.intents))
    elif request.param == "rasa":
        fake = FakeRasa(intents=list(project_data.intents))
        for example in project_data.examples:  # a Rasa assistant trained on the same data
            fake.understand(example.text, example.intent, 0.95)
        for text, intent, _ in TAUGHT:
            fake.understand(text, intent, 0.95)
        server = RunningServer(create_fake_rasa_app(fake))
        await server.start()
        rasa = RasaHttpClassifier.from_config(
            RasaConfig(url=server.url, retry_backoff=0.0),
            threshold=THRESHOLD,
            extractor=EntityExtractor.from_nlu(project_data),
        )
        try:
            yield Subject(rasa, frozenset(project_data.intents), ranked=False)
        finally:
            await rasa.close()
            await server.stop()
    else:
        rules = [rule(intent, text) for text, intent, _ in TAUGHT]
        keyword = KeywordClassifier.from_nlu(project_data, rules)
        yield Subject(keyword, frozenset(keyword.intents))


def check_shape(subject: Subject, prediction: Prediction) -> None:
    """The promises every prediction keeps, whatever the text."""
    assert isinstance(prediction, Prediction)
    assert prediction.intent == OUT_OF_SCOPE or prediction.intent in subject.intents, prediction.intent
    assert math.isfinite(prediction.confidence) and 0.0 <= prediction.confidence <= 1.0
    scores = [score for _, score in prediction.ranking]
    assert all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in scores)
    if subject.ranked:
        assert scores == sorted(scores, reverse=True), "the ranking is best first"
    assert all(name == OUT_OF_SCOPE or name in subject.intents for name, _ in prediction.ranking)
    if prediction.intent != OUT_OF_SCOPE and prediction.ranking:
        assert prediction.ranking[0][0] == prediction.intent
    assert prediction.language in ("en", "zh")
    assert all(isinstance(entity, Entity) for entity in prediction.entities)


@pytest.mark.parametrize(("text", "intent", "language"), TAUGHT)
async def test_a_taught_message_gets_its_intent(subject: Subject, text: str, intent: str, language: str) -> None:
    prediction = await subject.classifier.predict(text)

    check_shape(subject, prediction)
    assert (prediction.intent, prediction.language) == (intent, language)
    assert prediction.confidence >= THRESHOLD


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
async def test_empty_text_is_out_of_scope(subject: Subject, text: str) -> None:
    prediction = await subject.classifier.predict(text)

    check_shape(subject, prediction)
    assert prediction.intent == OUT_OF_SCOPE


async def test_an_off_topic_message_gives_a_valid_prediction(subject: Subject) -> None:
    check_shape(subject, await subject.classifier.predict("xq zzv blorp 42 kkk"))


@pytest.mark.parametrize(("hint", "language"), [("zh-Hans-CN", "zh"), ("en_US", "en"), ("ZH", "zh"), ("en", "en")])
@pytest.mark.parametrize("text", ["where is my order", "我的订单到哪了"])
async def test_the_language_hint_is_obeyed(subject: Subject, text: str, hint: str, language: str) -> None:
    prediction = await subject.classifier.predict(text, hint)

    check_shape(subject, prediction)
    assert prediction.language == language


@pytest.mark.parametrize(("text", "language"), [("where is my order", "en"), ("我的订单到哪了", "zh")])
async def test_without_a_hint_the_language_is_detected(subject: Subject, text: str, language: str) -> None:
    assert (await subject.classifier.predict(text)).language == language


@pytest.mark.parametrize(
    ("text", "surfaces"),
    [
        ("where is my order KX-20417", [("KX-20417", "order_id")]),
        ("how much is the Alpine Wool Scarf", [("Alpine Wool Scarf", "product")]),
        ("订单KX-20417的羊毛围巾到哪了", [("KX-20417", "order_id"), ("羊毛围巾", "product")]),
    ],
)
async def test_known_entities_are_passed_through(subject: Subject, text: str, surfaces: list[tuple[str, str]]) -> None:
    known = tuple(
        Entity(type_, f"value-of-{surface}", text.index(surface), text.index(surface) + len(surface), surface)
        for surface, type_ in surfaces
    )

    prediction = await subject.classifier.predict(text, known=known)

    check_shape(subject, prediction)
    for entity in known:
        assert entity in prediction.entities  # the shop's value, span and surface, unchanged
    starts = [(e.start, e.end) for e in prediction.entities]
    assert starts == sorted(starts), "entities come in text order"


async def test_long_text_gives_a_valid_prediction(subject: Subject) -> None:
    prediction = await subject.classifier.predict(LONG)

    check_shape(subject, prediction)
    assert prediction.language == "en"


@pytest.mark.parametrize("text", CHINESE)
async def test_chinese_text_gives_a_valid_prediction(subject: Subject, text: str) -> None:
    prediction = await subject.classifier.predict(text)

    check_shape(subject, prediction)
    assert prediction.language == "zh"


async def test_the_same_message_gets_the_same_answer(subject: Subject) -> None:
    first = await subject.classifier.predict("I want to return these jeans")
    again = await subject.classifier.predict("I want to return these jeans")
    assert (first.intent, first.confidence, first.ranking) == (again.intent, again.confidence, again.ranking)
