"""A BERT sentence encoder run by ONNX Runtime, optionally with int8 weights.

The numpy forward pass in :mod:`intents.embeddings` is bound by numpy's BLAS, which on
this project's machines runs AVX2 kernels only. ONNX Runtime's MLAS picks AVX-512 and VNNI
kernels by itself, and with int8 weights the encoder's ten million dense-layer parameters
shrink to 10 MB, which stays in cache between messages. So this module turns the same
numpy weight dict into an ONNX graph at load time, quantizes it, and runs it.

The graph is written directly with ORT's fused operators (``com.microsoft`` ``Attention``,
``SkipLayerNormalization``, ``BiasGelu``): the shape that ``onnxruntime.transformers``'
optimizer would produce from a PyTorch export, without torch and without depending on that
optimizer recognising a pattern. Nothing is downloaded or written outside a temporary
directory; building takes about a second.
"""

from __future__ import annotations

import ctypes
import gc
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from intents.e5_checkpoint import WORD_SCALES
from intents.encoder_errors import EmbeddingsUnavailable

if TYPE_CHECKING:
    import onnx

Float32Array = npt.NDArray[np.float32]

_INSTALL_HINT = "the ONNX Runtime encoder needs onnx and onnxruntime: pip install 'deskbot[accurate]'"
_OPSET = 17
"""LayerNormalization became a standard operator in opset 17."""
_MS = "com.microsoft"


