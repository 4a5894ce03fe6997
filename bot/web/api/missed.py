"""``/api/v1/missed`` and ``/api/v1/knowledge``: learning from what the bot did not answer.

Every agent sees what customers asked that the bot missed — grouped by similarity, with
counts, e-mails and phone numbers masked; an admin turns a group into a new phrasing of an
FAQ entry or a new alias of a product (or dismisses it), and the bot answers with it at once:
this process rebuilds its knowledge before answering, the others on the ``knowledge_changed``
event (``bot.jobs.knowledge_sync``).

What counts as missed (``handlers.context.Missed``): the fallback reply (out of scope, or an
intent without a handler), the FAQ's "no answer yet", a product question naming no known
product, and an answer given below the classifier's threshold plus ``bot.app.UNSURE_MARGIN``.
A handoff to a person within 30 minutes of a miss is counted with it.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response

from bot.app import App
from bot.logs import mask
from bot.web.api.schemas import (
    AdditionOut,
    AliasIn,
    DismissIn,
    FaqChoice,
    KnowledgeTargets,
    LearnedOut,
    MissedGroupOut,
    MissedPage,
    PhrasingIn,
    ProductChoice,
    RowId,
)
from bot.web.auth import AdminAgent, CurrentAgent
from knowledge.additions import Addition, InvalidAddition, Suggestions, check, clean, in_use
from knowledge.missed import MissedGroup, group
from knowledge.shop import Catalog, Faq, FaqEntry, Product
from storage import missed
from storage.models import AdditionKind, Agent, KnowledgeAddition, MissedResolution

MAX_GROUPED = 2000  # the newest open misses that are read and grouped per request
SUGGESTIONS = 3


def _faq(app: App) -> Faq:
    faq: Faq = app.services.faq.faq
    return faq


def _faq_choice(entry: FaqEntry, language: str | None, score: float | None = None) -> FaqChoice:
    question = entry.questions_for(language)[0]
    return FaqChoice(id=entry.id, topic=entry.topic, question=question, score=score)


def _product_choice(product: Product, language: str | None, score: float | None = None,
                    alias: str | None = None) -> ProductChoice:
    return ProductChoice(sku=product.sku, name=product.name_for(language), score=score, alias=alias or None)


def _group_out(found: MissedGroup, suggest: Suggestions) -> MissedGroupOut:
    assert found.first_seen is not None and found.last_seen is not None
    lang = found.language
    return MissedGroupOut(
        ids=found.ids,
        text=found.text,
        language=lang,
        count=found.count,
        customers=found.customers,
        handoffs=found.handoffs,
        first_seen=found.first_seen,
        last_seen=found.last_seen,
        reasons=found.reasons,
        examples=found.examples,
        faq_suggestions=[
            _faq_choice(e, lang, round(s, 1)) for e, s in suggest.faq_entries(found.text, lang, SUGGESTIONS)
        ],
        product_suggestions=[
            _product_choice(p, lang, round(s, 1), alias) for p, s, alias in suggest.products(found.text, SUGGESTIONS)
        ],
    )


def _addition_out(row: KnowledgeAddition, catalog: Catalog, faq: Faq, names: dict[int, str]) -> AdditionOut:
    addition = Addition(row.kind, row.target, row.language, row.text, row.id)
    return AdditionOut(
        id=row.id,
        kind=row.kind.value,
        target=row.target,
        language=row.language,
        text=row.text,
        created_at=row.created_at,
        created_by=names.get(row.created_by_id) if row.created_by_id is not None else None,
        active=in_use(catalog, faq, addition),
    )


def build_router(app: App) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["missed questions"])

    def _language(language: str) -> str:
        if language not in app.settings.languages:
            raise InvalidAddition(f"language: must be one of {', '.join(app.settings.languages)}")
        return language

    async def learn(
        addition: Addition, missed_ids: list[int], resolution: MissedResolution, admin: Agent
    ) -> LearnedOut:
        shop = app.services.shop
        # Checked against what the bot knows now (files + earlier additions); the database's
        # unique key settles two admins adding the same form at once.
        await asyncio.to_thread(check, shop.catalog, _faq(app), addition)
        async with app.tickets.session() as tx:
            row = await missed.add_addition(
                tx, kind=addition.kind, target=addition.target, language=addition.language, text=addition.text,
                folded=addition.folded, agent_id=admin.id,
            )
            resolved = await missed.resolve(tx, missed_ids, resolution, agent_id=admin.id, addition_id=row.id)
            app.knowledge.announce(tx, f"agent:{admin.email}")
        shop = await app.knowledge.reload()
        return LearnedOut(addition=_addition_out(row, shop.catalog, _faq(app), {admin.id: admin.name}),
                          resolved=resolved)

    @router.get("/missed", summary="What customers asked that the bot did not answer, grouped by similarity")
    async def list_missed(
        _agent: CurrentAgent,
        days: Annotated[int, Query(ge=1, le=365, description="look back this many days")] = 30,
        language: Annotated[str | None, Query(pattern=r"^[a-z]{2,3}$")] = None,
        limit: Annotated[int, Query(ge=1, le=500, description="groups to return, biggest first")] = 100,
    ) -> MissedPage:
        since = app.services.clock() - timedelta(days=days)
        async with app.tickets.session() as tx:
            rows = await missed.open_missed(tx, since, limit=MAX_GROUPED, language=language)
        shop = app.services.shop

        def prepare() -> list[MissedGroupOut]:
            groups = group([replace(row, text=mask(row.text)) for row in rows])
            suggest = Suggestions(shop.catalog, _faq(app))
            return [_group_out(found, suggest) for found in groups[:limit]]

        groups = await asyncio.to_thread(prepare)
        return MissedPage(since=since, days=days, total=len(rows), truncated=len(rows) >= MAX_GROUPED, groups=groups)

    @router.get("/missed/targets", summary="The FAQ entries and products a missed question can be added to")
    async def targets(
        _agent: CurrentAgent, language: Annotated[str | None, Query(pattern=r"^[a-z]{2,3}$")] = None
    ) -> KnowledgeTargets:
        shop = app.services.shop
        return KnowledgeTargets(
            languages=list(app.settings.languages),
            faq=[_faq_choice(entry, language) for entry in _faq(app).entries],
            products=[_product_choice(product, language) for product in shop.catalog.products],
        )

    @router.post("/missed/phrasing", status_code=201, response_model=LearnedOut,
                 summary="Add a missed question as a phrasing of an FAQ entry (admin); the bot uses it at once",
                 responses={404: {"description": "no such FAQ entry"}, 409: {"description": "already a phrasing"}})
    async def add_phrasing(body: PhrasingIn, admin: AdminAgent) -> LearnedOut:
        addition = Addition(AdditionKind.FAQ_PHRASING, body.faq_id, _language(body.language), clean(body.text))
        return await learn(addition, body.missed_ids, MissedResolution.FAQ_PHRASING, admin)

    @router.post("/missed/alias", status_code=201, response_model=LearnedOut,
                 summary="Add a product alias taken from a missed question (admin); the bot uses it at once",
                 responses={404: {"description": "no such product"},
                            409: {"description": "the alias already names this or another product"}})
    async def add_alias(body: AliasIn, admin: AdminAgent) -> LearnedOut:
        addition = Addition(AdditionKind.PRODUCT_ALIAS, body.sku, _language(body.language), clean(body.text))
        return await learn(addition, body.missed_ids, MissedResolution.PRODUCT_ALIAS, admin)

    @router.post("/missed/dismiss", summary="Take missed questions off the list without teaching anything (admin)")
    async def dismiss(body: DismissIn, admin: AdminAgent) -> LearnedOut:
        async with app.tickets.session() as tx:
            resolved = await missed.resolve(tx, body.missed_ids, MissedResolution.DISMISSED, agent_id=admin.id)
        return LearnedOut(addition=None, resolved=resolved)

    @router.get("/knowledge/additions", summary="The phrasings and aliases admins added, oldest first")
    async def list_additions(_agent: CurrentAgent) -> list[AdditionOut]:
        async with app.tickets.session() as tx:
            rows = await missed.additions(tx)
            agents = {row.created_by_id for row in rows if row.created_by_id is not None}
            names = {a.id: a.name for a in (await tx.agents_by_id(agents)).values()}
        shop = app.services.shop
        return [_addition_out(row, shop.catalog, _faq(app), names) for row in rows]

    @router.delete("/knowledge/additions/{addition_id}", status_code=204,
                   summary="Remove a phrasing or alias (admin); the bot stops using it at once")
    async def delete_addition(addition_id: RowId, admin: AdminAgent) -> Response:
        async with app.tickets.session() as tx:
            await missed.delete_addition(tx, addition_id)
            app.knowledge.announce(tx, f"agent:{admin.email}")
        await app.knowledge.reload()
        return Response(status_code=204)

    return router
