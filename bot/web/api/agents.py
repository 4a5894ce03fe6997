"""``/api/v1/me`` and ``/api/v1/agents``: who am I, and (admins) managing the team."""

from __future__ import annotations

from fastapi import APIRouter, Request

from bot.app import App
from bot.web.api.schemas import AgentCreate, AgentOut, AgentUpdate, Me, RowId, agent_out
from bot.web.auth import AdminAgent, CurrentAgent, CurrentPrincipal, accounts_of
from common.errors import Conflict, NotFound
from desk.accounts import InvalidAccount, Role


def build_router(app: App) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["agents"])

    @router.get("/me", summary="The calling agent (and the CSRF token of a browser session)")
    async def me(principal: CurrentPrincipal) -> Me:
        agent = principal.agent
        return Me(id=agent.id, name=agent.name, email=agent.email, role=agent.role, csrf_token=principal.csrf_token)

    @router.get("/agents", summary="All agents")
    async def list_agents(request: Request, _agent: CurrentAgent) -> list[AgentOut]:
        return [agent_out(a) for a in await accounts_of(request).list_agents()]

    @router.post("/agents", status_code=201, summary="Add an agent (admin)")
    async def add_agent(request: Request, body: AgentCreate, _admin: AdminAgent) -> AgentOut:
        agent = await accounts_of(request).add_agent(body.email, body.name, body.role, body.password)
        return agent_out(agent)

    @router.patch("/agents/{agent_id}", summary="Change an agent's name, role, password or active flag (admin)")
    async def update_agent(request: Request, agent_id: RowId, body: AgentUpdate, _admin: AdminAgent) -> AgentOut:
        accounts = accounts_of(request)
        password_hash = await accounts.hash_password(body.password) if body.password is not None else None
        async with app.tickets.session() as tx:
            agent = await tx.get_agent(agent_id)
            if agent is None:
                raise NotFound(f"no agent with id {agent_id}")
            demoted = body.role is not None and body.role != Role.ADMIN.value and agent.role == Role.ADMIN.value
            deactivated = body.active is False and agent.active and agent.role == Role.ADMIN.value
            if (demoted or deactivated) and await tx.active_agents_in_role(Role.ADMIN.value, besides=agent.id) == 0:
                raise Conflict("the last active admin cannot be demoted or deactivated")
            if body.name is not None:
                agent.name = body.name
            if body.role is not None:
                agent.role = body.role
            if body.active is not None:
                agent.active = body.active
            if password_hash is not None:
                agent.password_hash = password_hash
            if password_hash is not None or body.active is False:
                await accounts.end_sessions(tx, agent.id)
            if body.active is False:
                # Deactivation is final for credentials: reactivating must not revive tokens.
                await accounts.revoke_agent_tokens(tx, agent.id)
            if not agent.name.strip():
                raise InvalidAccount("name: must not be empty")
            return agent_out(agent)

    return router
