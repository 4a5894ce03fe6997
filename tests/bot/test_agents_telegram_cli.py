"""``deskbot agents link-telegram``: who may act from the Telegram agents' group."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bot.cli.agents_telegram import link_telegram, unlink_telegram
from common.errors import DeskbotError
from storage.telegram_links import agent_by_telegram_user
from storage.tickets import SqlTicketStore
from tests.cli_runner import run_deskbot

ROOT = Path(__file__).resolve().parents[2]


async def test_link_finds_the_agent_by_telegram_id_and_unlink_forgets_it(ticket_store: SqlTicketStore) -> None:
    async with ticket_store.session() as tx:
        await tx.add_agent("sam@shop.example", "Sam")
    await link_telegram(ticket_store, "Sam@Shop.example", "424242")
    async with ticket_store.session() as tx:
        agent = await agent_by_telegram_user(tx, 424242)
        assert agent is not None and agent.email == "sam@shop.example"
    await unlink_telegram(ticket_store, "sam@shop.example")
    async with ticket_store.session() as tx:
        assert await agent_by_telegram_user(tx, 424242) is None


async def test_one_telegram_account_belongs_to_one_agent(ticket_store: SqlTicketStore) -> None:
    await link_telegram(ticket_store, "sam@shop.example", "424242", name="Sam")
    with pytest.raises(DeskbotError, match="already linked to sam@shop.example"):
        await link_telegram(ticket_store, "kim@shop.example", "424242", name="Kim")
    await link_telegram(ticket_store, "sam@shop.example", "424242")  # relinking the same is fine


async def test_bad_ids_and_unknown_agents_are_refused(ticket_store: SqlTicketStore) -> None:
    for bad in ("", "-5", "12a", "0", str(2**60)):
        with pytest.raises(DeskbotError, match="numeric Telegram user id"):
            await link_telegram(ticket_store, "sam@shop.example", bad, name="Sam")
    with pytest.raises(DeskbotError, match="--name"):
        await link_telegram(ticket_store, "nobody@shop.example", "77")
    async with ticket_store.session() as tx:
        assert await tx.agent_by_email("nobody@shop.example") is None
        assert await tx.agent_by_email("sam@shop.example") is None


def test_the_command_links_and_reports_conflicts(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DESKBOT_")},
        "DESKBOT_STORAGE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "DESKBOT_LOGGING__LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }

    def deskbot(*args: str) -> subprocess.CompletedProcess[str]:
        return run_deskbot(env, "--config", str(ROOT / "config.yaml"), *args)

    assert deskbot("migrate").returncode == 0
    done = deskbot("agents", "link-telegram", "sam@shop.example", "424242", "--name", "Sam")
    assert done.returncode == 0, done.stderr
    assert "sam@shop.example can now act from Telegram as user 424242" in done.stdout
    clash = deskbot("agents", "link-telegram", "kim@shop.example", "424242", "--name", "Kim")
    assert clash.returncode == 2
    assert clash.stderr.strip() == "deskbot: Telegram user 424242 is already linked to sam@shop.example; unlink it first"
