"""The ``deskbot`` command as a shop owner or agent runs it: real processes, one database."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import build_app
from bot.config import load_settings
from intents.classifier import BuiltinClassifier
from tests.cli_runner import run_deskbot
from tests.factories import Chat

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path: Path, trained_model_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESKBOT_")},
        "DESKBOT_STORAGE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "DESKBOT_CLASSIFIER__MODEL_PATH": str(trained_model_path),
        "DESKBOT_LOGGING__LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def deskbot(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = run_deskbot(env, "--config", str(ROOT / "config.yaml"), *args)
    if check:
        assert done.returncode == 0, done.stderr
    return done


async def test_agent_works_a_ticket_from_the_terminal(
    env: dict[str, str], trained_classifier: BuiltinClassifier
) -> None:
    deskbot(env, "migrate")
    imported = deskbot(env, "orders", "import", str(ROOT / "examples/shop/orders.csv"))
    assert "imported 25 new" in imported.stdout
    settings = load_settings(ROOT / "config.yaml", environ=env)
    async with build_app(settings, classifier=trained_classifier) as app:
        chat = Chat(app, "web-visitor-7")
        await chat.say("I want to talk to a human, my parcel is lost")

    listed = json.loads(deskbot(env, "tickets", "list", "--json").stdout)
    assert len(listed) == 1
    ticket = listed[0]
    assert ticket["kind"] == "handoff" and ticket["status"] == "new" and ticket["channel"] == "rest"
    assert ticket["customer"]["identities"] == [{"channel": "rest", "id": "web-visitor-7"}]
    assert {"number", "priority", "order_id", "fields"} <= ticket.keys()
    number = ticket["number"]

    deskbot(env, "tickets", "reply", number, "Hello, I'm on it.")
    shown = json.loads(deskbot(env, "tickets", "show", number, "--json").stdout)
    assert [m["author"] for m in shown["messages"]][-1] == "agent"
    assert "owner_changed" in [e["kind"] for e in shown["events"]]
    resolved = deskbot(env, "tickets", "resolve", number)
    assert "status resolved" in resolved.stdout

    async with build_app(settings, classifier=trained_classifier) as app:
        inbox = await Chat(app, "web-visitor-7").inbox()
    assert inbox[0] == "Hello, I'm on it." and "rate" in inbox[1]

    assert json.loads(deskbot(env, "tickets", "list", "--status", "new", "--json").stdout) == []


def test_the_console_script_runs_as_a_process(env: dict[str, str]) -> None:
    """The other tests run commands in this process (``tests/cli_runner.py``); this one starts
    the console script as a user does: its entry point, exit status and output."""
    deskbot(env, "migrate")
    script = Path(sys.executable).with_name("deskbot")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli.main"]
    run = [*command, "--config", str(ROOT / "config.yaml")]
    listed = subprocess.run([*run, "tickets", "list", "--json"], env=env, cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert listed.returncode == 0 and json.loads(listed.stdout) == [], listed.stderr
    missing = subprocess.run([*run, "tickets", "show", "T-9999"], env=env, cwd=ROOT, capture_output=True, text=True,
                             timeout=120)
    assert missing.returncode == 2 and missing.stderr.strip() == "deskbot: ticket T-9999 not found", missing.stderr


def test_errors_are_one_clear_line(env: dict[str, str]) -> None:
    deskbot(env, "migrate")
    missing = deskbot(env, "tickets", "show", "T-9999", check=False)
    assert missing.returncode == 2 and "ticket T-9999 not found" in missing.stderr
    bad = deskbot({**env, "DESKBOT_WEB__PORT": "eighty"}, "config", check=False)
    assert bad.returncode == 2 and "web.port = 'eighty'" in bad.stderr
    assert "Traceback" not in missing.stderr + bad.stderr


def test_config_prints_masked_settings(env: dict[str, str]) -> None:
    shown = deskbot({**env, "DESKBOT_SECRETS__REST_TOKEN": "hunter2"}, "config").stdout
    assert json.loads(shown)["secrets"] == {"rest_token": "********"}


def test_test_nlu_prints_json(env: dict[str, str], tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    test = tmp_path / "test.csv"
    rows = {"greet": ["hi", "hello", "hey there", "good morning", "hiya"],
            "goodbye": ["bye", "see you", "goodbye", "later", "cya"]}
    train.write_text("text,intent\n" + "".join(f"{t},{i}\n" for i, ts in rows.items() for t in ts), encoding="utf-8")
    test.write_text("text,intent\nhello there,greet\nbye bye,goodbye\n", encoding="utf-8")
    out = deskbot(env, "test-nlu", "--train", str(train), "--test", str(test), "--json").stdout
    report = json.loads(out.strip().splitlines()[-1])
    assert {"accuracy", "macro_f1", "train_seconds", "p50_ms", "p99_ms"} <= report.keys()


@pytest.fixture
def store_env(tmp_path: Path) -> dict[str, str]:
    """For commands that need only the database (migrate, orders import): no model, logs at INFO."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESKBOT_")},
        "DESKBOT_STORAGE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "DESKBOT_LOGGING__LEVEL": "INFO",
        "PYTHONPATH": str(ROOT),
    }


