"""The built-in classifier: predictions, the fast inference path, persistence, retraining."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import hstack

from intents.base import OUT_OF_SCOPE, Entity
from intents.classifier import (
    FORMAT_VERSION,
    BuiltinClassifier,
    ModelLoadError,
    _export,
    _fit_sklearn,
    fingerprint,
    load_or_train,
    metadata_path,
    training_texts,
)
from intents.config import ClassifierConfig
from intents.entities import EntityExtractor, EntitySpec
from intents.language import detect_language, normalise_language_tag
from intents.nlu_data import NluData, NluDataError, TrainingExample, load_nlu_data
from tests.trained_models import trained_model

DATA = Path(__file__).parent / "data"
MINI = DATA / "mini"
PROJECT_DATA = Path(__file__).resolve().parents[2] / "intents" / "data"


def span(text: str, surface: str, type_: str, value: str | None = None) -> Entity:
    """The entity the shop's own finders would report for ``surface`` in ``text``."""
    start = text.index(surface)
    return Entity(type_, value or surface, start, start + len(surface), surface)


@pytest.fixture(scope="module")
def mini() -> BuiltinClassifier:
    return BuiltinClassifier.train(load_nlu_data(MINI), ClassifierConfig())


@pytest.fixture(scope="module")
def project() -> BuiltinClassifier:
    if not list(PROJECT_DATA.glob("*/nlu.yml")):
        pytest.skip("the project's NLU data is not there yet")
    # Trained once for all workers and kept across runs (tests/trained_models.py).
    return trained_model(ClassifierConfig(), PROJECT_DATA)[1]


@pytest.mark.asyncio
async def test_predicts_intent_entities_and_language(mini: BuiltinClassifier) -> None:
    text = "where is my order KX-20417"
    prediction = await mini.predict(text, known=(span(text, "KX-20417", "order_id"),))

    assert prediction.intent == "order_status"
    assert prediction.language == "en"
    assert prediction.entity("order_id") == "KX-20417"
    # The classifier knows no shop's id format: only the shop can say what an order id is.
    assert (await mini.predict(text)).entity("order_id") is None


@pytest.mark.asyncio
async def test_chinese_in_the_same_model(mini: BuiltinClassifier) -> None:
    text = "我想退两件羊毛围巾"
    prediction = await mini.predict(text, known=(span(text, "羊毛围巾", "product", "SC-001"),))

    assert prediction.intent == "request_return"
    assert prediction.language == "zh"
    assert prediction.entity("product") == "SC-001"
    assert prediction.entity("quantity") == "2"


def test_known_products_are_placeholders_whatever_their_name(mini: BuiltinClassifier) -> None:
    # The model reads the type, never the name: a product it never saw in training is
    # understood exactly as the ones it did, and its name cannot sway the intent.
    texts = ["how much is the hoodie", "how much is the espresso machine", "how much is the return label"]
    rankings = [mini.predict_sync(t, known=(span(t, t[len("how much is the ") :], "product"),)).ranking for t in texts]
    assert rankings[0][0][0] == "ask_price"
    assert rankings[1] == rankings[0] and rankings[2] == rankings[0]


def test_known_entities_win_over_the_extractor(mini: BuiltinClassifier) -> None:
    text = "return the black one please"
    black = span(text, "black one", "product", "LAMP-BLACK")
    prediction = mini.predict_sync(text, known=(black,))
    assert [(e.type, e.value) for e in prediction.entities] == [("product", "LAMP-BLACK")]
    assert [(e.type, e.value) for e in mini.predict_sync(text).entities] == [("colour", "black")]


@pytest.mark.asyncio
async def test_language_hint_wins_and_is_normalised(mini: BuiltinClassifier) -> None:
    assert (await mini.predict("hello", "zh-Hans-CN")).language == "zh"
    assert (await mini.predict("你好", "EN_us")).language == "en"


def test_ranking_is_complete_and_sorted(mini: BuiltinClassifier) -> None:
    prediction = mini.predict_sync("how much is the hoodie")

    scores = [score for _, score in prediction.ranking]
    assert sorted(scores, reverse=True) == scores
    assert {name for name, _ in prediction.ranking} == set(mini.intents)
    assert sum(scores) == pytest.approx(1.0)
    assert prediction.ranking[0] == (prediction.intent, prediction.confidence)


def test_below_threshold_is_out_of_scope_but_keeps_the_ranking(mini: BuiltinClassifier) -> None:
    strict = BuiltinClassifier(mini.model, mini.extractor, threshold=1.0)
    lenient = BuiltinClassifier(mini.model, mini.extractor, threshold=0.0)

    rejected = strict.predict_sync("how much is the hoodie")
    assert rejected.intent == OUT_OF_SCOPE
    assert rejected.ranking[0][0] == "ask_price"
    assert rejected.confidence == rejected.ranking[0][1]
    assert lenient.predict_sync("qwzx vbnm").intent != OUT_OF_SCOPE


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_out_of_scope_with_zero_confidence(mini: BuiltinClassifier, text: str) -> None:
    prediction = mini.predict_sync(text)

    assert (prediction.intent, prediction.confidence, prediction.ranking, prediction.entities) == (
        OUT_OF_SCOPE,
        0.0,
        (),
        (),
    )


