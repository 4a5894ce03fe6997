"""The shop's orders as imported: looked up by id, listed for a customer, upserted in batches."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence

from sqlalchemy import func, or_, select

from storage.models import (
    Customer,
    Order,
)
from storage.records.base import Records


class OrderRecords(Records):
    async def get_order(self, order_id: str) -> Order | None:
        """The order with this id, any case. The usual spellings are looked up through the
        unique index first; only an odd mix of cases falls back to comparing ``upper()``,
        which reads the whole table (measured by bench/agents_queue.py's ticket view)."""
        wanted = order_id.strip()
        spellings = {wanted, wanted.upper(), wanted.lower()}
        found = (await self.db.execute(select(Order).where(Order.order_id.in_(spellings)))).scalars().first()
        if found is not None:
            return found
        return (
            await self.db.execute(select(Order).where(func.upper(Order.order_id) == wanted.upper()))
        ).scalar_one_or_none()

    async def order_ids(self) -> list[str]:
        """Every order id in the store, as the shop writes it (for recognising them in messages)."""
        return list((await self.db.execute(select(Order.order_id))).scalars().all())

    async def order_id_batches(self, size: int = 20_000) -> AsyncIterator[list[str]]:
        """Every order id in batches by row id, so a reader of 500,000 can let other tasks run
        between batches instead of holding the event loop for the whole read."""
        after = 0
        while True:
            query = select(Order.id, Order.order_id).where(Order.id > after).order_by(Order.id).limit(size)
            rows = (await self.db.execute(query)).all()
            if not rows:
                return
            yield [order_id for _, order_id in rows]
            after = rows[-1][0]

    async def orders_version(self) -> tuple[int, int, str]:
        """(number of orders, highest row id, highest order id): changes whenever orders are
        added or removed (even when a table emptied and refilled reuses the row ids), cheaply
        enough for a running bot to poll it to notice an import."""
        # Three statements: a lone max() is an index lookup; combined, SQLite scans for each.
        count = await self.db.scalar(select(func.count()).select_from(Order))
        highest = await self.db.scalar(select(func.max(Order.id)))
        last = await self.db.scalar(select(func.max(Order.order_id)))
        return int(count or 0), int(highest or 0), str(last or "")

    async def orders_for(self, customer: Customer) -> Sequence[Order]:
        """Orders linked to the customer or matching their known e-mail/phone."""
        conditions = [Order.customer_id == customer.id]
        if customer.email:
            conditions.append(func.lower(Order.email) == customer.email.lower())
        if customer.phone:
            conditions.append(Order.phone == customer.phone)
        return (
            (await self.db.execute(select(Order).where(or_(*conditions)).order_by(Order.ordered_at.desc())))
            .scalars()
            .all()
        )

    async def upsert_orders(self, orders: Iterable[Order]) -> tuple[int, int]:
        """Insert new orders and update known ones by ``order_id``; returns (added, updated)."""
        added = updated = 0
        for order in orders:
            existing = await self.get_order(order.order_id)
            if existing is None:
                self.db.add(order)
                added += 1
                continue
            for attr in ("email", "phone", "customer_name", "items", "total", "currency", "status",
                         "ordered_at", "delivered_at"):
                setattr(existing, attr, getattr(order, attr))
            updated += 1
        await self.db.flush()
        return added, updated
