"""Agents' accounts and credentials: passwords, login sessions, API tokens, login throttling.

Independent of HTTP, so the web workspace and the ``deskbot agents`` command share it.

- Passwords are hashed with argon2id (``argon2-cffi``); hashes are upgraded on login when
  the library's parameters grow.
- Session and API tokens are random (``secrets``) and only their SHA-256 is stored: a
  copy of the database does not let anyone in. A session ends at ``session_hours`` or
  after ``session_idle_minutes`` without a request, whichever comes first.
- Failed logins are counted per account and per client address in the database, so the
  lockout holds across worker processes and restarts; each failure is also slowed down.
- argon2 is slow on purpose (about 0.1 s of CPU over several threads): it never runs on the
  event loop, which would stall every customer's chat for that long per login. Hashing and
  verifying go to :class:`PasswordPool`, a small thread pool sized to the cores, and never
  inside a database transaction (SQLite sessions take turns). When a login flood fills the
  pool and its short backlog, further logins are refused at once with
  :class:`PasswordCheckBusy` (503 + ``Retry-After``) instead of queueing for minutes.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from common.errors import Conflict, DeskbotError, NotFound
from storage.models import Agent, utcnow
from storage.tickets import TicketSession, TicketStore

log = logging.getLogger("deskbot.accounts")

T = TypeVar("T")

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
API_TOKEN_PREFIX = "dsk_"  # noqa: S105 - a marker, not a secret
# A session's last_seen_at is written at most this often (not on every request).
TOUCH_EVERY = timedelta(seconds=60)


class Role(str, enum.Enum):
    AGENT = "agent"  # handles tickets
    ADMIN = "admin"  # also manages agents, canned responses and customer data


class LoginFailed(DeskbotError):
    """Wrong e-mail or password (deliberately not saying which)."""

    def __init__(self) -> None:
        super().__init__("wrong e-mail or password")


class LoginLocked(DeskbotError):
    def __init__(self, retry_after: float) -> None:
        minutes = max(1, round(retry_after / 60))
        super().__init__(f"too many failed logins; try again in {minutes} minute{'s' if minutes != 1 else ''}")
        self.retry_after = retry_after


class InvalidAccount(DeskbotError):
    """An account field (e-mail, name, role, password) is not acceptable; says which."""


class PasswordCheckBusy(DeskbotError):
    """Every password worker is busy and the backlog is full (a login flood): try again soon."""

    def __init__(self, retry_after: float = 2.0) -> None:
        super().__init__("too many logins at once; try again in a few seconds")
        self.retry_after = retry_after


def _lower_priority() -> None:
    """Worker-thread initialiser: argon2 yields the CPU to the thread serving customers.

    The lowest priority (nice 19): on a busy machine a login check waits for spare CPU
    (seconds at worst, and the pool's bound turns a flood into quick 503s) rather than
    taking it from customers' turns; on an idle one it runs at full speed. On Linux
    ``setpriority`` on a thread id changes only that thread (and the threads argon2 starts
    from it inherit it); elsewhere it is skipped.
    """
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # not Linux, or not permitted: run at normal priority
        pass


class PasswordPool:
    """A bounded thread pool for argon2 (see module docstring).

    ``workers`` defaults to half the cores (at least one): one argon2 call with the library's
    default ``parallelism=4`` already keeps more than one core busy, and the event loop needs
    the rest. At most ``workers + backlog`` calls are in the pool at once (the backlog, 16 per
    worker by default, is about two seconds of waiting). A login takes its place with
    :meth:`slot` before any database work, and is refused at once with
    :class:`PasswordCheckBusy` when there is none; :meth:`run` (an admin setting a password)
    waits its turn instead.
    """

    def __init__(self, workers: int | None = None, backlog: int | None = None) -> None:
        self.workers = workers or max(1, (os.cpu_count() or 1) // 2)
        self.limit = self.workers + (backlog if backlog is not None else 16 * self.workers)
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="argon2", initializer=_lower_priority)
        self._lock = threading.Lock()
        self._in_pool = 0

    @property
    def in_pool(self) -> int:
        """Places taken now: calls running or waiting in the pool, and logins about to call."""
        return self._in_pool

    @property
    def full(self) -> bool:
        """No place left now: a login would be refused (a cheap check before any work)."""
        return self._in_pool >= self.limit

    @contextmanager
    def slot(self) -> Iterator[PasswordSlot]:
        """A place in the pool for one call, or PasswordCheckBusy now when the pool is full."""
        with self._lock:
            if self._in_pool >= self.limit:
                raise PasswordCheckBusy()
            self._in_pool += 1
        place = PasswordSlot(self)
        try:
            yield place
        finally:
            if not place.used:
                self._release(None)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in the pool, waiting for a place however busy it is."""
        with self._lock:
            self._in_pool += 1
        return await self._submit(fn, *args)

    async def _submit(self, fn: Callable[..., T], *args: object) -> T:
        try:
            future: Future[T] = self._executor.submit(fn, *args)
        except BaseException:
            self._release(None)
            raise
        # Counted until the thread is done (not until the caller stops waiting): a client
        # that hangs up cannot make room for more work than the pool really has.
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, _future: object) -> None:
        with self._lock:
            self._in_pool -= 1


