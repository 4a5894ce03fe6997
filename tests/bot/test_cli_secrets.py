"""Item 11: in webhook mode ``deskbot tickets reply`` and ``tickets show`` refused to run unless
the webhook secret was also set in that shell. Only ``serve`` (which receives the webhook)
needs it; commands that read or write the store run without it. Real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app import build_app
from bot.config import load_settings
from intents.classifier import BuiltinClassifier
from tests.factories import Chat

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:" + "A" * 35  # the shape of a bot token; no request is made with it


@pytest.fixture
def env(tmp_path: Path, trained_model_path: Path) -> dict[str, str]:
    """An agent's shell next to a webhook deployment: the bot token, no webhook secret."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESKBOT_")},
        "DESKBOT_STORAGE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "DESKBOT_CLASSIFIER__MODEL_PATH": str(trained_model_path),
        "DESKBOT_LOGGING__LEVEL": "WARNING",
        "DESKBOT_CHANNELS__TELEGRAM__ENABLED": "true",
        "DESKBOT_CHANNELS__TELEGRAM__MODE": "webhook",
        "DESKBOT_SECRETS__TELEGRAM_TOKEN": TOKEN,
        "DESKBOT_WEB__PORT": "1",  # never reached: serve must stop before
        "PYTHONPATH": str(ROOT),
    }


def deskbot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli.main", "--config", str(ROOT / "config.yaml"), *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )


async def test_store_commands_run_without_the_webhook_secret(
    env: dict[str, str], trained_classifier: BuiltinClassifier
) -> None:
    assert deskbot(env, "migrate").returncode == 0
    settings = load_settings(ROOT / "config.yaml", environ=env)
    async with build_app(settings, classifier=trained_classifier) as app:
        await Chat(app, "web-visitor-8").say("I want to talk to a human, my parcel is lost")

    listed = deskbot(env, "tickets", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    number = json.loads(listed.stdout)[0]["number"]
    replied = deskbot(env, "tickets", "reply", number, "Hello, I'm on it.")
    assert replied.returncode == 0, replied.stderr
    shown = deskbot(env, "tickets", "show", number, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["messages"][-1]["text"] == "Hello, I'm on it."
    config = deskbot(env, "config")
    assert config.returncode == 0, config.stderr


def test_serving_the_webhook_still_needs_the_secret(env: dict[str, str]) -> None:
    served = deskbot(env, "serve")
    assert served.returncode == 2
    assert "DESKBOT_SECRETS__TELEGRAM_WEBHOOK_SECRET" in served.stderr and "serve" in served.stderr
