"""Canned responses as stored: listed by title, saved under a unique title, deleted.

Rendering their placeholders is the desk's business (``desk/canned.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from common.errors import Conflict
from storage.models import CannedResponse
from storage.records.base import Records


class CannedRecords(Records):
    async def canned_responses(self) -> Sequence[CannedResponse]:
        """Every canned response, by title."""
        return (await self.db.execute(select(CannedResponse).order_by(CannedResponse.title))).scalars().all()

    async def canned_response(self, canned_id: int) -> CannedResponse | None:
        return await self.db.get(CannedResponse, canned_id)

    async def save_canned(self, title: str, text: str, author_id: int, created_at: datetime) -> CannedResponse:
        """A new canned response; Conflict when one has this title already (also when another
        transaction saved it at the same moment: the unique title decides)."""
        exists = (await self.db.execute(select(CannedResponse.id).where(CannedResponse.title == title))).first()
        if exists is not None:
            raise _duplicate_title(title)
        row = CannedResponse(title=title, text=text, created_by_id=author_id, created_at=created_at)
        self.db.add(row)
        try:
            await self.db.flush()
        except IntegrityError as exc:
            if "title" not in str(exc.orig):  # not the unique title: not a duplicate
                raise
            raise _duplicate_title(title) from exc
        return row

    async def delete_canned(self, row: CannedResponse) -> None:
        await self.db.delete(row)


def _duplicate_title(title: str) -> Conflict:
    return Conflict(f"a canned response titled {title!r} exists already")
