"""The StateStore contract, run over every implementation (memory, Redis)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from common.errors import StorageError
from storage.redis_state import RedisStateStore
from storage.state import KeyBuilder, StateKey, StateStore

TTL = 0.2  # seconds; short enough to wait for, long enough not to expire mid-test
ALICE, BOB = StateKey(customer_id=1), StateKey(customer_id=2)


class TestStateStoreContract:
    async def test_missing_state_is_none(self, state_store: StateStore) -> None:
        assert await state_store.get(ALICE) is None

    async def test_round_trip_of_nested_unicode_json(self, state_store: StateStore) -> None:
        data: dict[str, Any] = {
            "form": "return",
            "step": 2,
            "slots": {"order_id": "A-1001", "reason": "尺码太小 👟", "photos": ["a.jpg", "b.jpg"]},
            "amount": 12.5,
            "confirmed": False,
            "nothing": None,
        }
        await state_store.set(ALICE, data, ttl=60)
        assert await state_store.get(ALICE) == data

    async def test_state_is_stored_as_json_copy(self, state_store: StateStore) -> None:
        data: dict[str, Any] = {"slots": {"size": "M"}, "pair": (1, 2)}
        await state_store.set(ALICE, data, ttl=60)
        data["slots"]["size"] = "XL"  # the caller's later change is not stored
        first = await state_store.get(ALICE)
        assert first == {"slots": {"size": "M"}, "pair": [1, 2]}  # tuples come back as lists
        first["slots"]["size"] = "S"  # nor is a reader's change
        assert await state_store.get(ALICE) == {"slots": {"size": "M"}, "pair": [1, 2]}

    async def test_value_json_cannot_encode_is_refused(self, state_store: StateStore) -> None:
        with pytest.raises(TypeError):
            await state_store.set(ALICE, {"when": object()}, ttl=60)
        assert await state_store.get(ALICE) is None

    async def test_state_expires_after_ttl(self, state_store: StateStore) -> None:
        await state_store.set(ALICE, {"step": 1}, ttl=TTL)
        assert await state_store.get(ALICE) == {"step": 1}
        await asyncio.sleep(TTL + 0.1)
        assert await state_store.get(ALICE) is None

    async def test_set_replaces_value_and_ttl(self, state_store: StateStore) -> None:
        await state_store.set(ALICE, {"step": 1}, ttl=TTL)
        await state_store.set(ALICE, {"step": 2}, ttl=60)
        await asyncio.sleep(TTL + 0.1)
        assert await state_store.get(ALICE) == {"step": 2}

    async def test_delete(self, state_store: StateStore) -> None:
        await state_store.set(ALICE, {"step": 1}, ttl=60)
        await state_store.delete(ALICE)
        await state_store.delete(ALICE)  # deleting nothing is fine
        assert await state_store.get(ALICE) is None

    async def test_conversations_are_isolated(self, state_store: StateStore) -> None:
        await state_store.set(ALICE, {"who": "alice"}, ttl=60)
        await state_store.set(BOB, {"who": "bob"}, ttl=TTL)
        await state_store.delete(ALICE)
        assert await state_store.get(BOB) == {"who": "bob"}
        await asyncio.sleep(TTL + 0.1)
        await state_store.set(ALICE, {"who": "alice"}, ttl=60)
        assert await state_store.get(BOB) is None
        assert await state_store.get(ALICE) == {"who": "alice"}

    @pytest.mark.parametrize("ttl", [0, -1.0])
    async def test_non_positive_ttl_is_refused(self, state_store: StateStore, ttl: float) -> None:
        with pytest.raises(ValueError):
            await state_store.set(ALICE, {}, ttl=ttl)
        with pytest.raises(ValueError):
            await state_store.claim_delivery("telegram", "1", ttl=ttl)
        with pytest.raises(ValueError):
            await state_store.hit("user:1", window=ttl)

    # -- delivery claims -----------------------------------------------------------------
    async def test_claim_is_granted_once(self, state_store: StateStore) -> None:
        assert await state_store.claim_delivery("telegram", "1001", ttl=60) is True
        assert await state_store.claim_delivery("telegram", "1001", ttl=60) is False
        assert await state_store.claim_delivery("telegram", "1002", ttl=60) is True
        assert await state_store.claim_delivery("web", "1001", ttl=60) is True  # other channel

    async def test_released_claim_can_be_claimed_again(self, state_store: StateStore) -> None:
        assert await state_store.claim_delivery("telegram", "7", ttl=60)
        await state_store.release_delivery("telegram", "7")
        assert await state_store.claim_delivery("telegram", "7", ttl=60)
        await state_store.release_delivery("telegram", "never-claimed")  # harmless

    async def test_claim_expires_after_ttl(self, state_store: StateStore) -> None:
        assert await state_store.claim_delivery("telegram", "8", ttl=TTL)
        await asyncio.sleep(TTL + 0.1)
        assert await state_store.claim_delivery("telegram", "8", ttl=60)

    async def test_concurrent_claims_have_one_winner(self, state_store: StateStore) -> None:
        results = await asyncio.gather(*(state_store.claim_delivery("telegram", "9", ttl=60) for _ in range(20)))
        assert results.count(True) == 1

    async def test_claims_do_not_touch_state(self, state_store: StateStore) -> None:
        await state_store.set(StateKey(5), {"step": 1}, ttl=60)
        assert await state_store.claim_delivery("telegram", "5", ttl=60)
        await state_store.release_delivery("telegram", "5")
        assert await state_store.get(StateKey(5)) == {"step": 1}

    # -- rate counters -------------------------------------------------------------------
    async def test_hits_count_up(self, state_store: StateStore) -> None:
        assert [await state_store.hit("user:1", window=60) for _ in range(3)] == [1, 2, 3]
        assert await state_store.hit("user:2", window=60) == 1

    async def test_window_resets_after_it_ends(self, state_store: StateStore) -> None:
        assert await state_store.hit("user:1", window=TTL) == 1
        assert await state_store.hit("user:1", window=TTL) == 2
        await asyncio.sleep(TTL + 0.1)
        assert await state_store.hit("user:1", window=TTL) == 1

    async def test_window_is_fixed_from_first_hit(self, state_store: StateStore) -> None:
        # Later hits must not extend the window, or a steady trickle would never reset.
        await state_store.hit("user:1", window=0.4)
        await asyncio.sleep(0.25)
        assert await state_store.hit("user:1", window=0.4) == 2
        await asyncio.sleep(0.25)  # 0.5 s after the first hit, 0.25 s after the second
        assert await state_store.hit("user:1", window=0.4) == 1

    async def test_concurrent_hits_are_all_counted(self, state_store: StateStore) -> None:
        counts = await asyncio.gather(*(state_store.hit("burst", window=60) for _ in range(50)))
        assert sorted(counts) == list(range(1, 51))


# -- Redis specifics -------------------------------------------------------------------
@pytest.mark.parametrize("state_store", ["redis"], indirect=True)
async def test_redis_keys_come_from_key_builder_and_expire(
    state_store: RedisStateStore, redis_server: str, redis_prefix: str
) -> None:
    await state_store.set(ALICE, {"step": 1}, ttl=60)
    await state_store.claim_delivery("telegram", "1", ttl=60)
    await state_store.hit("user:1", window=60)
    keys = KeyBuilder(redis_prefix)
    expected = {keys.state(ALICE), keys.delivery("telegram", "1"), keys.rate("user:1")}
    client = Redis.from_url(redis_server, decode_responses=True)
    try:
        found = {key async for key in client.scan_iter(match=f"{redis_prefix}:*")}
        assert found == expected
        for key in expected:
            assert 0 < await client.pttl(key) <= 60_000  # nothing is stored forever
    finally:
        await client.aclose()


@pytest.mark.parametrize("state_store", ["redis"], indirect=True)
async def test_redis_stores_with_other_prefixes_are_isolated(
    state_store: RedisStateStore, redis_server: str, redis_prefix: str
) -> None:
    other = RedisStateStore.from_url(redis_server, key_builder=KeyBuilder(f"{redis_prefix}:other"))
    try:
        await state_store.set(ALICE, {"shop": "one"}, ttl=60)
        assert await other.get(ALICE) is None
        assert await other.claim_delivery("telegram", "1", ttl=60)
        assert await state_store.claim_delivery("telegram", "1", ttl=60)
    finally:
        await other.close()


async def test_redis_errors_become_storage_errors() -> None:
    store = RedisStateStore(Redis(host="127.0.0.1", port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)))
    try:
        with pytest.raises(StorageError, match="redis state store: get"):
            await store.get(ALICE)
    finally:
        await store.close()
