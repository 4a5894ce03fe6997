"""RasaHttpClassifier against a fake Rasa 3.6 server on a real socket (tests/fakes/rasa_nlu.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from bot.config import load_settings
from common.errors import ConfigError
from intents.base import OUT_OF_SCOPE, Entity
from intents.entities import EntityExtractor
from intents.nlu_data import load_nlu_data
from intents.rasa_config import RasaConfig
from intents.rasa_http import RasaError, RasaHttpClassifier
from tests.fakes.rasa_nlu import FakeEntity, FakeRasa, RunningServer, create_fake_rasa_app, free_port

INTENTS = ["greet", "request_return", "complaint", "ticket_status", "goodbye", "affirm", "deny"]


@pytest.fixture
async def fake() -> AsyncIterator[FakeRasa]:
    yield FakeRasa(intents=list(INTENTS))


@pytest.fixture
async def rasa(fake: FakeRasa) -> AsyncIterator[RunningServer]:
    server = RunningServer(create_fake_rasa_app(fake))
    await server.start()
    yield server
    fake.release.set()  # a request held by the "hang" fault ends before the server stops
    await server.stop()


def classifier_for(url: str, **config: object) -> RasaHttpClassifier:
    settings = {"url": url, "retry_backoff": 0.0} | config
    return RasaHttpClassifier.from_config(RasaConfig.model_validate(settings), threshold=0.3)


async def test_intent_entities_and_ranking_are_mapped(fake: FakeRasa, rasa: RunningServer) -> None:
    text = "I want to return the hoodie from order A10234, it is too small"
    fake.understand(
        text,
        "request_return",
        0.9931,
        FakeEntity("order_number", "A10234", extractor="RegexEntityExtractor"),
        FakeEntity("product", "hoodie", value="HD-001"),
        FakeEntity("size", "too small", value="too_small", role="problem", group="1"),
    )
    classifier = classifier_for(rasa.url, entity_map={"order_number": "order_id", "size:problem": "reason"})
    try:
        pred = await classifier.predict(text, "en-GB")
    finally:
        await classifier.close()
    assert (pred.intent, pred.confidence, pred.language) == ("request_return", 0.9931, "en")
    assert pred.ranking[0] == ("request_return", 0.9931)
    assert [name for name, _ in pred.ranking][1:4] == ["greet", "complaint", "ticket_status"]
    assert pred.entity("order_id") == "A10234"
    assert pred.entity("product") == "HD-001"  # Rasa's synonym mapping is kept
    assert pred.entity("reason") == "too_small"  # entity:role mapping
    order = next(e for e in pred.entities if e.type == "order_id")
    assert (order.text, order.extractor, order.confidence) == ("A10234", "RegexEntityExtractor", None)
    reason = next(e for e in pred.entities if e.type == "reason")
    assert (reason.text, reason.role, reason.group, reason.confidence) == ("too small", "problem", "1", 0.9987)
    assert text[reason.start : reason.end] == "too small"
    assert fake.requests[-1]["body"] == {"text": text}


async def test_rasa_nlu_fallback_becomes_out_of_scope(fake: FakeRasa, rasa: RunningServer) -> None:
    classifier = classifier_for(rasa.url)
    try:
        pred = await classifier.predict("what is the meaning of life")
    finally:
        await classifier.close()
    # Rasa's FallbackClassifier answered nlu_fallback at its threshold: deskbot's name for it.
    assert pred.intent == OUT_OF_SCOPE
    assert pred.ranking[0] == (OUT_OF_SCOPE, 0.3)


async def test_deskbot_threshold_applies_to_rasa_confidence(fake: FakeRasa, rasa: RunningServer) -> None:
    fake.fallback_threshold = None  # an assistant without a FallbackClassifier
    fake.understand("hmm maybe", "affirm", 0.41)
    classifier = RasaHttpClassifier.from_config(RasaConfig(url=rasa.url), threshold=0.5)
    try:
        low = await classifier.predict("hmm maybe")
        classifier.threshold = 0.4
        high = await classifier.predict("hmm maybe")
    finally:
        await classifier.close()
    assert (low.intent, low.confidence) == (OUT_OF_SCOPE, 0.41)
    assert high.intent == "affirm"


async def test_intent_map_renames_rasa_intents(fake: FakeRasa, rasa: RunningServer) -> None:
    fake.intents.append("ask_refund")
    fake.understand("money back please", "ask_refund", 0.88)
    classifier = classifier_for(rasa.url, intent_map={"ask_refund": "request_return", "nlu_fallback": OUT_OF_SCOPE})
    try:
        pred = await classifier.predict("money back please")
    finally:
        await classifier.close()
    assert pred.intent == "request_return"
    assert pred.ranking[0] == ("request_return", 0.88)


async def test_builtin_entities_fill_what_rasa_does_not_extract(fake: FakeRasa, rasa: RunningServer) -> None:
    extractor = EntityExtractor.from_nlu(load_nlu_data("intents/data"))
    text = "return order KX-20417 in size M please, mail me at jo@example.com"
    start = text.index("KX-20417")
    order = Entity("order_id", "KX-20417", start, start + len("KX-20417"), "KX-20417")
    fake.understand(text, "request_return", 0.97, FakeEntity("email", "jo@example.com"))
    classifier = RasaHttpClassifier.from_config(RasaConfig(url=rasa.url), threshold=0.3, extractor=extractor)
    try:
        pred = await classifier.predict(text, known=(order,))
    finally:
        await classifier.close()
    assert pred.entity("order_id") == "KX-20417"  # the shop's own order id, Rasa had none
    assert pred.entity("size") == "M"  # deskbot's lookup, Rasa had none
    emails = [e for e in pred.entities if e.type == "email"]
    assert [e.extractor for e in emails] == ["DIETClassifier"]  # Rasa's wins, no duplicate
    assert [e.start for e in pred.entities] == sorted(e.start for e in pred.entities)


async def test_token_is_sent_as_query_parameter(fake: FakeRasa, rasa: RunningServer) -> None:
    fake.token = "s3cret"
    fake.understand("hello", "greet", 0.99)
    good = RasaHttpClassifier.from_config(RasaConfig(url=rasa.url), threshold=0.3, token="s3cret")
    bad = RasaHttpClassifier.from_config(RasaConfig(url=rasa.url, on_error="raise"), threshold=0.3, token="nope")
    try:
        assert (await good.predict("hello")).intent == "greet"
        with pytest.raises(RasaError, match="DESKBOT_SECRETS__RASA_TOKEN") as refused:
            await bad.predict("hello")
    finally:
        await good.close()
        await bad.close()
    assert refused.value.status == 401
    assert fake.requests[-1]["query"] == {"token": "s3cret"}


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("500", "Rasa answered 500: An unexpected error occurred. Error: model crashed"),
        ("no_model", "Rasa answered 409: No agent loaded"),
        ("malformed", "malformed JSON"),
        ("not_json_object", "not a parse result"),
    ],
)
async def test_faults_raise_a_clear_error_or_degrade(
    fake: FakeRasa, rasa: RunningServer, fault: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    fake.fault = fault  # type: ignore[assignment]
    strict = classifier_for(rasa.url, on_error="raise")
    lenient = classifier_for(rasa.url)
    try:
        with pytest.raises(RasaError, match=message):
            await strict.predict("I want to return order A10234")
        with caplog.at_level(logging.WARNING, logger="deskbot.intents.rasa"):
            pred = await lenient.predict("I want to return order A10234")
    finally:
        await strict.close()
        await lenient.close()
    assert (pred.intent, pred.confidence) == (OUT_OF_SCOPE, 0.0)
    assert "rasa unavailable" in caplog.text
    assert "A10234" not in caplog.text  # the customer's words never reach the logs


async def test_timeout_is_not_retried(fake: FakeRasa, rasa: RunningServer) -> None:
    fake.fault = "hang"
    classifier = classifier_for(rasa.url, timeout=0.2, retries=3, on_error="raise")
    try:
        with pytest.raises(RasaError, match="did not answer within 0.2 s"):
            await classifier.predict("hello")
    finally:
        await classifier.close()
    assert len(fake.requests) == 1


async def test_connection_errors_are_retried_until_rasa_is_up(fake: FakeRasa) -> None:
    """The first attempt is refused; Rasa comes up during the back-off; the retry gets the answer."""
    fake.understand("hello", "greet", 0.95)
    server = RunningServer(create_fake_rasa_app(fake), port=free_port())
    waits: list[float] = []

    async def start_rasa_while_waiting(seconds: float) -> None:
        waits.append(seconds)
        await server.start()

    config = RasaConfig(url=server.url, retries=2, retry_backoff=0.5)
    classifier = RasaHttpClassifier.from_config(config, threshold=0.3)
    classifier._sleep = start_rasa_while_waiting
    try:
        pred = await classifier.predict("hello")
    finally:
        await classifier.close()
        await server.stop()
    assert pred.intent == "greet"
    assert waits == [0.5]


async def test_rasa_down_gives_up_after_the_retries() -> None:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    classifier = RasaHttpClassifier.from_config(
        RasaConfig(url=f"http://127.0.0.1:{free_port()}", retries=2, retry_backoff=0.1, on_error="raise"),
        threshold=0.3,
    )
    classifier._sleep = record
    try:
        with pytest.raises(RasaError, match="after 3 attempts: ConnectError"):
            await classifier.predict("hello")
        with pytest.raises(RasaError, match="cannot reach Rasa"):
            await classifier.version()
    finally:
        await classifier.close()
    assert waits == [0.1, 0.2]


async def test_version_reports_rasa_version(rasa: RunningServer) -> None:
    classifier = classifier_for(rasa.url)
    try:
        assert await classifier.version() == "3.6.20"
    finally:
        await classifier.close()


def test_config_requires_url_for_rasa_backend_and_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"classifier.*rasa\.url: required when backend is rasa"):
        load_settings(environ={"DESKBOT_CONFIG": "/nonexistent.yaml", "DESKBOT_CLASSIFIER__BACKEND": "rasa"})
    with pytest.raises(ConfigError, match=r"classifier\.rasa\.url = 'ftp://x': .*http"):
        load_settings(
            environ={"DESKBOT_CONFIG": "/nonexistent.yaml", "DESKBOT_CLASSIFIER__RASA__URL": "ftp://x"}
        )
    with pytest.raises(ConfigError, match=r"classifier\.rasa\.timeout"):
        load_settings(environ={"DESKBOT_CONFIG": "/nonexistent.yaml", "DESKBOT_CLASSIFIER__RASA__TIMEOUT": "0"})
    settings = load_settings(
        environ={
            "DESKBOT_CONFIG": "/nonexistent.yaml",
            "DESKBOT_CLASSIFIER__BACKEND": "rasa",
            "DESKBOT_CLASSIFIER__RASA__URL": "http://rasa:5005/",
            "DESKBOT_CLASSIFIER__RASA__INTENT_MAP": "{ask_refund: request_return}",
            "DESKBOT_SECRETS__RASA_TOKEN": "tok",
        }
    )
    assert settings.classifier.rasa.url == "http://rasa:5005"
    assert settings.classifier.rasa.intent_map == {"ask_refund": "request_return"}
    assert settings.secrets["rasa_token"].get_secret_value() == "tok"


def test_rasa_settings_do_not_change_the_builtin_model_fingerprint() -> None:
    from intents.config import ClassifierConfig

    plain = ClassifierConfig()
    rasa = ClassifierConfig(backend="rasa", rasa=RasaConfig(url="http://rasa:5005"))
    assert plain.training_fields() == rasa.training_fields()


async def test_a_down_rasa_is_not_asked_again_until_the_cooldown_passed(fake: FakeRasa, rasa: RunningServer) -> None:
    now = [100.0]
    fake.understand("hello", "greet", 0.95)
    fake.fault = "500"
    classifier = RasaHttpClassifier.from_config(RasaConfig(url=rasa.url, down_cooldown=10), threshold=0.3)
    classifier._clock = lambda: now[0]
    try:
        assert (await classifier.predict("hello")).intent == OUT_OF_SCOPE
        fake.fault = "none"  # Rasa is back, but the cooldown is not over: no call, no wait
        now[0] = 109.0
        assert (await classifier.predict("hello")).intent == OUT_OF_SCOPE
        assert len(fake.requests) == 1
        now[0] = 110.5
        assert (await classifier.predict("hello")).intent == "greet"
        assert len(fake.requests) == 2
    finally:
        await classifier.close()


async def test_one_bad_message_does_not_stop_the_others(fake: FakeRasa, rasa: RunningServer) -> None:
    fake.understand("hello", "greet", 0.95)
    classifier = classifier_for(rasa.url)
    try:
        fake.fault = "malformed"
        assert (await classifier.predict("hello")).intent == OUT_OF_SCOPE
        fake.fault = "none"
        assert (await classifier.predict("hello")).intent == "greet"
    finally:
        await classifier.close()


async def test_retrieval_intents_map_by_their_full_name(fake: FakeRasa, rasa: RunningServer) -> None:
    """Rasa's ResponseSelector: intent ``faq``, the answer key ``faq/ask_payment`` in response_selector."""
    fake.intents.append("faq")
    fake.understand("can I pay with paypal", "faq", 0.93)
    fake.retrieval["can I pay with paypal"] = "faq/ask_payment"
    mapped = classifier_for(rasa.url, intent_map={"faq/ask_payment": "ask_payment"})
    unmapped = classifier_for(rasa.url)
    try:
        assert (await mapped.predict("can I pay with paypal")).intent == "ask_payment"
        assert (await unmapped.predict("can I pay with paypal")).intent == "faq"
    finally:
        await mapped.close()
        await unmapped.close()
