"""Intent classification on public benchmarks, against Rasa 3.6 DIET measured on this machine.

Trains and tests the built-in classifier (``fast`` and ``accurate``) on BANKING77, CLINC150
(with its out-of-scope rows), both Bitext customer-support sets, SMP2017-ECDT and CAIS
(Chinese), and prints markdown: the comparison table, the CLINC150 trade-off between
in-scope accuracy and out-of-scope recall, and a Chinese report that adds the project's own
Chinese data (a held-out 20%).

The data sets are read in place from ``../shared/data`` beside the repository (or
``--data-dir``) and never copied into the project. Fair rules: training uses ``train``
only; the out-of-scope threshold is tuned on ``val`` where a set has one (CLINC150), never
on ``test``.

Run: ``.venv/bin/python bench/nlu.py [--sets banking77,clinc150] [--models fast,accurate]``
(``accurate+m3e`` adds the opt-in Chinese encoder, licensed for non-commercial use only)
(all sets and both models take about 30 minutes on 2 cores). ``--json-out FILE`` keeps the
raw reports.
"""

from __future__ import annotations

import os

# One BLAS thread: single-message latency is what a worker serving requests sees, and
# several threads fighting over two cores only add noise.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# The script's own directory comes first on sys.path, where a module named like a standard one would shadow the
# standard library's queue (which multiprocessing imports): import from the project root only.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from intents.calibration import OperatingPoint  # noqa: E402
from intents.config import ClassifierConfig  # noqa: E402
from intents.evaluate import EvaluationReport, evaluate, stratified_split  # noqa: E402
from intents.nlu_data import NluData, load_examples, load_nlu_data  # noqa: E402
from intents.progress import ProgressBar  # noqa: E402


@dataclass(frozen=True)
class BenchSet:
    key: str
    title: str
    folder: str
    train: str
    test: str
    val: str | None = None
    language: str = "en"


SETS = (
    BenchSet("banking77", "BANKING77 train-3000", "banking77", "train-3000.csv", "test.csv"),
    BenchSet("clinc150", "CLINC150 train-3000 (+OOS)", "clinc150", "train-3000.csv", "test.csv", "val.csv"),
    BenchSet("smp2017", "SMP2017-ECDT", "smp2017-ecdt", "train.csv", "test.csv", language="zh"),
    BenchSet("banking77-full", "BANKING77 full train", "banking77", "train.csv", "test.csv"),
    BenchSet("clinc150-full", "CLINC150 full train (+OOS)", "clinc150", "train.csv", "test.csv", "val.csv"),
    BenchSet("bitext", "Bitext customer support", "bitext-customer-support", "train.csv", "test.csv", "val.csv"),
    BenchSet("bitext-20k", "Bitext customer support 20k", "bitext-customer-support-20k", "train.csv", "test.csv"),
    BenchSet("cais", "CAIS", "cais", "train.csv", "test.csv", "val.csv", language="zh"),
)

# Rasa 3.6 DIET with its default featurisers, measured on this 2-core machine (issue 4).
DIET: dict[str, dict[str, float]] = {
    "banking77": {"accuracy": 0.848, "macro_f1": 0.848, "train_s": 1060.0, "p50": 6.4, "p99": 10.6},
    "clinc150": {
        "top1": 0.799,
        "macro_f1": 0.718,
        "in_scope": 0.764,
        "oos_recall": 0.683,
        "train_s": 463.0,
        "p50": 6.3,
        "p99": 9.0,
    },
    "smp2017": {"accuracy": 0.874, "macro_f1": 0.882, "train_s": 398.0, "p50": 5.7, "p99": 9.2},
}


MODELS: dict[str, ClassifierConfig] = {
    "fast": ClassifierConfig(),
    "accurate": ClassifierConfig(model="accurate"),
    # m3e-small votes on Chinese messages; its weights are licensed for non-commercial use only.
    "accurate+e5": ClassifierConfig(model="accurate", chinese_encoder="multilingual-e5-small"),
    "accurate+m3e": ClassifierConfig(model="accurate", chinese_encoder="m3e-small"),
}


def run_set(bench: BenchSet, data_dir: Path, model: str, progress: bool) -> EvaluationReport:
    folder = data_dir / bench.folder
    train = load_examples(folder / bench.train)
    test = load_examples(folder / bench.test)
    val = load_examples(folder / bench.val) if bench.val else None
    config = MODELS[model]
    return evaluate(train, test, config, val_examples=val, progress=ProgressBar() if progress else None)


def own_chinese(model: str) -> EvaluationReport:
    """The project's own Chinese customer-service data, a stratified 20% held out."""
    data: NluData = load_nlu_data(ROOT / "intents" / "data" / "zh")
    config = MODELS[model]
    train, test = stratified_split(data.examples, 0.2, seed=config.seed)
    return evaluate(train, test, config, train_data=data)


def report_from_dict(data: dict[str, Any]) -> EvaluationReport:
    """Rebuild a report saved by ``--json-out`` (the fields the tables use)."""
    curve_points = tuple(OperatingPoint(**point) for point in data.get("oos_curve") or ())
    tuning = data.get("tuning_point")
    fields = {k: v for k, v in data.items() if k not in {"per_intent", "confusions", "by_language", "oos_curve"}}
    fields.update(
        per_intent=(),
        confusions=(),
        by_language={},
        oos_curve=curve_points,
        tuning_point=OperatingPoint(**tuning) if tuning else None,
        notes=tuple(data.get("notes") or ()),
    )
    return EvaluationReport(**fields)


def _titles() -> dict[str, str]:
    return {b.key: b.title for b in SETS} | {"own-zh": "deskbot's own zh data (20% held out)"}


