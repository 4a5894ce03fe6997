"""Agents as the ticket store knows them (accounts and sessions: desk/accounts.py)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from common.errors import Conflict
from storage.models import (
    Agent,
)
from storage.records.base import Records


class AgentRecords(Records):
    async def agent_by_email(self, email: str) -> Agent | None:
        return (
            await self.db.execute(select(Agent).where(func.lower(Agent.email) == email.strip().lower()))
        ).scalar_one_or_none()

    async def add_agent(self, email: str, name: str, role: str = "agent", password_hash: str | None = None) -> Agent:
        agent = Agent(email=email.strip().lower(), name=name, role=role, password_hash=password_hash)
        self.db.add(agent)
        try:
            await self.db.flush()
        except IntegrityError as exc:  # another transaction added the same e-mail meanwhile
            if "email" not in str(exc.orig):
                raise
            raise Conflict(f"an agent with e-mail {agent.email} already exists") from exc
        return agent

    async def get_agent(self, agent_id: int) -> Agent | None:
        return await self.db.get(Agent, agent_id)
