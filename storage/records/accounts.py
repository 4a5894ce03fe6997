"""Agents' credentials as stored: login sessions, API tokens, login throttles.

The rules (lifetimes, lockout limits, hashing) live in ``desk/accounts.py``; these are the
reads and writes it needs, in the words of accounts, so the desk never builds a query.
Tokens arrive here already hashed: the store never sees a usable secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Insert, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from storage.models import Agent, AgentSession, ApiToken, LoginThrottle
from storage.records.base import Records


class AccountRecords(Records):
    # -- agents, as accounts see them ----------------------------------------------------
    async def all_agents(self) -> Sequence[Agent]:
        """Every agent, active or not, oldest first."""
        return (await self.db.execute(select(Agent).order_by(Agent.id))).scalars().all()

    async def agent_as_stored(self, agent_id: int) -> Agent | None:
        """The agent as the database has it now, even if this transaction read it earlier
        (a password changed or an agent deactivated meanwhile must be seen)."""
        return await self.db.get(Agent, agent_id, populate_existing=True)

    # -- login throttles -----------------------------------------------------------------
    async def login_throttles(self, keys: Sequence[str]) -> Sequence[LoginThrottle]:
        """The failure counters of these keys (``account:…``, ``ip:…``) that exist."""
        return (await self.db.execute(select(LoginThrottle).where(LoginThrottle.key.in_(keys)))).scalars().all()

    async def throttle_for(self, key: str, now: datetime) -> LoginThrottle:
        """The counter of ``key``, created empty if new, locked until this transaction ends.

        Created without racing another process (``ON CONFLICT DO NOTHING``), then read
        ``FOR UPDATE``, so two failed logins at the same moment both count.
        """
        await self.db.execute(
            self._insert_throttle_unless_known().values(key=key, failures=0, window_started_at=now, locked_until=None)
        )
        locked_row = (
            select(LoginThrottle)
            .where(LoginThrottle.key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.db.execute(locked_row)).scalar_one()

    def _insert_throttle_unless_known(self) -> Insert:
        dialect = self.db.get_bind().dialect.name
        if dialect == "postgresql":
            return postgresql.insert(LoginThrottle).on_conflict_do_nothing(index_elements=[LoginThrottle.key])
        if dialect == "sqlite":
            return sqlite.insert(LoginThrottle).on_conflict_do_nothing(index_elements=[LoginThrottle.key])
        return insert(LoginThrottle)  # other databases: no race protection

    async def forget_throttle(self, key: str) -> None:
        """Clear the counter of ``key`` (a successful login, a new password)."""
        await self.db.execute(delete(LoginThrottle).where(LoginThrottle.key == key))

    async def sweep_throttles(self, window_started_before: datetime, now: datetime, keep: Sequence[str]) -> None:
        """Drop counters whose window started before ``window_started_before`` and that lock
        nothing at ``now`` (they say nothing any more), except the ``keep`` keys."""
        await self.db.execute(
            delete(LoginThrottle).where(
                LoginThrottle.window_started_at < window_started_before,
                or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now),
                LoginThrottle.key.not_in(keep),
            )
        )

    # -- login sessions ------------------------------------------------------------------
    async def open_agent_session(
        self,
        *,
        token_hash: str,
        agent_id: int,
        csrf_token: str,
        ip: str | None,
        user_agent: str | None,
        now: datetime,
        expires_at: datetime,
    ) -> AgentSession:
        session = AgentSession(
            token_hash=token_hash,
            agent_id=agent_id,
            csrf_token=csrf_token,
            ip=ip,
            user_agent=user_agent,
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
        )
        self.db.add(session)
        return session

    async def sweep_agent_sessions(self, now: datetime) -> None:
        """Drop the sessions expired by ``now`` (an index on ``expires_at`` keeps it cheap)."""
        await self.db.execute(delete(AgentSession).where(AgentSession.expires_at < now))

    async def agent_session(self, token_hash: str) -> tuple[AgentSession, Agent] | None:
        """The session with this token hash and its agent, whatever their state."""
        found = (
            await self.db.execute(
                select(AgentSession, Agent)
                .join(Agent, Agent.id == AgentSession.agent_id)
                .where(AgentSession.token_hash == token_hash)
            )
        ).first()
        return None if found is None else (found[0], found[1])

    async def end_agent_session(self, session: AgentSession) -> None:
        await self.db.delete(session)

    async def end_agent_session_of_token(self, token_hash: str) -> None:
        """Log out the session with this token hash, if there is one."""
        await self.db.execute(delete(AgentSession).where(AgentSession.token_hash == token_hash))

    async def end_agent_sessions(self, agent_id: int) -> None:
        """Log the agent out everywhere."""
        await self.db.execute(delete(AgentSession).where(AgentSession.agent_id == agent_id))

    # -- API tokens ----------------------------------------------------------------------
    async def add_api_token(self, *, token_hash: str, agent_id: int, prefix: str, created_at: datetime) -> ApiToken:
        token = ApiToken(token_hash=token_hash, agent_id=agent_id, prefix=prefix, created_at=created_at)
        self.db.add(token)
        return token

    async def revoke_api_tokens(self, agent_id: int, at: datetime) -> int:
        """Revoke the agent's live API tokens as of ``at``; how many there were."""
        revoked = await self.db.execute(
            update(ApiToken)
            .where(ApiToken.agent_id == agent_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=at)
            .returning(ApiToken.id)
        )
        return len(revoked.all())

    async def live_api_token(self, token_hash: str) -> tuple[ApiToken, Agent] | None:
        """The unrevoked API token with this hash and its agent (who may be deactivated)."""
        found = (
            await self.db.execute(
                select(ApiToken, Agent)
                .join(Agent, Agent.id == ApiToken.agent_id)
                .where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
            )
        ).first()
        return None if found is None else (found[0], found[1])
