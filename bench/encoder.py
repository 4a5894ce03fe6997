"""MiniLM per-message latency: the numpy forward pass against ONNX Runtime float32 and int8.

The accurate classifier answers one message at a time on one thread, so that is what is
timed: tokenizing, the forward pass and pooling for a single message, for a typical support
message (~13 word pieces) and a long one (~41, BANKING77's 99th percentile). All three run in
the same process, so the ratios hold even when the machine's speed drifts. It also prints how
far the int8 embeddings move from the float ones (cosine), over BANKING77's test messages
when ``../shared/data`` is beside the repository and over a few built-in ones otherwise.

The machine is shared: the script waits (up to ``--wait`` seconds) for the 1-minute load
average to drop below 1.5 and prints the load before and after.

Run: ``.venv/bin/python bench/encoder.py [--runs 300]`` (about 30 seconds).
"""

from __future__ import annotations

import os

# One BLAS thread, as a worker serving requests has.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not shadow the standard library (it did: queue.py): import from the project root only.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from intents.embeddings import BertEncoder, bundled_model_dir  # noqa: E402
from intents.onnx_bert import OnnxBertRunner  # noqa: E402

MESSAGES = {
    "short": "Why was I charged twice for the same purchase today?",
    "long": (
        "I topped up my account with my debit card yesterday, but the top-up still shows as pending "
        "and the money has already left my bank account. Can you tell me what is happening?"
    ),
}
FALLBACK_TEXTS = [
    "hi",
    "where is my order A12345?",
    "I still have not received my new card, what should I do?",
    "我的订单到哪了",
    "refund please 🙏",
    "my card was charged twice for the same purchase, please reverse one of the payments",
]
LOAD_LIMIT = 1.5


def load_average() -> float:
    return os.getloadavg()[0]


def wait_for_quiet(limit: float, wait: float) -> None:
    deadline = time.monotonic() + wait
    while load_average() >= limit:
        if time.monotonic() > deadline:
            sys.exit(f"load {load_average():.2f} >= {limit} after {wait:.0f} s: the machine is busy, try later")
        time.sleep(5)


def timings(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """p50 and p99 in ms of ``runs`` calls, after a warm-up."""
    for _ in range(max(10, runs // 10)):
        fn()
    samples = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        fn()
        samples[i] = time.perf_counter() - start
    return float(np.percentile(samples, 50) * 1e3), float(np.percentile(samples, 99) * 1e3)


def drift_texts(data_dir: Path, limit: int) -> tuple[str, list[str]]:
    path = data_dir / "banking77" / "test.csv"
    if not path.exists():
        return "built-in messages", FALLBACK_TEXTS
    with path.open(encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    step = max(1, len(texts) // limit)
    return f"BANKING77 test messages (one in {step})", texts[::step][:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for a quiet machine")
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--drift-texts", type=int, default=300)
    args = parser.parse_args()

    wait_for_quiet(LOAD_LIMIT, args.wait)
    load_before = load_average()

    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    root = bundled_model_dir()
    tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=128)

    start = time.perf_counter()
    encoder = BertEncoder(runtime="numpy")
    numpy_build = time.perf_counter() - start
    weights = load_file(str(root / "model.safetensors"))
    runners: dict[str, tuple[OnnxBertRunner, float]] = {}
    for name, quantize in (("ONNX float32", False), ("ONNX int8", True)):
        start = time.perf_counter()
        runner = OnnxBertRunner(weights, heads=12, quantize=quantize, threads=1)
        runners[name] = (runner, time.perf_counter() - start)

    def onnx_path(runner: OnnxBertRunner, text: str) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
            return runner.embed(ids, np.ones_like(ids))

        return run

    pieces = {key: len(tokenizer.encode(text).ids) for key, text in MESSAGES.items()}
    rows: list[tuple[str, float, dict[str, tuple[float, float]]]] = []
    numpy_cells = {
        key: timings(lambda text=text: encoder.encode_one(text), args.runs) for key, text in MESSAGES.items()
    }
    rows.append(("numpy (BertEncoder)", numpy_build, numpy_cells))
    for name, (runner, build) in runners.items():
        cells = {key: timings(onnx_path(runner, text), args.runs) for key, text in MESSAGES.items()}
        rows.append((name, build, cells))
    load_after = load_average()

    import onnxruntime
    from threadpoolctl import threadpool_info

    blas = ", ".join(
        f"{i['internal_api']} {i['version']} {i.get('architecture', '')}".strip() for i in threadpool_info()
    )
    print(
        f"MiniLM-L6 one message, one thread, {args.runs} runs each; load {load_before:.2f} before, "
        f"{load_after:.2f} after ({os.cpu_count()} cores); numpy {np.__version__} ({blas}), "
        f"onnxruntime {onnxruntime.__version__}\n"
    )
    header = ["forward pass", "build s"]
    for key in MESSAGES:
        header += [f"{pieces[key]} pieces p50 ms", "p99 ms", "× numpy p50"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, build, cells in rows:
        line = [name, f"{build:.2f}"]
        for key in MESSAGES:
            p50, p99 = cells[key]
            line += [f"{p50:.2f}", f"{p99:.2f}", f"{numpy_cells[key][0] / p50:.2f}"]
        print("| " + " | ".join(line) + " |")

    label, texts = drift_texts(args.data_dir, args.drift_texts)
    exact = encoder.encode(texts)
    float_rows = np.stack([onnx_path(runners["ONNX float32"][0], text)()[0] for text in texts])
    int8_rows = np.stack([onnx_path(runners["ONNX int8"][0], text)()[0] for text in texts])
    float_cos = (float_rows * exact).sum(axis=1)
    int8_cos = (int8_rows * exact).sum(axis=1)
    print(f"\nCosine with the numpy embeddings over {len(texts)} {label}:")
    print(f"- ONNX float32: min {float_cos.min():.6f}")
    print(
        f"- ONNX int8: mean {int8_cos.mean():.4f}, min {int8_cos.min():.4f}, "
        f"1st percentile {np.percentile(int8_cos, 1):.4f}"
    )


def resident_mb() -> float:
    """This process's resident memory (Linux ``/proc``)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def memory_probe() -> None:
    """Run in a fresh process: what each shipped (int8) encoder adds to a warm process, and
    how long it takes to load (read the weights, build and quantize the graph).

    The baseline is the same process after importing everything the encoders use, so the
    figure is the encoders' own weights and ONNX Runtime sessions, not the libraries.
    """
    import onnxruntime.quantization  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
    import tokenizers  # noqa: F401

    import intents.checkpoints  # noqa: F401
    import intents.onnx_bert  # noqa: F401
    from intents.embeddings import EmbeddingsUnavailable, shared_encoder

    baseline = resident_mb()
    parts = [f"baseline after imports {baseline:.0f} MB"]
    for name in ("all-MiniLM-L6-v2", "multilingual-e5-small", "m3e-small"):
        before = resident_mb()
        start = time.perf_counter()
        try:
            shared_encoder(name).encode_one("hello 你好")
        except EmbeddingsUnavailable as exc:
            parts.append(f"{name}: not installed ({exc})")
            continue
        parts.append(f"{name} int8: +{resident_mb() - before:.0f} MB, loaded in {time.perf_counter() - start:.1f} s")
    print("Resident memory and load time, fresh process: " + "; ".join(parts))


if __name__ == "__main__":
    if sys.argv[1:] == ["--memory-probe"]:
        memory_probe()
    else:
        main()
        import subprocess

        subprocess.run([sys.executable, __file__, "--memory-probe"], check=True)