def test_migrate_logs_the_migration_not_alembics_chatter(store_env: dict[str, str]) -> None:
    from storage.migrate import head

    first = deskbot(store_env, "migrate")  # stderr is a pipe: `logging.format: auto` writes JSON
    events = [json.loads(line) for line in first.stderr.splitlines()]
    said = [(e["logger"], e["event"]) for e in events]
    assert ("deskbot.migrate", f"migrated to revision {head()} from an empty database") in said
    assert any(logger == "alembic.runtime.migration" and event.startswith("Running upgrade") for logger, event in said)
    assert not [e for e in said if e[1].startswith(("setup plugin", "Context impl", "Will assume"))], said
    assert {e["level"] for e in events} == {"info"}

    again = deskbot(store_env, "migrate")
    assert again.stderr == "" and "up to date" in again.stdout  # nothing happened, nothing logged


def test_text_format_when_configured(store_env: dict[str, str]) -> None:
    done = deskbot({**store_env, "DESKBOT_LOGGING__FORMAT": "text"}, "migrate")
    assert re.search(r"^\d\d:\d\d:\d\d INFO  deskbot\.migrate migrated to revision \w+ from an empty database$",
                     done.stderr, re.M), done.stderr
    assert "Context impl" not in done.stderr and "{" not in done.stderr


def test_orders_import_as_of_moves_the_dates_to_today(store_env: dict[str, str]) -> None:
    demo = str(ROOT / "examples/shop/orders.csv")
    deskbot(store_env, "migrate")
    as_of = datetime.now(UTC).date() - timedelta(days=9)
    first = deskbot(store_env, "orders", "import", demo, "--as-of", as_of.isoformat())
    assert "imported 25 new and 0 updated orders" in first.stdout
    assert f"dates moved by +9 days (as of {as_of} -> {as_of + timedelta(days=9)} UTC)" in first.stdout
    again = deskbot(store_env, "orders", "import", demo, "--as-of", as_of.isoformat())
    assert "imported 0 new and 25 updated orders" in again.stdout
    plain = deskbot(store_env, "orders", "import", demo)
    assert plain.stdout.strip() == f"imported 0 new and 25 updated orders from {demo}"


@pytest.mark.parametrize("bad", ["2026-13-01", "yesterday", "23/11/2026", "2026-11-23T10:00"])
def test_orders_import_rejects_an_as_of_that_is_not_a_day(store_env: dict[str, str], bad: str) -> None:
    done = deskbot(store_env, "orders", "import", str(ROOT / "examples/shop/orders.csv"), "--as-of", bad, check=False)
    assert done.returncode == 2 and done.stdout == ""
    assert f"argument --as-of: {bad!r} is not a date: give a day as YYYY-MM-DD" in done.stderr
    assert "Traceback" not in done.stderr