def test_very_long_text_is_truncated(mini: BuiltinClassifier) -> None:
    # Speed is measured by `deskbot test-nlu` (p50/p99), never asserted here.
    text = "my order A12345 has not arrived " * 4000  # ~130 kB
    prediction = mini.predict_sync(text)
    head = text[: ClassifierConfig().max_chars]
    assert prediction.ranking == mini.predict_sync(head).ranking
    assert all(ent.end <= len(head) for ent in prediction.entities)


def test_placeholder_character_in_input_is_harmless(mini: BuiltinClassifier) -> None:
    assert mini.predict_sync("\ue000order_id\ue000").ranking == mini.predict_sync(" order_id ").ranking


def test_fast_path_matches_sklearn() -> None:
    data = load_nlu_data(MINI)
    config = ClassifierConfig()
    extractor = EntityExtractor(EntitySpec.from_nlu(data))
    vectorizers, model = _fit_sklearn(data.examples, config, extractor)
    linear = _export(vectorizers, model, config)
    texts = [
        "where is my order A12345",
        "我想退两件卫衣",
        "completely unseen words zyxw",
        "!!!",
        "Ｈｅｌｌｏ，ａｎｙｂｏｄｙ",
        "how much for 2 hoodies in medium " * 200,
    ]
    examples = [TrainingExample(t, "?") for t in texts]
    matrix = hstack([vec.transform(training_texts(examples, config, extractor)) for vec in vectorizers]).tocsr()
    expected = model.predict_proba(matrix)

    for text, row in zip(texts, expected, strict=True):
        got = linear.probabilities(text, extractor.extract(text))
        assert np.allclose(got, row, atol=1e-12, rtol=0), text
    assert tuple(model.classes_) == linear.intents


def test_training_needs_two_intents() -> None:
    with pytest.raises(NluDataError, match="at least two intents"):
        BuiltinClassifier.train(NluData(examples=(TrainingExample("hi", "greet"), TrainingExample("hello", "greet"))))


def test_binary_model_still_gives_probabilities() -> None:
    data = NluData(
        examples=tuple(TrainingExample(t, "greet") for t in ("hi", "hello", "hey"))
        + tuple(TrainingExample(t, "goodbye") for t in ("bye", "goodbye", "see you"))
    )
    clf = BuiltinClassifier.train(data, ClassifierConfig(threshold=0.0))
    prediction = clf.predict_sync("hello there")
    assert prediction.intent == "greet"
    assert sum(score for _, score in prediction.ranking) == pytest.approx(1.0)


# -- persistence ------------------------------------------------------------------------
def test_save_and_load_round_trip(mini: BuiltinClassifier, tmp_path: Path) -> None:
    path = tmp_path / "model" / "intents.npz"
    mini.save(path)

    loaded = BuiltinClassifier.load(path, threshold=mini.threshold)
    for text in ["where is my order A12345", "我想退两件卫衣", "bye", "zzz"]:
        assert loaded.predict_sync(text) == mini.predict_sync(text)
    known = (span("return the lamp", "lamp", "product"),)
    assert loaded.predict_sync("return the lamp", known=known) == mini.predict_sync("return the lamp", known=known)
    meta = json.loads(metadata_path(path).read_text())
    assert meta["intents"] == list(mini.intents)
    assert meta["format_version"] == FORMAT_VERSION


def test_corrupt_model_raises_model_load_error(tmp_path: Path) -> None:
    path = tmp_path / "intents.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(ModelLoadError):
        BuiltinClassifier.load(path)
    with pytest.raises(ModelLoadError):
        BuiltinClassifier.load(tmp_path / "missing.npz")


def test_model_file_holds_no_pickles(mini: BuiltinClassifier, tmp_path: Path) -> None:
    path = tmp_path / "intents.npz"
    mini.save(path)
    with np.load(path, allow_pickle=False) as npz:
        assert all(npz[name].dtype != object for name in npz.files)


