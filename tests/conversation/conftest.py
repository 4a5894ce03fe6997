"""The whole app on both backend pairs: SQLite + memory, PostgreSQL + Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.config import load_settings
from intents.classifier import BuiltinClassifier
from storage.models import Base
from tests.conftest import _delete_keys

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite+memory", "postgres+redis"])
async def app(
    request: pytest.FixtureRequest, tmp_path: Path, trained_classifier: BuiltinClassifier, redis_prefix: str
) -> AsyncIterator[App]:
    env = {"DESKBOT_CLASSIFIER__MODEL_PATH": str(tmp_path / "unused.npz")}
    if request.param == "sqlite+memory":
        env["DESKBOT_STORAGE__URL"] = f"sqlite+aiosqlite:///{tmp_path / 'deskbot.db'}"
    else:
        env["DESKBOT_STORAGE__URL"] = request.getfixturevalue("postgres_database")
        redis_url = request.getfixturevalue("redis_server")
        env |= {
            "DESKBOT_STATE__BACKEND": "redis",
            "DESKBOT_STATE__REDIS_URL": redis_url,
            "DESKBOT_STATE__KEY_PREFIX": redis_prefix,
            "DESKBOT_EVENTS__BACKEND": "redis",
            "DESKBOT_EVENTS__REDIS_URL": redis_url,
        }
    settings = load_settings(ROOT / "config.yaml", environ=env)
    sqlite = request.param == "sqlite+memory"
    async with build_app(settings, classifier=trained_classifier, create_schema=sqlite) as deskbot:
        if not sqlite:
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            async with deskbot.tickets.engine.begin() as conn:  # type: ignore[attr-defined]
                await conn.exec_driver_sql(f"TRUNCATE TABLE {tables} RESTART IDENTITY CASCADE")
        yield deskbot
    if not sqlite:
        await _delete_keys(settings.state.redis_url, redis_prefix)
