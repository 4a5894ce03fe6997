"""The whole app on both backend pairs: SQLite + memory, PostgreSQL + Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.config import load_settings
from intents.classifier import BuiltinClassifier
from tests.conftest import _delete_keys, empty_tables, storage_environ

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite+memory", "postgres+redis"])
async def app(
    request: pytest.FixtureRequest, tmp_path: Path, trained_classifier: BuiltinClassifier, redis_prefix: str
) -> AsyncIterator[App]:
    sqlite = request.param == "sqlite+memory"
    env = {"DESKBOT_CLASSIFIER__MODEL_PATH": str(tmp_path / "unused.npz")}
    env |= storage_environ(request, tmp_path, redis_prefix, server=not sqlite)
    settings = load_settings(ROOT / "config.yaml", environ=env)
    async with build_app(settings, classifier=trained_classifier, create_schema=sqlite) as deskbot:
        if not sqlite:
            await empty_tables(deskbot.tickets.engine)  # type: ignore[attr-defined]
        yield deskbot
    if not sqlite:
        await _delete_keys(settings.state.redis_url, redis_prefix)
