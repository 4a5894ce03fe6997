"""The Rasa action server's tests need rasa-sdk: `make test` runs them in .venv-rasa.

In the core venv (no rasa-sdk) they are not collected, so the core suite stays free of
rasa-sdk's pins; `make test-rasa` (part of `make test`, hence of CI) runs them.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

if importlib.util.find_spec("rasa_sdk") is None:
    if os.environ.get("DESKBOT_TEST_REQUIRE_RASA") == "1":
        raise RuntimeError("DESKBOT_TEST_REQUIRE_RASA=1 but rasa-sdk is not installed (make test-rasa installs it)")
    collect_ignore_glob = ["test_*.py"]
else:
    from sanic import Sanic

    from bot.app import App
    from bot.config import load_settings
    from bot.rasa_actions.server import action_app
    from tests.conftest import _delete_keys, empty_tables, storage_environ
    from tests.fakes.rasa_nlu import RunningServer

    ROOT = Path(__file__).resolve().parents[2]

    @pytest.fixture(params=["sqlite+memory", "postgres+redis"])
    async def action_server(
        request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str
    ) -> AsyncIterator[tuple[RunningServer, App]]:
        """`deskbot rasa-actions` on a random port, over both storage/state pairs."""
        env = {"DESKBOT_CLASSIFIER__MODEL_PATH": str(tmp_path / "never-trained.npz")}
        sqlite = request.param == "sqlite+memory"
        env |= storage_environ(request, tmp_path, redis_prefix, server=not sqlite)
        settings = load_settings(ROOT / "config.yaml", environ=env)
        async with action_app(settings, create_schema=sqlite) as app:
            assert isinstance(app, Sanic)
            deskbot: App = app.ctx.deskbot
            if not sqlite:
                await empty_tables(deskbot.tickets.engine)  # type: ignore[attr-defined]
            server = RunningServer(app)
            await server.start()
            try:
                yield server, deskbot
            finally:
                await server.stop()
        if not sqlite:
            await _delete_keys(settings.state.redis_url, redis_prefix)
        assert not (tmp_path / "never-trained.npz").exists()
