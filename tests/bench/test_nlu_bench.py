"""bench/nlu.py on small synthetic sets laid out like the public ones (no shared data needed)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "intents" / "data"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_nlu", ROOT / "bench" / "nlu.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_nlu"] = module
    spec.loader.exec_module(module)
    return module


def _csv(path: Path, rows: list[tuple[str, str]]) -> None:
    path.write_text("text,intent\n" + "".join(f"{t},{i}\n" for t, i in rows), encoding="utf-8")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A CLINC150-shaped folder: train without off-topic rows, val and test with them."""
    intents = {
        "order_status": ["where is my order {}", "track parcel {}", "has order {} shipped", "status of order {}"],
        "refund": ["i want a refund for {}", "money back for {}", "refund order {} please", "return {} for a refund"],
        "greet": ["hello {}", "hi there {}", "good morning {}", "hey {}"],
    }
    off_topic = [line.split(",")[0] for line in (DATA / "out_of_scope.csv").read_text().splitlines()[1:]]
    train = [(p.format(w), i) for i, ps in intents.items() for p in ps for w in ("one", "two", "three", "four")]
    val = [(p.format("five"), i) for i, ps in intents.items() for p in ps] + [(t, "out_of_scope") for t in off_topic[::2]]
    test = [(p.format("six"), i) for i, ps in intents.items() for p in ps] + [(t, "out_of_scope") for t in off_topic[1::2]]
    folder = tmp_path / "clinc150"
    folder.mkdir()
    _csv(folder / "train-3000.csv", train)
    _csv(folder / "val.csv", val)
    _csv(folder / "test.csv", test)
    return tmp_path


def test_bench_prints_the_table_and_the_trade_off_curve(
    bench: ModuleType, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "reports.jsonl"
    argv = ["nlu.py", "--data-dir", str(data_dir), "--sets", "clinc150", "--models", "fast", "--quiet"]
    monkeypatch.setattr(sys, "argv", [*argv, "--json-out", str(saved)])
    assert bench.main() == 0
    out = capsys.readouterr().out
    assert "| CLINC150 train-3000 (+OOS) | Rasa DIET |" in out
    assert "| CLINC150 train-3000 (+OOS) | deskbot fast |" in out
    assert "tuned on val" in out and "| threshold | in-scope accuracy | OOS recall |" in out
    row = json.loads(saved.read_text().splitlines()[0])
    assert row["set"] == "clinc150" and row["report"]["threshold_source"] == "val"

    monkeypatch.setattr(sys, "argv", ["nlu.py", "--from-json", str(saved)])
    assert bench.main() == 0
    again = capsys.readouterr().out
    assert again.strip() == out.split("\n\nload average")[0].strip()


def test_bench_refuses_a_missing_data_dir(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["nlu.py", "--data-dir", str(tmp_path / "nowhere"), "--sets", "clinc150"])
    with pytest.raises(SystemExit):
        bench.main()
