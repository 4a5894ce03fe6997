"""The team as the agents' workspace shows it: who wrote what, and who may still administer.

Reads only; adding, changing and signing agents in lives in ``agents.py`` and ``accounts.py``.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select

from storage.models import Agent
from storage.records.base import Records


class TeamRecords(Records):
    async def agents_by_id(self, agent_ids: Iterable[int]) -> dict[int, Agent]:
        """The agents with these ids that exist, by id, in one query (none asked: no query)."""
        wanted = set(agent_ids)
        if not wanted:
            return {}
        rows = await self.db.execute(select(Agent).where(Agent.id.in_(wanted)))
        return {agent.id: agent for agent in rows.scalars()}

    async def active_agents_in_role(self, role: str, *, besides: int) -> int:
        """How many active agents other than ``besides`` have ``role`` (the last admin check)."""
        found = await self.db.execute(
            select(func.count(Agent.id)).where(Agent.role == role, Agent.active.is_(True), Agent.id != besides)
        )
        return int(found.scalar_one())
