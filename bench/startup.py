"""What building an app costs, phase by phase, and what the two start-up savings buy.

Every process start, every knowledge reload and every test that builds an app pays for:
reading ``config.yaml``, reading and indexing the shop's catalog and FAQ, loading the
response templates, opening the store and building the web app. Printed, all in one process
on the demo shop (examples/shop) with the fast classifier trained beforehand (training is
measured by bench/nlu.py, not here):

* YAML: the shop's files and the templates parsed with PyYAML's pure-Python ``SafeLoader``
  (the baseline) and with ``common.yaml_files`` (libyaml's ``CSafeLoader`` when PyYAML has it);
* knowledge: ``knowledge.indexes.indexed_knowledge`` with an empty memo (parse + index, the
  baseline) and with the same files already indexed (hash the files, reuse);
* phases of one build: ``load_settings``, ``build_app`` (memo warm), ``create_web_app``, close.

Each figure is the median of ``--repeat`` runs. Run: ``.venv/bin/python bench/startup.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# bench/ must not shadow the standard library: import from the project root only.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from bot.app import build_app  # noqa: E402
from bot.config import Settings, load_settings  # noqa: E402
from bot.web.app import create_web_app  # noqa: E402
from common.yaml_files import SafeLoader, safe_load  # noqa: E402
from handlers.responses import DEFAULT_DIR as RESPONSES_DIR  # noqa: E402
from intents.classifier import load_or_train  # noqa: E402
from knowledge import indexes  # noqa: E402


def median_ms(run: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def settings_for(tmp: Path) -> Settings:
    return load_settings(
        ROOT / "config.yaml",
        environ={
            "DESKBOT_STORAGE__URL": f"sqlite+aiosqlite:///{tmp / 'startup.db'}",
            "DESKBOT_CLASSIFIER__MODEL_PATH": str(tmp / "model.npz"),
            "DESKBOT_LOGGING__LEVEL": "WARNING",
        },
    )


def bench_yaml(settings: Settings, repeat: int) -> None:
    texts = [p.read_text(encoding="utf-8") for p in (settings.shop.catalog, settings.shop.faq)]
    texts += [p.read_text(encoding="utf-8") for p in sorted(RESPONSES_DIR.glob("*.yml"))]
    assert [safe_load(t) for t in texts] == [yaml.load(t, Loader=yaml.SafeLoader) for t in texts]  # noqa: S506
    pure = median_ms(lambda: [yaml.load(t, Loader=yaml.SafeLoader) for t in texts], repeat)  # noqa: S506
    used = median_ms(lambda: [safe_load(t) for t in texts], repeat)
    size = sum(len(t.encode()) for t in texts) / 1024
    print(f"YAML, {len(texts)} files, {size:.0f} KiB (catalog, FAQ, response templates):")
    print(f"  pure-Python SafeLoader (baseline)  {pure:8.1f} ms")
    print(f"  {SafeLoader.__name__:<33}  {used:8.1f} ms   {pure / used:5.1f}x faster")


def bench_knowledge(settings: Settings, repeat: int) -> None:
    def miss() -> None:
        indexes._memo.clear()
        indexes.indexed_knowledge(settings.shop.catalog, settings.shop.faq, (), None)

    def hit() -> None:
        indexes.indexed_knowledge(settings.shop.catalog, settings.shop.faq, (), None)

    cold = median_ms(miss, repeat)
    warm = median_ms(hit, repeat)
    print("knowledge (catalog + FAQ parsed, validated, indexed):")
    print(f"  memo empty (baseline)              {cold:8.1f} ms")
    print(f"  same files already indexed         {warm:8.2f} ms   {cold / warm:5.0f}x faster")


async def bench_phases(tmp: Path, repeat: int) -> None:
    samples: dict[str, list[float]] = {"load_settings": [], "build_app": [], "create_web_app": [], "close": []}
    for n in range(repeat + 1):
        t0 = time.perf_counter()
        settings = settings_for(tmp)
        t1 = time.perf_counter()
        manager = build_app(settings, create_schema=True)
        app = await manager.__aenter__()
        t2 = time.perf_counter()
        create_web_app(app)
        t3 = time.perf_counter()
        await manager.__aexit__(None, None, None)
        t4 = time.perf_counter()
        if n == 0:
            continue  # the first build fills the knowledge memo and the store's file
        for name, (a, b) in zip(samples, ((t0, t1), (t1, t2), (t2, t3), (t3, t4)), strict=True):
            samples[name].append((b - a) * 1000)
    print("one app build (demo shop, fast classifier, SQLite + memory state, median):")
    total = 0.0
    for name, values in samples.items():
        value = statistics.median(values)
        total += value
        print(f"  {name:<33}  {value:8.1f} ms")
    print(f"  {'total':<33}  {total:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="deskbot-startup-") as name:
        tmp = Path(name)
        settings = settings_for(tmp)
        # a trained model on disk: the builds below load it, never train
        load_or_train(settings.classifier.data_dir, settings.classifier.model_path, settings.classifier)
        print(f"PyYAML {yaml.__version__}, libyaml: {yaml.__with_libyaml__}; {args.repeat} runs each\n")
        bench_yaml(settings, args.repeat)
        bench_knowledge(settings, args.repeat)
        asyncio.run(bench_phases(tmp, args.repeat))


if __name__ == "__main__":
    main()