# -- hash-based retraining ----------------------------------------------------------------
@pytest.fixture()
def data_copy(tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(MINI, target)
    return target


def test_load_or_train_retrains_only_when_needed(data_copy: Path, tmp_path: Path) -> None:
    model_path = tmp_path / "var" / "intents.npz"
    config = ClassifierConfig()

    first, retrained = load_or_train(data_copy, model_path, config)
    assert retrained is True
    assert model_path.is_file() and metadata_path(model_path).is_file()

    second, retrained = load_or_train(data_copy, model_path, config)
    assert retrained is False
    assert second.predict_sync("hello").ranking == first.predict_sync("hello").ranking

    # the threshold is applied at load time, it does not change what is learnt
    third, retrained = load_or_train(data_copy, model_path, config.model_copy(update={"threshold": 0.9}))
    assert retrained is False
    assert third.threshold == 0.9

    # a training hyper-parameter does
    _, retrained = load_or_train(data_copy, model_path, config.model_copy(update={"C": 3.0}))
    assert retrained is True


def test_changed_data_retrains(data_copy: Path, tmp_path: Path) -> None:
    model_path = tmp_path / "intents.npz"
    config = ClassifierConfig()
    load_or_train(data_copy, model_path, config)
    before = fingerprint(data_copy, config)

    nlu = data_copy / "en" / "nlu.yml"
    nlu.write_text(
        nlu.read_text(encoding="utf-8").replace("    - hiya\n", "    - hiya\n    - howdy partner\n"), encoding="utf-8"
    )

    assert fingerprint(data_copy, config) != before
    clf, retrained = load_or_train(data_copy, model_path, config)
    assert retrained is True
    assert clf.fingerprint == fingerprint(data_copy, config)
    _, retrained = load_or_train(data_copy, model_path, config)
    assert retrained is False


def test_added_language_file_retrains(data_copy: Path, tmp_path: Path) -> None:
    model_path = tmp_path / "intents.npz"
    load_or_train(data_copy, model_path)
    (data_copy / "de").mkdir()
    (data_copy / "de" / "nlu.yml").write_text("nlu:\n- intent: greet\n  examples: |\n    - hallo\n", encoding="utf-8")

    _, retrained = load_or_train(data_copy, model_path)
    assert retrained is True


@pytest.mark.parametrize("damage", ["model", "metadata", "mismatch"])
def test_damaged_model_files_retrain(data_copy: Path, tmp_path: Path, damage: str) -> None:
    model_path = tmp_path / "intents.npz"
    load_or_train(data_copy, model_path)
    if damage == "model":
        model_path.write_bytes(model_path.read_bytes()[:100])
    elif damage == "metadata":
        metadata_path(model_path).write_text("{not json", encoding="utf-8")
    else:
        # metadata claims the current fingerprint but the model file is from other data
        other = BuiltinClassifier.train(load_nlu_data(MINI / "en" / "nlu.yml"))
        other.save(model_path)
        meta = json.loads(metadata_path(model_path).read_text())
        meta["fingerprint"] = fingerprint(data_copy, ClassifierConfig())
        metadata_path(model_path).write_text(json.dumps(meta))

    clf, retrained = load_or_train(data_copy, model_path)
    assert retrained is True
    assert clf.predict_sync("我要退货").intent == "request_return"
    _, retrained = load_or_train(data_copy, model_path)
    assert retrained is False


def test_unwritable_model_path_still_returns_a_classifier(data_copy: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")

    clf, retrained = load_or_train(data_copy, blocker / "intents.npz")
    assert retrained is True
    assert clf.predict_sync("hello").intent == "greet"


# -- the project's own data ---------------------------------------------------------------
GIBBERISH = [
    "asdfghjkl",
    "qwpoeiru zmxncbv",
    "zzzzzzzz",
    "kjh kjh kjh",
    "lorem ipsum dolor sit amet",
    "xqzv wplk",
    "ghjfkd",
]


@pytest.mark.parametrize("text", GIBBERISH)
def test_gibberish_is_out_of_scope(project: BuiltinClassifier, text: str) -> None:
    assert project.predict_sync(text).intent == OUT_OF_SCOPE


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("where is my order A12345", "order_status"),
        ("I want to return these jeans", "request_return"),
        ("let me talk to a real person", "human_handoff"),
        ("我的订单A12345到哪了", "order_status"),
        ("我要退货", "request_return"),
        ("转人工", "human_handoff"),
    ],
)
def test_project_model_on_plain_requests(project: BuiltinClassifier, text: str, intent: str) -> None:
    assert project.predict_sync(text).intent == intent


@pytest.mark.parametrize(
    ("text", "known", "intent"),
    [
        ("where is my order #100234", [("#100234", "order_id")], "order_status"),
        ("has DD20261123001 shipped yet", [("DD20261123001", "order_id")], "order_status"),
        ("i'd like to send back the Alpine Wool Scarf", [("Alpine Wool Scarf", "product")], "request_return"),
        ("how much is the Retro Arcade Cabinet", [("Retro Arcade Cabinet", "product")], "ask_price"),
        ("订单KX-20417到哪了", [("KX-20417", "order_id")], "order_status"),
        ("羊毛围巾多少钱", [("羊毛围巾", "product")], "ask_price"),
        ("蓝牙降噪耳机还有货吗", [("蓝牙降噪耳机", "product")], "ask_stock"),
    ],
)
def test_project_model_on_another_shops_ids_and_products(
    project: BuiltinClassifier, text: str, known: list[tuple[str, str]], intent: str
) -> None:
    entities = tuple(span(text, surface, type_) for surface, type_ in known)
    assert project.predict_sync(text, known=entities).intent == intent


# -- language detection -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("where is my order", "en"),
        ("我的订单到哪了", "zh"),
        ("我的订单A10234呢", "zh"),
        ("卫衣 price?", "zh"),
        ("do you sell 卫衣 in size M", "en"),
        ("", "en"),
        ("12345 !!!", "en"),
    ],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_normalise_language_tag() -> None:
    assert normalise_language_tag("zh-Hans-CN") == "zh"
    assert normalise_language_tag(" EN_us ") == "en"
