"""Accounts' and canned responses' records, run on SQLite and PostgreSQL (``ticket_store``).

Mostly exercised through ``desk/accounts.py`` (tests/web/api/test_auth.py); here: what the
store itself promises — duplicates become ``Conflict``, sweeps spare what still matters,
revoked tokens stay revoked.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from common.errors import Conflict
from storage.tickets import SqlTicketStore

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


async def test_a_second_canned_response_with_the_same_title_is_a_conflict(ticket_store: SqlTicketStore) -> None:
    async with ticket_store.session() as tx:
        author = await tx.add_agent("ana@shop.example", "Ana")
        await tx.save_canned("Greeting", "Hello!", author.id, NOW)
    with pytest.raises(Conflict, match="Greeting"):
        async with ticket_store.session() as tx:
            await tx.save_canned("Greeting", "Hi!", author.id, NOW)
    async with ticket_store.session() as tx:
        assert [c.text for c in await tx.canned_responses()] == ["Hello!"]


@pytest.mark.parametrize("ticket_store", ["postgres"], indirect=True)
async def test_canned_titles_racing_in_two_transactions_end_in_one_conflict(ticket_store: SqlTicketStore) -> None:
    """Neither transaction sees the other's row when it checks; the unique title decides."""
    async with ticket_store.session() as tx:
        author_id = (await tx.add_agent("ana@shop.example", "Ana")).id
    first_saved, second_saving = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with ticket_store.session() as tx:
            await tx.save_canned("Greeting", "first", author_id, NOW)
            first_saved.set()
            await second_saving.wait()
            await asyncio.sleep(0.3)  # the second INSERT now waits for this commit

    async def second() -> None:
        await first_saved.wait()
        async with ticket_store.session() as tx:
            second_saving.set()
            await tx.save_canned("Greeting", "second", author_id, NOW)

    results = await asyncio.wait_for(asyncio.gather(first(), second(), return_exceptions=True), 20)
    assert results[0] is None
    assert isinstance(results[1], Conflict), results[1]
    async with ticket_store.session() as tx:
        assert [c.text for c in await tx.canned_responses()] == ["first"]


async def test_sweeping_throttles_spares_locked_recent_and_current_keys(ticket_store: SqlTicketStore) -> None:
    old = NOW - timedelta(hours=1)
    async with ticket_store.session() as tx:
        for key, locked_until in [("ip:old", None), ("ip:locked", NOW + timedelta(minutes=5)),
                                  ("ip:current", None), ("ip:lock-over", NOW - timedelta(minutes=1))]:
            row = await tx.throttle_for(key, old)
            row.locked_until = locked_until
        await tx.throttle_for("ip:recent", NOW)
    async with ticket_store.session() as tx:
        await tx.sweep_throttles(NOW - timedelta(minutes=15), NOW, keep=["ip:current"])
    async with ticket_store.session() as tx:
        left = await tx.login_throttles(["ip:old", "ip:locked", "ip:current", "ip:lock-over", "ip:recent"])
        assert sorted(r.key for r in left) == ["ip:current", "ip:locked", "ip:recent"]


async def test_throttle_for_keeps_an_existing_counter(ticket_store: SqlTicketStore) -> None:
    async with ticket_store.session() as tx:
        (await tx.throttle_for("account:ana@shop.example", NOW)).failures = 3
    async with ticket_store.session() as tx:
        row = await tx.throttle_for("account:ana@shop.example", NOW + timedelta(minutes=1))
        assert (row.failures, row.window_started_at) == (3, NOW)


async def test_revoked_api_tokens_are_not_live(ticket_store: SqlTicketStore) -> None:
    async with ticket_store.session() as tx:
        agent = await tx.add_agent("ana@shop.example", "Ana")
        for digest in ("a" * 64, "b" * 64):
            await tx.add_api_token(token_hash=digest, agent_id=agent.id, prefix=digest[:12], created_at=NOW)
    async with ticket_store.session() as tx:
        found = await tx.live_api_token("a" * 64)
        assert found is not None and found[1].email == "ana@shop.example"
        assert await tx.revoke_api_tokens(agent.id, NOW) == 2
    async with ticket_store.session() as tx:
        assert await tx.live_api_token("a" * 64) is None
        assert await tx.revoke_api_tokens(agent.id, NOW) == 0


async def test_agent_sessions_end_by_token_by_agent_and_by_expiry(ticket_store: SqlTicketStore) -> None:
    async with ticket_store.session() as tx:
        ana = await tx.add_agent("ana@shop.example", "Ana")
        for digest, expires in [("a" * 64, NOW + timedelta(hours=1)), ("b" * 64, NOW + timedelta(hours=1)),
                                ("c" * 64, NOW - timedelta(seconds=1))]:
            await tx.open_agent_session(token_hash=digest, agent_id=ana.id, csrf_token="csrf", ip=None,
                                        user_agent=None, now=NOW - timedelta(hours=2), expires_at=expires)
    async with ticket_store.session() as tx:
        await tx.sweep_agent_sessions(NOW)
        await tx.end_agent_session_of_token("a" * 64)
    async with ticket_store.session() as tx:
        assert await tx.agent_session("a" * 64) is None
        assert await tx.agent_session("c" * 64) is None
        found = await tx.agent_session("b" * 64)
        assert found is not None and found[1].id == ana.id
        await tx.end_agent_sessions(ana.id)
    async with ticket_store.session() as tx:
        assert await tx.agent_session("b" * 64) is None
