"""``deskbot agents add|token|list|link-telegram`` as real processes on one database."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from bot.app import build_app
from bot.config import load_settings
from bot.web.app import create_web_app
from intents.classifier import BuiltinClassifier
from tests.cli_runner import run_deskbot

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path: Path, trained_model_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESKBOT_")},
        "DESKBOT_STORAGE__URL": f"sqlite+aiosqlite:///{tmp_path / 'agents.db'}",
        "DESKBOT_CLASSIFIER__MODEL_PATH": str(trained_model_path),
        "DESKBOT_LOGGING__LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def deskbot(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return run_deskbot(env, "--config", str(ROOT / "config.yaml"), *args, stdin=stdin)


async def test_add_an_agent_issue_a_token_and_use_it(env: dict[str, str], trained_classifier: BuiltinClassifier) -> None:
    added = deskbot(env, "agents", "add", "Sam@Example.com", "--name", "Sam Lee", "--role", "admin",
                    stdin="a long password\n")
    assert added.returncode == 0, added.stderr
    assert "added admin sam@example.com" in added.stdout and "a long password" not in added.stdout
    again = deskbot(env, "agents", "add", "sam@example.com", "--name", "Sam", stdin="a long password\n")
    assert again.returncode == 2 and "already exists" in again.stderr
    short = deskbot(env, "agents", "add", "kim@example.com", "--name", "Kim", stdin="short\n")
    assert short.returncode == 2 and "at least 8 characters" in short.stderr
    empty = deskbot(env, "agents", "add", "kim@example.com", "--name", "Kim", stdin="")
    assert empty.returncode == 2 and "password" in empty.stderr
    issued = deskbot(env, "agents", "token", "sam@example.com")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    assert token.startswith("dsk_") and "shown only once" in issued.stderr
    assert deskbot(env, "agents", "token", "nobody@example.com").returncode == 2
    linked = deskbot(env, "agents", "link-telegram", "sam@example.com", "424242")
    assert linked.returncode == 0 and "424242" in linked.stdout
    assert deskbot(env, "agents", "link-telegram", "sam@example.com", "not-a-number").returncode == 2
    listed = deskbot(env, "agents", "list")
    assert "admin" in listed.stdout and "sam@example.com" in listed.stdout and "telegram:424242" in listed.stdout

    settings = load_settings(ROOT / "config.yaml", environ=env)
    async with build_app(settings, classifier=trained_classifier) as app:
        transport = httpx.ASGITransport(app=create_web_app(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200 and me.json()["email"] == "sam@example.com"
            assert me.json()["role"] == "admin"
            changed = deskbot(env, "agents", "password", "sam@example.com", stdin="a new long password\n")
            assert changed.returncode == 0 and "sessions have ended" in changed.stdout
            login = await client.get("/desk/login")
            csrf = login.text.split('name="csrf_token" value="')[1].split('"')[0]
            answer = await client.post("/desk/login", data={"email": "sam@example.com", "csrf_token": csrf,
                                                            "password": "a new long password"})
            assert answer.status_code == 303
            revoked = deskbot(env, "agents", "revoke-tokens", "sam@example.com")
            assert revoked.returncode == 0 and "revoked 1 API token of sam@example.com" in revoked.stdout
            refused = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert refused.status_code == 401
        async with app.tickets.session() as tx:
            agent = await tx.agent_by_email("sam@example.com")
            assert agent is not None and agent.telegram_user_id == "424242"
            assert agent.password_hash is not None and agent.password_hash.startswith("$argon2id$")
