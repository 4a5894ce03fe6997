"""Agents as the ticket store knows them (accounts and sessions: desk/accounts.py)."""

from __future__ import annotations

from sqlalchemy import func, select

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
        await self.db.flush()
        return agent