class PasswordSlot:
    """A place taken in a :class:`PasswordPool`; runs one call."""

    def __init__(self, pool: PasswordPool) -> None:
        self._pool = pool
        self.used = False

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        if self.used:
            raise RuntimeError("a password slot runs one call")
        self.used = True
        return await self._pool._submit(fn, *args)  # noqa: SLF001 - the pool's own helper


_shared_pool: PasswordPool | None = None
_shared_pool_lock = threading.Lock()


def password_pool() -> PasswordPool:
    """The process's one password pool (the cores are the process's, not one app's)."""
    global _shared_pool  # noqa: PLW0603 - one pool per process, made on first use
    with _shared_pool_lock:
        if _shared_pool is None:
            _shared_pool = PasswordPool()
        return _shared_pool


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    session_lifetime: timedelta = timedelta(hours=12)
    idle_timeout: timedelta = timedelta(hours=2)
    max_failures: int = 5
    ip_max_failures: int = 30
    lockout: timedelta = timedelta(minutes=15)
    failure_delay: float = 1.0


@dataclass(frozen=True, slots=True)
class Login:
    """A new session: ``token`` goes into the cookie, ``csrf_token`` into pages."""

    agent: Agent
    token: str
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes a request, and how: a browser session (with its CSRF token) or an API token."""

    agent: Agent
    csrf_token: str | None = None
    session_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.agent.role == Role.ADMIN.value


_dummy_hashes: dict[tuple[int, int, int, int, int, str], str] = {}


def dummy_hash(hasher: PasswordHasher) -> str:
    """A hash of a random password with ``hasher``'s parameters, once per process and parameters.

    Verifying an unknown e-mail's login against it costs what verifying a real one does, so
    timing does not reveal which accounts exist. Hashing is ~100 ms of CPU: every app built in
    one process (a reload, the test suite) shares it rather than paying again.
    """
    params = (
        hasher.time_cost,
        hasher.memory_cost,
        hasher.parallelism,
        hasher.hash_len,
        hasher.salt_len,
        hasher.type.name,
    )
    if (known := _dummy_hashes.get(params)) is None:
        known = _dummy_hashes.setdefault(params, hasher.hash(secrets.token_urlsafe(16)))
    return known


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in email) or len(email) > 320:
        raise InvalidAccount(f"email: {email!r} is not an e-mail address")
    return email


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidAccount(f"password: at least {MIN_PASSWORD_CHARS} characters are required")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InvalidAccount(f"password: at most {MAX_PASSWORD_CHARS} characters")
    return password


def check_role(role: str) -> str:
    try:
        return Role(role).value
    except ValueError:
        raise InvalidAccount(f"role: must be one of {', '.join(r.value for r in Role)}, not {role!r}") from None


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidAccount("name: 1 to 200 characters are required")
    return name


class Accounts:
    """Agents' credentials over the ticket store (see module docstring)."""

    def __init__(
        self,
        tickets: TicketStore,
        policy: LoginPolicy | None = None,
        clock: Callable[[], datetime] = utcnow,
        hasher: PasswordHasher | None = None,
        pool: PasswordPool | None = None,
    ) -> None:
        self.tickets = tickets
        self.policy = policy or LoginPolicy()
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        self.pool = pool or password_pool()
        # Verified against when the e-mail is unknown (made when the app is built, not while serving).
        self._dummy_hash = dummy_hash(self.hasher)

    # -- passwords ---------------------------------------------------------------------
    async def hash_password(self, password: str) -> str:
        """The argon2 hash of an acceptable password, computed in the password pool."""
        return await self.pool.run(self.hasher.hash, check_password(password))

    def _verify_blocking(self, stored: str | None, password: str) -> bool:
        try:
            return self.hasher.verify(stored or self._dummy_hash, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    # -- agents ------------------------------------------------------------------------
    async def add_agent(self, email: str, name: str, role: str, password: str | None) -> Agent:
        email, name, role = normalise_email(email), check_name(name), check_role(role)
        password_hash = await self.hash_password(password) if password is not None else None
        async with self.tickets.session() as tx:
            if await tx.agent_by_email(email) is not None:
                raise Conflict(f"an agent with e-mail {email} already exists")
            return await tx.add_agent(email, name, role=role, password_hash=password_hash)

    async def list_agents(self) -> Sequence[Agent]:
        async with self.tickets.session() as tx:
            return await tx.all_agents()

    async def set_password(self, email: str, password: str) -> Agent:
        """A new password (the forgotten-password path for the shop owner): ends the agent's
        sessions and lifts a lockout of the account."""
        password_hash = await self.hash_password(password)
        async with self.tickets.session() as tx:
            agent = await self._agent(tx, email)
            agent.password_hash = password_hash
            await self.end_sessions(tx, agent.id)
            account_key = self.throttle_keys(agent.email, None)[0]
            await tx.forget_throttle(account_key)
            return agent

    @staticmethod
    async def _agent(tx: TicketSession, email: str) -> Agent:
        agent = await tx.agent_by_email(email)
        if agent is None:
            raise NotFound(f"no agent with e-mail {email.strip()}")
        return agent

    # -- logging in ---------------------------------------------------------------------
    @staticmethod
    def throttle_keys(email: str, ip: str | None) -> list[str]:
        keys = [f"account:{email.strip().lower()[:320]}"]
        if ip:
            keys.append(f"ip:{ip[:64]}")
        return keys

    async def login(self, email: str, password: str, ip: str | None = None, user_agent: str | None = None) -> Login:
        """A new session for a correct e-mail and password; LoginFailed / LoginLocked otherwise.

        A locked account stays locked even for the right password: otherwise the lockout
        would not stop a guesser who happens to be right within the window. The password is
        checked between two short transactions, never inside one (see module docstring); the
        lock is checked again before a session opens, in case guesses locked it meanwhile.
        PasswordCheckBusy when the password pool is full.
        """
        now = self.clock()
        keys = self.throttle_keys(email, ip)
        # The pool's place first: in a flood, the logins refused cost no database work either.
        with self.pool.slot() as slot:
            async with self.tickets.session() as tx:
                await self._refuse_locked(tx, keys, now)
                agent = await tx.agent_by_email(email) if email.strip() else None
            stored = agent.password_hash if agent is not None else None
            verified = await slot.run(self._verify_blocking, stored, password)
        ok = verified and agent is not None and agent.active
        if ok and stored is not None and self.hasher.check_needs_rehash(stored):
            rehashed: str | None = await self.pool.run(self.hasher.hash, password)
        else:
            rehashed = None
        async with self.tickets.session() as tx:
            if not ok:
                await self._count_failure(tx, keys, now)
            else:
                assert agent is not None
                await self._refuse_locked(tx, keys, now)
                current = await tx.agent_as_stored(agent.id)
                # Changed or deactivated while the password was being checked: not this one.
                if current is not None and current.active and current.password_hash == stored:
                    await tx.forget_throttle(keys[0])
                    if rehashed is not None:
                        current.password_hash = rehashed
                    return await self._open_session(tx, current, now, ip, user_agent)
                await self._count_failure(tx, keys, now)
        if self.policy.failure_delay:
            await asyncio.sleep(self.policy.failure_delay)
        raise LoginFailed()

    @staticmethod
    async def _refuse_locked(tx: TicketSession, keys: list[str], now: datetime) -> None:
        rows = await tx.login_throttles(keys)
        locked = [r.locked_until for r in rows if r.locked_until is not None and r.locked_until > now]
        if locked:
            raise LoginLocked((max(locked) - now).total_seconds())

    async def _count_failure(self, tx: TicketSession, keys: list[str], now: datetime) -> None:
        # Counters whose window and lock are over say nothing any more: keep the table small
        # even when someone tries thousands of made-up e-mail addresses.
        await tx.sweep_throttles(now - self.policy.lockout, now, keep=keys)
        for key in keys:
            row = await tx.throttle_for(key, now)  # created if new, locked against other processes
            if row.window_started_at + self.policy.lockout < now:
                row.failures, row.window_started_at, row.locked_until = 0, now, None
            row.failures += 1
            limit = self.policy.max_failures if key.startswith("account:") else self.policy.ip_max_failures
            if row.failures >= limit:
                row.locked_until = now + self.policy.lockout

    async def _open_session(
        self, tx: TicketSession, agent: Agent, now: datetime, ip: str | None, user_agent: str | None
    ) -> Login:
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        expires = now + self.policy.session_lifetime
        await tx.open_agent_session(
            token_hash=token_digest(token),
            agent_id=agent.id,
            csrf_token=csrf,
            ip=(ip or None) and ip[:64],
            user_agent=(user_agent or None) and user_agent[:300],
            now=now,
            expires_at=expires,
        )
        # Expired sessions are swept as agents log in.
        await tx.sweep_agent_sessions(now)
        return Login(agent, token, csrf, expires)

    async def session_principal(self, token: str) -> Principal | None:
        """The agent behind a session cookie, if the session is alive; refreshes its idle timer."""
        if not token or len(token) > 200:
            return None
        now = self.clock()
        async with self.tickets.session() as tx:
            found = await tx.agent_session(token_digest(token))
            if found is None:
                return None
            session, agent = found
            if session.expires_at <= now or session.last_seen_at + self.policy.idle_timeout <= now or not agent.active:
                await tx.end_agent_session(session)
                return None
            if now - session.last_seen_at >= TOUCH_EVERY:
                session.last_seen_at = now
            return Principal(agent, session.csrf_token, session.id)

    async def logout(self, token: str) -> None:
        async with self.tickets.session() as tx:
            await tx.end_agent_session_of_token(token_digest(token))

    async def end_sessions(self, tx: TicketSession, agent_id: int) -> None:
        """Log an agent out everywhere (deactivated, password changed)."""
        await tx.end_agent_sessions(agent_id)

    # -- API tokens ---------------------------------------------------------------------
    async def issue_token(self, email: str) -> str:
        """A new API token for the agent; returned once, only its hash is kept."""
        token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self.tickets.session() as tx:
            agent = await self._agent(tx, email)
            if not agent.active:
                raise InvalidAccount(f"agent {agent.email} is deactivated")
            await tx.add_api_token(
                token_hash=token_digest(token), agent_id=agent.id, prefix=token[:12], created_at=self.clock()
            )
        return token

    async def revoke_tokens(self, email: str) -> int:
        """Revoke every API token of the agent (a leaked token, an integration retired)."""
        async with self.tickets.session() as tx:
            agent = await self._agent(tx, email)
            return await self.revoke_agent_tokens(tx, agent.id)

    async def revoke_agent_tokens(self, tx: TicketSession, agent_id: int) -> int:
        """Revoke the agent's live API tokens in ``tx``; how many. Deactivating an agent does
        this too, so reactivating them later does not bring old tokens back to life."""
        return await tx.revoke_api_tokens(agent_id, self.clock())

    async def token_principal(self, token: str) -> Principal | None:
        if not token.startswith(API_TOKEN_PREFIX) or len(token) > 200:
            return None
        now = self.clock()
        async with self.tickets.session() as tx:
            found = await tx.live_api_token(token_digest(token))
            if found is None:
                return None
            row, agent = found
            if not agent.active or not hmac.compare_digest(row.token_hash, token_digest(token)):
                return None
            if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
                row.last_used_at = now
            return Principal(agent)
