"""Redis implementation of the state-store port, shared by every worker process.

Values are JSON strings with a millisecond TTL; delivery claims (in-flight hints of a few
seconds, see :meth:`StateStore.claim_delivery`) are ``SET NX PX`` and
rate counters ``INCR`` plus ``PEXPIRE`` on the first hit, done in one Lua script so a
crash between the two can never leave a counter that never expires.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from common.errors import StorageError, StoreUnavailable
from storage.state import KeyBuilder, StateKey, StateStore, check_ttl

# KEYS[1] counter, ARGV[1] window in ms. Returns the count including this hit.
_HIT_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
"""


def _ms(seconds: float) -> int:
    check_ttl(seconds)
    return max(1, math.ceil(seconds * 1000))


# Connection-level failures (BusyLoadingError, the server still loading its data, is a
# ConnectionError too); OSError for what the socket layer raises before redis-py wraps it.
REDIS_UNAVAILABLE: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError)


@contextmanager
def redis_errors(what: str) -> Iterator[None]:
    """Library errors leave ``storage/`` as ``StorageError`` (the core never sees redis');
    an unreachable server (refused, reset, timed out, loading) as ``StoreUnavailable``.
    ``what``: the component and operation, for the message."""
    try:
        yield
    except REDIS_UNAVAILABLE as exc:
        raise StoreUnavailable("redis", f"{what}: {exc.__class__.__name__}") from exc
    except RedisError as exc:
        raise StorageError(f"{what}: {exc.__class__.__name__}: {exc}") from exc


def _translated(operation: str) -> AbstractContextManager[None]:
    return redis_errors(f"redis state store: {operation}")


class RedisStateStore(StateStore):
    """``RedisStateStore(redis, key_builder=KeyBuilder("shop"))``; keys come only from the builder."""

    def __init__(self, redis: Redis, key_builder: KeyBuilder | None = None) -> None:
        self.redis = redis
        self.keys = key_builder or KeyBuilder()
        self._hit = redis.register_script(_HIT_SCRIPT)

    @classmethod
    def from_url(cls, url: str, key_builder: KeyBuilder | None = None, **kwargs: Any) -> RedisStateStore:
        """Build the client from a ``redis://`` URL; ``kwargs`` go to ``Redis.from_url``."""
        return cls(Redis.from_url(url, **kwargs), key_builder=key_builder)

    async def get(self, key: StateKey) -> dict[str, Any] | None:
        with _translated("get"):
            raw = await self.redis.get(self.keys.state(key))
        if raw is None:
            return None
        data: dict[str, Any] = json.loads(raw)
        return data

    async def set(self, key: StateKey, data: dict[str, Any], ttl: float) -> None:
        value = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        with _translated("set"):
            await self.redis.set(self.keys.state(key), value, px=_ms(ttl))

    async def delete(self, key: StateKey) -> None:
        with _translated("delete"):
            await self.redis.delete(self.keys.state(key))

    async def claim_delivery(self, channel: str, delivery_key: str, ttl: float) -> bool:
        with _translated("claim_delivery"):
            claimed = await self.redis.set(self.keys.delivery(channel, delivery_key), 1, nx=True, px=_ms(ttl))
        return bool(claimed)

    async def release_delivery(self, channel: str, delivery_key: str) -> None:
        with _translated("release_delivery"):
            await self.redis.delete(self.keys.delivery(channel, delivery_key))

    async def hit(self, name: str, window: float) -> int:
        window_ms = _ms(window)
        with _translated("hit"):
            count = await self._hit(keys=[self.keys.rate(name)], args=[window_ms])
        return int(count)

    async def ping(self) -> None:
        """Reachable now? StoreUnavailable otherwise (the readiness probe)."""
        with _translated("ping"):
            await self.redis.ping()

    async def close(self) -> None:
        """Close the client and its connection pool (also when it was passed in)."""
        await self.redis.aclose(close_connection_pool=True)
