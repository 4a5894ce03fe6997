"""A lease: the right, held by one process at a time, to run what must run once.

``bot/leader.py`` elects the process that runs the singletons (Telegram polling, the agents'
group, the SLA watch, retention) with it. Two implementations of one small port:

- ``LocalLease`` — the embedded default (one process, no Redis): always granted, since there
  is nobody to share it with.
- ``RedisLease`` — ``SET key token NX PX ttl`` to acquire; renewing and releasing compare
  the stored token with this holder's own in one Lua script (compare-and-extend,
  compare-and-delete), so a holder whose lease expired and was taken by another process can
  neither extend nor delete the new holder's lease. The token is random per ``RedisLease``
  (one per process) and names the host and pid, so ``GET`` on the key tells an operator who
  leads. A holder that cannot renew does not hold the lease any longer; ``bot/leader.py``
  stops its singletons before the TTL runs out (see there).

Redis's key expiry is the only clock that decides who holds the lease; the holder's own
clock only decides when to give up early (never later than the key expires).
"""

from __future__ import annotations

import math
import os
import secrets
import socket
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Any

from redis.asyncio import Redis

from storage.redis_state import redis_errors

# KEYS[1] lease, ARGV[1] token, ARGV[2] ttl in ms. 1: held by this token (now, or already), 0: by another.
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
    return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return 1
end
return 0
"""
# KEYS[1] lease, ARGV[1] token, ARGV[2] ttl in ms. 1: extended, 0: not ours (expired or taken).
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# KEYS[1] lease, ARGV[1] token. 1: deleted, 0: not ours (left alone).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def new_token() -> str:
    """Unique to this holder; readable enough to say which process it is."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(8)}"


def _ms(seconds: float) -> int:
    if not seconds > 0:
        raise ValueError(f"a lease's ttl must be positive, got {seconds!r}")
    return max(1, math.ceil(seconds * 1000))


def _translated(operation: str) -> AbstractContextManager[None]:
    return redis_errors(f"redis lease: {operation}")


class Lease(ABC):
    """One named lease and one would-be holder of it (this process)."""

    ttl: float  # seconds a grant or a renewal lasts unless renewed

    @abstractmethod
    async def acquire(self) -> bool:
        """Take the lease if it is free (or ours already) for ``ttl``; False when another holds it."""

    @abstractmethod
    async def renew(self) -> bool:
        """Extend our lease by ``ttl`` from now; False when it is not ours any more (it expired,
        or another holder took it). Raises ``StorageError`` when the answer is unknown."""

    @abstractmethod
    async def release(self) -> None:
        """Give the lease up now if it is ours, so a successor need not wait for the TTL."""

    async def holder(self) -> str | None:
        """Who holds the lease now (a token), if anyone; for logs and operators."""
        return None

    async def close(self) -> None:
        """Free the client's resources (does not release the lease)."""


class LocalLease(Lease):
    """The embedded default: the only process is always the holder."""

    def __init__(self, ttl: float = 10.0) -> None:
        _ms(ttl)
        self.ttl = ttl
        self.token = new_token()
        self.held = False

    async def acquire(self) -> bool:
        self.held = True
        return True

    async def renew(self) -> bool:
        return self.held

    async def release(self) -> None:
        self.held = False

    async def holder(self) -> str | None:
        return self.token if self.held else None


class RedisLease(Lease):
    """``RedisLease(redis, key, ttl)``: the lease is the key, the holder's token its value."""

    def __init__(self, redis: Redis, key: str, ttl: float, *, token: str | None = None) -> None:
        self.redis = redis
        self.key = key
        self.ttl = ttl
        self._ttl_ms = _ms(ttl)
        self.token = token or new_token()
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    @classmethod
    def from_url(cls, url: str, key: str, ttl: float, **kwargs: Any) -> RedisLease:
        """A client of its own: renewals never queue behind the state store's traffic."""
        return cls(Redis.from_url(url, **kwargs), key, ttl)

    async def acquire(self) -> bool:
        with _translated("acquire"):
            return bool(await self._acquire(keys=[self.key], args=[self.token, self._ttl_ms]))

    async def renew(self) -> bool:
        with _translated("renew"):
            return bool(await self._renew(keys=[self.key], args=[self.token, self._ttl_ms]))

    async def release(self) -> None:
        with _translated("release"):
            await self._release(keys=[self.key], args=[self.token])

    async def holder(self) -> str | None:
        with _translated("holder"):
            value = await self.redis.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    async def close(self) -> None:
        await self.redis.aclose(close_connection_pool=True)