def _f(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def table(results: dict[tuple[str, str], EvaluationReport]) -> list[str]:
    lines = [
        "| set (train → test) | model | accuracy | top-1 (macro-F1) | macro-F1 | in-scope acc | OOS recall "
        "| train s (CPU s) | × faster than DIET (CPU) | p50 / p99 ms | CPU p50 / p99 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for bench in SETS:
        diet = DIET.get(bench.key)
        rows = [(model, report) for (key, model), report in results.items() if key == bench.key]
        if not rows:
            continue
        if diet:
            lines.append(
                f"| {bench.title} | Rasa DIET | {_f(diet.get('accuracy'))} | {_f(diet.get('top1'))} "
                f"| {diet['macro_f1']:.3f} "
                f"| {_f(diet.get('in_scope'))} | {_f(diet.get('oos_recall'))} | {diet['train_s']:,.0f} | 1 "
                f"| {diet['p50']:.1f} / {diet['p99']:.1f} | – |"
            )
        for model, r in rows:
            # Our training is single-threaded, so its CPU time is its wall-clock time on an idle
            # machine; on a shared one the wall clock mostly measures the other jobs.
            cost = r.train_cpu_seconds or r.train_seconds
            speedup = f"{diet['train_s'] / max(cost, 1e-9):,.0f}" if diet else "–"
            lines.append(
                f"| {bench.title} | deskbot {model} | {r.accuracy:.3f} | {r.top1_accuracy:.3f} ({_f(r.top1_macro_f1)}) "
                f"| {r.macro_f1:.3f} "
                f"| {_f(r.in_scope_accuracy)} | {_f(r.oos_recall)} "
                f"| {r.train_seconds:.1f} ({r.train_cpu_seconds or 0.0:.1f}) | {speedup} "
                f"| {r.p50_ms:.2f} / {r.p99_ms:.2f} | {_f(r.p50_cpu_ms, 2)} / {_f(r.p99_cpu_ms, 2)} |"
            )
    return lines


def curve(results: dict[tuple[str, str], EvaluationReport]) -> list[str]:
    lines: list[str] = []
    for (key, model), report in results.items():
        if not report.oos_curve:
            continue
        title = _titles()[key]
        chosen = f"{report.threshold:.2f}, tuned on {report.threshold_source}"
        lines += [
            "",
            f"**{title}, deskbot {model}: in-scope accuracy vs out-of-scope recall on test "
            f"(threshold chosen: {chosen})**",
            "",
            "| threshold | in-scope accuracy | OOS recall |",
            "|---|---|---|",
        ]
        lines += [f"| {p.threshold:.2f} | {p.in_scope_accuracy:.3f} | {p.oos_recall:.3f} |" for p in report.oos_curve]
    return lines


def chinese(results: dict[tuple[str, str], EvaluationReport]) -> list[str]:
    lines = ["", "**Chinese**", "", "| set | model | accuracy | macro-F1 | top-1 | p50 / p99 ms | CPU p50 / p99 ms |"]
    lines.append("|---|---|---|---|---|---|---|")
    for (key, model), r in results.items():
        if key == "own-zh" or next((b.language for b in SETS if b.key == key), "") == "zh":
            title = _titles()[key]
            lines.append(
                f"| {title} | {model} | {r.accuracy:.3f} | {r.macro_f1:.3f} | {r.top1_accuracy:.3f} "
                f"| {r.p50_ms:.2f} / {r.p99_ms:.2f} | {_f(r.p50_cpu_ms, 2)} / {_f(r.p99_cpu_ms, 2)} |"
            )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--sets", default=",".join(b.key for b in SETS) + ",own-zh")
    parser.add_argument("--models", default="fast,accurate", help=f"comma-separated, of: {', '.join(MODELS)}")
    parser.add_argument("--json-out", type=Path, help="also write the raw reports here (JSON lines)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "--from-json", type=Path, help="print the tables from reports saved with --json-out instead of running"
    )
    args = parser.parse_args()
    if args.from_json:
        saved = {}
        for line in args.from_json.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            saved[(row["set"], row["model"])] = report_from_dict(row["report"])
        ordered = {k: saved[k] for b in [*SETS, BenchSet("own-zh", "", "", "", "")] for k in saved if k[0] == b.key}
        print("\n".join(table(ordered) + curve(ordered) + chinese(ordered)))
        return 0
    wanted = [s for s in args.sets.split(",") if s]
    models = [m for m in args.models.split(",") if m]
    unknown = set(wanted) - {b.key for b in SETS} - {"own-zh"}
    if unknown:
        parser.error(f"unknown sets {sorted(unknown)}")
    if set(models) - set(MODELS):
        parser.error(f"unknown models {sorted(set(models) - set(MODELS))}; known: {', '.join(MODELS)}")
    if any(key != "own-zh" for key in wanted) and not args.data_dir.is_dir():
        parser.error(f"{args.data_dir} does not exist: pass --data-dir")
    results: dict[tuple[str, str], EvaluationReport] = {}
    for key in wanted:
        for model in models:
            print(f"[{key} / {model}]", file=sys.stderr, flush=True)
            if key == "own-zh":
                report = own_chinese(model)
            else:
                bench = next(b for b in SETS if b.key == key)
                report = run_set(bench, args.data_dir, model, not args.quiet)
            results[(key, model)] = report
            if args.json_out:
                with args.json_out.open("a", encoding="utf-8") as out:
                    out.write(json.dumps({"set": key, "model": model, "report": report.to_dict()}) + "\n")
    print("\n".join(table(results) + curve(results) + chinese(results)))
    print(f"\nload average at the end (1/5/15 min, {os.cpu_count()} cores): {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
