"""Agents' accounts and credentials: passwords, login sessions, API tokens, login throttling.

Independent of HTTP, so the web workspace and the ``deskbot agents`` command share it.

- Passwords are hashed with argon2id (``argon2-cffi``); hashes are upgraded on login when
  the library's parameters grow.
- Session and API tokens are random (``secrets``) and only their SHA-256 is stored: a
  copy of the database does not let anyone in. A session ends at ``session_hours`` or
  after ``session_idle_minutes`` without a request, whichever comes first.
- Failed logins are counted per account and per client address in the database, so the
  lockout holds across worker processes and restarts; each failure is also slowed down.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Insert, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.errors import Conflict, DeskbotError, NotFound
from storage.models import Agent, AgentSession, ApiToken, LoginThrottle, utcnow
from storage.tickets import TicketSession, TicketStore

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
    ) -> None:
        self.tickets = tickets
        self.policy = policy or LoginPolicy()
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        # Verified against when the e-mail is unknown, so timing does not reveal accounts.
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    # -- passwords ---------------------------------------------------------------------
    def hash_password(self, password: str) -> str:
        return self.hasher.hash(check_password(password))

    def _verify(self, stored: str | None, password: str) -> bool:
        try:
            return self.hasher.verify(stored or self._dummy_hash, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    # -- agents ------------------------------------------------------------------------
    async def add_agent(self, email: str, name: str, role: str, password: str | None) -> Agent:
        email, name, role = normalise_email(email), check_name(name), check_role(role)
        password_hash = self.hash_password(password) if password is not None else None
        async with self.tickets.session() as tx:
            if await tx.agent_by_email(email) is not None:
                raise Conflict(f"an agent with e-mail {email} already exists")
            return await tx.add_agent(email, name, role=role, password_hash=password_hash)

    async def list_agents(self) -> Sequence[Agent]:
        async with self.tickets.session() as tx:
            return (await tx.db.execute(select(Agent).order_by(Agent.id))).scalars().all()

    async def set_password(self, email: str, password: str) -> Agent:
        """A new password (the forgotten-password path for the shop owner): ends the agent's
        sessions and lifts a lockout of the account."""
        password_hash = self.hash_password(password)
        async with self.tickets.session() as tx:
            agent = await self._agent(tx, email)
            agent.password_hash = password_hash
            await self.end_sessions(tx, agent.id)
            account_key = self.throttle_keys(agent.email, None)[0]
            await tx.db.execute(delete(LoginThrottle).where(LoginThrottle.key == account_key))
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
        would not stop a guesser who happens to be right within the window.
        """
        now = self.clock()
        keys = self.throttle_keys(email, ip)
        async with self.tickets.session() as tx:
            rows = (await tx.db.execute(select(LoginThrottle).where(LoginThrottle.key.in_(keys)))).scalars().all()
            locked = [r.locked_until for r in rows if r.locked_until is not None and r.locked_until > now]
            if locked:
                raise LoginLocked((max(locked) - now).total_seconds())
            agent = await tx.agent_by_email(email) if email.strip() else None
            ok = self._verify(agent.password_hash if agent else None, password) and agent is not None and agent.active
            if not ok:
                await self._count_failure(tx, keys, now)
            else:
                assert agent is not None
                await tx.db.execute(delete(LoginThrottle).where(LoginThrottle.key == keys[0]))
                if agent.password_hash and self.hasher.check_needs_rehash(agent.password_hash):
                    agent.password_hash = self.hasher.hash(password)
                return await self._open_session(tx, agent, now, ip, user_agent)
        if self.policy.failure_delay:
            await asyncio.sleep(self.policy.failure_delay)
        raise LoginFailed()

    async def _count_failure(self, tx: TicketSession, keys: list[str], now: datetime) -> None:
        # Counters whose window and lock are over say nothing any more: keep the table small
        # even when someone tries thousands of made-up e-mail addresses.
        await tx.db.execute(
            delete(LoginThrottle).where(
                LoginThrottle.window_started_at < now - self.policy.lockout,
                or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now),
                LoginThrottle.key.not_in(keys),
            )
        )
        for key in keys:
            # Create the row if needed without racing another process, then lock it.
            await tx.db.execute(
                _insert_ignoring_conflict(tx).values(key=key, failures=0, window_started_at=now, locked_until=None)
            )
            locked_row = (
                select(LoginThrottle)
                .where(LoginThrottle.key == key)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            row = (await tx.db.execute(locked_row)).scalar_one()
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
        tx.db.add(
            AgentSession(
                token_hash=token_digest(token),
                agent_id=agent.id,
                csrf_token=csrf,
                ip=(ip or None) and ip[:64],
                user_agent=(user_agent or None) and user_agent[:300],
                created_at=now,
                last_seen_at=now,
                expires_at=expires,
            )
        )
        # Expired sessions are swept as agents log in (an index on expires_at keeps it cheap).
        await tx.db.execute(delete(AgentSession).where(AgentSession.expires_at < now))
        return Login(agent, token, csrf, expires)

    async def session_principal(self, token: str) -> Principal | None:
        """The agent behind a session cookie, if the session is alive; refreshes its idle timer."""
        if not token or len(token) > 200:
            return None
        now = self.clock()
        async with self.tickets.session() as tx:
            found = (
                await tx.db.execute(
                    select(AgentSession, Agent)
                    .join(Agent, Agent.id == AgentSession.agent_id)
                    .where(AgentSession.token_hash == token_digest(token))
                )
            ).first()
            if found is None:
                return None
            session, agent = found
            if session.expires_at <= now or session.last_seen_at + self.policy.idle_timeout <= now or not agent.active:
                await tx.db.delete(session)
                return None
            if now - session.last_seen_at >= TOUCH_EVERY:
                session.last_seen_at = now
            return Principal(agent, session.csrf_token, session.id)

    async def logout(self, token: str) -> None:
        async with self.tickets.session() as tx:
            await tx.db.execute(delete(AgentSession).where(AgentSession.token_hash == token_digest(token)))

    async def end_sessions(self, tx: TicketSession, agent_id: int) -> None:
        """Log an agent out everywhere (deactivated, password changed)."""
        await tx.db.execute(delete(AgentSession).where(AgentSession.agent_id == agent_id))

    # -- API tokens ---------------------------------------------------------------------
    async def issue_token(self, email: str) -> str:
        """A new API token for the agent; returned once, only its hash is kept."""
        token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self.tickets.session() as tx:
            agent = await self._agent(tx, email)
            if not agent.active:
                raise InvalidAccount(f"agent {agent.email} is deactivated")
            tx.db.add(
                ApiToken(token_hash=token_digest(token), agent_id=agent.id, prefix=token[:12], created_at=self.clock())
            )
        return token

    async def revoke_tokens(self, email: str) -> int:
        """Revoke every API token of the agent (a leaked token, an integration retired)."""
        async with self.tickets.session() as tx:
            agent = await self._agent(tx, email)
            revoked = await tx.db.execute(
                update(ApiToken)
                .where(ApiToken.agent_id == agent.id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=self.clock())
                .returning(ApiToken.id)
            )
            return len(revoked.all())

    async def token_principal(self, token: str) -> Principal | None:
        if not token.startswith(API_TOKEN_PREFIX) or len(token) > 200:
            return None
        now = self.clock()
        async with self.tickets.session() as tx:
            found = (
                await tx.db.execute(
                    select(ApiToken, Agent)
                    .join(Agent, Agent.id == ApiToken.agent_id)
                    .where(ApiToken.token_hash == token_digest(token), ApiToken.revoked_at.is_(None))
                )
            ).first()
            if found is None:
                return None
            row, agent = found
            if not agent.active or not hmac.compare_digest(row.token_hash, token_digest(token)):
                return None
            if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
                row.last_used_at = now
            return Principal(agent)


def _insert_ignoring_conflict(tx: TicketSession) -> Insert:
    dialect = tx.db.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(LoginThrottle).on_conflict_do_nothing(index_elements=[LoginThrottle.key])
    if dialect == "sqlite":
        return sqlite.insert(LoginThrottle).on_conflict_do_nothing(index_elements=[LoginThrottle.key])
    return insert(LoginThrottle)
