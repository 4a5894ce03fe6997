"""``deskbot customers export|erase`` and ``deskbot retention run`` as real processes, and the
retention schedule that ``deskbot serve`` runs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import RetentionConfig, load_settings
from bot.jobs.retention import retention_loop, retention_schedule
from storage.models import Author, Customer, DeliveryStatus, Direction, Message, Owner
from storage.tickets import SqlTicketStore
from tests.cli_runner import run_deskbot

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESKBOT_")},
        "DESKBOT_STORAGE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "DESKBOT_LOGGING__LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


def deskbot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_deskbot(env, "--config", str(ROOT / "config.yaml"), *args)


async def seed(url: str, written: datetime) -> int:
    store = SqlTicketStore.from_url(url)
    try:
        async with store.session() as tx:
            who, _ = await tx.resolve_customer("webchat", "visitor-9", chat_id="visitor-9", display_name="Gina Rossi")
            who.email = "gina@example.com"
            (await tx.identities(who.id))[0].created_at = written
            tx.db.add(Message(customer_id=who.id, channel="webchat", chat_id="visitor-9", direction=Direction.INBOUND,
                              author=Author.CUSTOMER, text="my address is 5 Via Roma", payload={},
                              status=DeliveryStatus.RECEIVED, created_at=written))
            return who.id
    finally:
        await store.close()


async def customer(url: str, customer_id: int) -> tuple[Customer | None, list[str]]:
    store = SqlTicketStore.from_url(url)
    try:
        async with store.session() as tx:
            row = await tx.get_customer(customer_id)
            texts = [m.text for m in await tx.conversation(customer_id)]
            return row, texts
    finally:
        await store.close()


async def test_export_and_erase_from_the_terminal(env: dict[str, str], tmp_path: Path) -> None:
    assert deskbot(env, "migrate").returncode == 0
    url = env["DESKBOT_STORAGE__URL"]
    cid = await seed(url, datetime.now(UTC))
    exported = deskbot(env, "customers", "export", str(cid))
    assert exported.returncode == 0, exported.stderr
    data = json.loads(exported.stdout)
    assert data["customer"]["email"] == "gina@example.com" and data["messages"][0]["text"] == "my address is 5 Via Roma"
    to_file = deskbot(env, "customers", "export", str(cid), "-o", str(tmp_path / "gina.json"))
    assert to_file.returncode == 0 and json.loads((tmp_path / "gina.json").read_text()) == data

    refused = deskbot(env, "customers", "erase", str(cid))
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert (await customer(url, cid))[1] == ["my address is 5 Via Roma"]

    erased = deskbot(env, "customers", "erase", str(cid), "--yes")
    assert erased.returncode == 0, erased.stderr
    assert f"customer {cid} erased: 1 messages" in erased.stdout
    row, texts = await customer(url, cid)
    assert row is not None and row.email is None and row.display_name is None and texts == ["[erased]"]

    missing = deskbot(env, "customers", "export", "424242")
    assert missing.returncode == 2 and "customer 424242 not found" in missing.stderr


async def test_retention_run_from_the_terminal(env: dict[str, str]) -> None:
    assert deskbot(env, "migrate").returncode == 0
    url = env["DESKBOT_STORAGE__URL"]
    cid = await seed(url, datetime.now(UTC) - timedelta(days=40))
    nothing = deskbot(env, "retention", "run")
    assert nothing.returncode == 0 and "nothing to do" in nothing.stdout
    assert (await customer(url, cid))[1] == ["my address is 5 Via Roma"]
    done = deskbot(env | {"DESKBOT_RETENTION__DAYS__WEBCHAT": "30"}, "retention", "run")
    assert done.returncode == 0, done.stderr
    assert "webchat: 1 messages, 0 tickets, 1 identities anonymised (older than 30 days)" in done.stdout
    assert "anonymised: 1" in done.stdout
    row, texts = await customer(url, cid)
    assert texts == ["[erased]"] and row is not None and row.display_name is None and row.owner == Owner.BOT
    bad = deskbot(env | {"DESKBOT_RETENTION__DAYS__WEBCHAT": "-3"}, "retention", "run")
    assert bad.returncode == 2 and "retention.days.webchat" in bad.stderr


async def test_the_schedule_runs_until_the_server_stops(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'r.db'}"
    store = SqlTicketStore.from_url(url)
    await store.create_schema()
    await store.close()
    cid = await seed(url, datetime(2026, 1, 1, tzinfo=UTC))
    store = SqlTicketStore.from_url(url)
    try:
        now = datetime(2026, 6, 1, tzinfo=UTC)
        config = RetentionConfig(days={"webchat": 30}, interval_minutes=0.0001)
        results = await retention_loop(store, config, lambda: now, runs=3)
        assert [sum(r.messages.values()) for r in results] == [1, 0, 0]
        async with retention_schedule(store, config, lambda: now) as task:
            assert task is not None
            await asyncio.sleep(0.05)
        assert task.cancelled() or task.done()
        async with retention_schedule(store, RetentionConfig(days={}), lambda: now) as none:
            assert none is None
        async with retention_schedule(store, RetentionConfig(days={"rest": 3}, interval_minutes=0), lambda: now) as off:
            assert off is None
    finally:
        await store.close()
    assert (await customer(url, cid))[1] == ["[erased]"]


def test_retention_config_is_validated() -> None:
    settings = load_settings(ROOT / "config.yaml", environ={"DESKBOT_RETENTION__DAYS__TELEGRAM": "730"})
    assert settings.retention.days == {"telegram": 730}