def _require_onnx() -> Any:
    """onnxruntime, imported late (with onnx checked too) so the numpy path never needs them."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise EmbeddingsUnavailable(_INSTALL_HINT) from exc
    return onnxruntime


def _layer_count(weights: Mapping[str, Any]) -> int:
    count = 0
    while f"encoder.layer.{count}.attention.self.query.weight" in weights:
        count += 1
    return count


def build_bert_graph(
    weights: Mapping[str, npt.ArrayLike],
    *,
    heads: int,
    layer_norm_eps: float = 1e-12,
    exact_gelu: bool = False,
) -> onnx.ModelProto:
    """An ONNX model: (input_ids, attention_mask) → mean-pooled, l2-normalised embeddings.

    Sizes (hidden, layers, intermediate, positions) are read off the weights, so any
    HuggingFace BERT encoder's state dict (names without the ``bert.`` prefix) fits; only the
    number of heads is not in the weights. Token type ids are taken to be all 0.
    GELU is the tanh form by default, like :class:`intents.embeddings.BertEncoder`, so both
    give the same vectors (to 1e-6) and a head trained on one serves the other;
    ``exact_gelu`` gives BERT's erf form (embeddings move by ~3e-4).
    Pooling is inside the graph so one ``run`` gives the final vector, with no numpy
    passes over the hidden states afterwards.
    """
    _require_onnx()
    from onnx import TensorProto, helper, numpy_helper

    def w(name: str) -> Float32Array:
        if name not in weights:
            raise EmbeddingsUnavailable(f"not a BERT checkpoint: {name} is missing")
        return np.ascontiguousarray(np.asarray(weights[name]), dtype=np.float32)

    layers = _layer_count(weights)
    if "embeddings.word_embeddings.weight" not in weights:
        raise EmbeddingsUnavailable("not a BERT checkpoint: embeddings.word_embeddings.weight is missing")
    word = np.asarray(weights["embeddings.word_embeddings.weight"])
    hidden = word.shape[1]
    if layers == 0 or hidden % heads:
        raise EmbeddingsUnavailable(f"not a BERT encoder with {heads} heads: {layers} layers, hidden size {hidden}")

    initializers: list[Any] = []
    nodes: list[Any] = []

    def const(name: str, value: npt.ArrayLike) -> str:
        initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str, *, domain: str = "", **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs))
        return output

    def add_and_norm(dense_out: str, residual: str, prefix: str, output: str) -> str:
        """LayerNorm(dense output + its bias + residual) as one SkipLayerNormalization: BERT's
        step after attention and after the feed-forward layer (``prefix`` + dense.bias /
        LayerNorm.*)."""
        return node(
            "SkipLayerNormalization",
            [
                dense_out,
                residual,
                const(output + "_w", w(prefix + "LayerNorm.weight")),
                const(output + "_b", w(prefix + "LayerNorm.bias")),
                const(output + "_dense_b", w(prefix + "dense.bias")),
            ],
            output,
            domain=_MS,
            epsilon=layer_norm_eps,
        )

    # Embeddings: word + position + token type 0, then layer norm. Position and type rows
    # are added up once here; the graph slices the first seq_len rows.
    const(
        "position_type_embeddings",
        w("embeddings.position_embeddings.weight") + w("embeddings.token_type_embeddings.weight")[0],
    )
    node("Shape", ["input_ids"], "ids_shape")
    const("one_i64", np.array([1], dtype=np.int64))
    const("two_i64", np.array([2], dtype=np.int64))
    const("zero_i64", np.array([0], dtype=np.int64))
    node("Slice", ["ids_shape", "one_i64", "two_i64"], "seq_len")
    node("Slice", ["position_type_embeddings", "zero_i64", "seq_len", "zero_i64"], "positions")
    if WORD_SCALES in weights:
        # An int8 table with a scale per row (multilingual-e5-small: 96 MB instead of 384).
        const("word_embeddings", np.asarray(weights["embeddings.word_embeddings.weight"], dtype=np.int8))
        const("word_scales", np.asarray(weights[WORD_SCALES], dtype=np.float32))
        node("Gather", ["word_embeddings", "input_ids"], "word_rows")
        node("Cast", ["word_rows"], "word_rows_f", to=TensorProto.FLOAT)
        node("Gather", ["word_scales", "input_ids"], "row_scales")
        node("Unsqueeze", ["row_scales", const("axis_last", np.array([-1], dtype=np.int64))], "row_scales_3d")
        node("Mul", ["word_rows_f", "row_scales_3d"], "words")
    else:
        const("word_embeddings", w("embeddings.word_embeddings.weight"))
        node("Gather", ["word_embeddings", "input_ids"], "words")
    node("Add", ["words", "positions"], "embedded")
    x = node(
        "LayerNormalization",
        [
            "embedded",
            const("emb_ln_w", w("embeddings.LayerNorm.weight")),
            const("emb_ln_b", w("embeddings.LayerNorm.bias")),
        ],
        "emb_ln",
        axis=-1,
        epsilon=layer_norm_eps,
    )
    # Attention takes the raw (batch, seq) 0/1 mask as int32; padding keys get no weight.
    node("Cast", ["attention_mask"], "mask_i32", to=TensorProto.INT32)

    for i in range(layers):
        p = f"encoder.layer.{i}."
        att = p + "attention."
        qkv_w = np.concatenate(
            [w(att + "self.query.weight").T, w(att + "self.key.weight").T, w(att + "self.value.weight").T], axis=1
        )
        qkv_b = np.concatenate([w(att + "self.query.bias"), w(att + "self.key.bias"), w(att + "self.value.bias")])
        context = node(
            "Attention",
            [x, const(f"l{i}_qkv_w", np.ascontiguousarray(qkv_w)), const(f"l{i}_qkv_b", qkv_b), "mask_i32"],
            f"l{i}_context",
            domain=_MS,
            num_heads=heads,
        )
        attended = node(
            "MatMul",
            [context, const(f"l{i}_out_w", np.ascontiguousarray(w(att + "output.dense.weight").T))],
            f"l{i}_attended",
        )
        x = add_and_norm(attended, x, att + "output.", f"l{i}_ln1")
        up = node(
            "MatMul", [x, const(f"l{i}_up_w", np.ascontiguousarray(w(p + "intermediate.dense.weight").T))], f"l{i}_up"
        )
        # GELU of up + bias: BiasGelu is the erf form, FastGelu the tanh form.
        gelu = "BiasGelu" if exact_gelu else "FastGelu"
        act = node(gelu, [up, const(f"l{i}_up_b", w(p + "intermediate.dense.bias"))], f"l{i}_gelu", domain=_MS)
        down = node(
            "MatMul", [act, const(f"l{i}_down_w", np.ascontiguousarray(w(p + "output.dense.weight").T))], f"l{i}_down"
        )
        x = add_and_norm(down, x, p + "output.", f"l{i}_ln2")

    # Mean over real tokens, then l2 normalisation (a floor on both divisors keeps an
    # all-padding row at zero instead of NaN).
    node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    node("Unsqueeze", ["mask_f", const("axis2", np.array([2], dtype=np.int64))], "mask_f3")
    node("Mul", [x, "mask_f3"], "masked")
    node("ReduceSum", ["masked", "one_i64"], "summed", keepdims=0)
    node("ReduceSum", ["mask_f", "one_i64"], "counts", keepdims=1)
    node("Max", ["counts", const("one_f", np.array(1.0, dtype=np.float32))], "counts_floor")
    node("Div", ["summed", "counts_floor"], "pooled")
    node("ReduceL2", ["pooled"], "norms", axes=[1], keepdims=1)  # axes is still an attribute in opset 17
    node("Max", ["norms", const("eps_f", np.array(1e-12, dtype=np.float32))], "norms_floor")
    node("Div", ["pooled", "norms_floor"], "sentence_embedding")

    graph = helper.make_graph(
        nodes,
        "bert_sentence_encoder",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden])],
        initializers,
    )
    model: onnx.ModelProto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", _OPSET), helper.make_opsetid(_MS, 1)],
        producer_name="deskbot",
    )
    return model


def quantize_int8(model: onnx.ModelProto, workdir: Path) -> Path:
    """``model`` with int8 weights in its dense layers and attention projections.

    Dynamic quantization: weights are int8 per output column, activations are quantized
    per call from their own range, so no calibration data is needed. The embedding tables
    stay float32: a Gather costs nothing and int8 rows would only add error.
    """
    _require_onnx()
    import onnx
    from onnxruntime.quantization import (  # type: ignore[import-untyped,unused-ignore]
        QuantType,
        quantize_dynamic,
    )

    source = workdir / "float.onnx"
    target = workdir / "int8.onnx"
    # ORT's quantization pre-processing (shape inference, then fusing into the operators
    # above) has nothing to do on a graph built fused; without its mark quantize_dynamic
    # logs a warning through the root logger on every start, configuring logging for an
    # application that has not yet done so.
    mark = model.metadata_props.add()
    mark.key, mark.value = "onnx.quant.pre_process", "onnxruntime.quant"
    try:
        onnx.save_model(model, str(source))
    finally:
        del model.metadata_props[-1]  # the caller's model stays as it was
    quantize_dynamic(
        source,
        target,
        op_types_to_quantize=["MatMul", "Attention"],
        per_channel=True,
        weight_type=QuantType.QInt8,
        # Shape inference does not know the com.microsoft operators' output types.
        extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return target


def release_freed_memory() -> None:
    """Hand the build's scratch memory back to the OS; call it once the source weights are dropped.

    Reading the checkpoint, building the float graph, serialising it and quantizing it peak
    at a few hundred MB that glibc keeps mapped after they are freed: MiniLM's encoder left
    the process 237 MB larger without this, 80 MB with it. A no-op where the C library has
    no ``malloc_trim``.
    """
    gc.collect()  # the build's temporaries may sit in reference cycles until the next collection
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):
        pass


class OnnxBertRunner:
    """A BERT encoder's sentence embeddings from one ONNX Runtime session.

    One message at a time is the latency path, so the session uses ``threads`` intra-op
    threads (default 1, the budget the accurate classifier is measured on) and never runs
    operators side by side.
    """

    def __init__(
        self,
        weights: Mapping[str, npt.ArrayLike],
        *,
        heads: int,
        quantize: bool = True,
        threads: int = 1,
        layer_norm_eps: float = 1e-12,
        exact_gelu: bool = False,
    ) -> None:
        ort = _require_onnx()
        model = build_bert_graph(weights, heads=heads, layer_norm_eps=layer_norm_eps, exact_gelu=exact_gelu)
        self.quantized = quantize
        self.dimension = int(model.graph.output[0].type.tensor_type.shape.dim[1].dim_value)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if quantize:
            # quantize_dynamic works on files; the session reads the result before the
            # directory goes away.
            with tempfile.TemporaryDirectory(prefix="deskbot-onnx-") as tmp:
                path = quantize_int8(model, Path(tmp))
                self._session: Any = ort.InferenceSession(str(path), options, providers=providers)
        else:
            self._session = ort.InferenceSession(model.SerializeToString(), options, providers=providers)

    def _run(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]) -> Float32Array:
        out: Float32Array = self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return out

    def embed(self, ids: npt.ArrayLike, mask: npt.ArrayLike) -> Float32Array:
        """(batch, hidden) float32 embeddings, rows l2-normalised, for right-padded token ids.

        ``mask`` is 1 on real tokens and 0 on padding, of any numeric dtype. The int8 graph
        runs each row alone, without its padding: dynamic quantization takes one activation
        scale from the whole input, padding included, so in a batch a row's embedding would
        depend on its neighbours (components moved by up to 0.03), and a message must embed
        the same at training time (in batches) as when it is served (alone).
        """
        ids64 = np.ascontiguousarray(ids, dtype=np.int64)
        mask64 = np.ascontiguousarray(mask, dtype=np.int64)
        if ids64.ndim != 2 or ids64.shape != mask64.shape:
            raise ValueError(f"ids {ids64.shape} and mask {mask64.shape} must be the same (batch, seq) shape")
        if not self.quantized:
            return self._run(ids64, mask64)
        out = np.zeros((ids64.shape[0], self.dimension), dtype=np.float32)
        for row in range(ids64.shape[0]):
            real = ids64[row][mask64[row] != 0][None, :]
            if real.size:
                out[row] = self._run(real, np.ones_like(real))[0]
        return out
