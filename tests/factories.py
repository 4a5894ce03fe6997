"""Builders for test data: orders relative to now, a chat driver for whole dialogues."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import count
from typing import Any

from bot.app import App
from common.messages import Incoming, Outgoing
from storage.models import Order, utcnow

_keys = count(1)


def order(
    order_id: str,
    *,
    email: str = "alice@example.com",
    phone: str | None = "+44 7700 900123",
    delivered_days_ago: int | None = 5,
    items: list[dict[str, Any]] | None = None,
    status: str | None = None,
    now: datetime | None = None,
) -> Order:
    now = now or utcnow()
    items = items or [{"sku": "HD-001", "name": "Everyday Hoodie", "size": "M", "quantity": 1, "unit_price": 49.9}]
    delivered = now - timedelta(days=delivered_days_ago) if delivered_days_ago is not None else None
    return Order(
        order_id=order_id,
        email=email,
        phone=phone,
        customer_name="Alice Example",
        items=items,
        total=sum(float(i["unit_price"]) * int(i.get("quantity", 1)) for i in items),
        currency="EUR",
        status=status or ("delivered" if delivered else "shipped"),
        ordered_at=(delivered or now) - timedelta(days=3),
        delivered_at=delivered,
    )


async def add_orders(app: App, *orders: Order) -> None:
    """Import orders, then have the app notice them as it would within a few seconds of an
    import (the same version check and rebuild, without waiting for the next interval)."""
    async with app.tickets.session() as tx:
        await tx.upsert_orders(orders)
    await app.orders.check(force=True)


@dataclass
class Chat:
    """Drives one customer's conversation through the pipeline, as an adapter would."""

    app: App
    user: str
    channel: str = "rest"
    language: str | None = None
    last: list[Outgoing] = field(default_factory=list)

    async def say(self, text: str, *, key: str | None = None) -> list[str]:
        return await self._send(Incoming(self.channel, self.user, self.user, text, delivery_key=key or self._key(),
                                         language=self.language, replies_in_answer=True))

    async def press(self, payload: str) -> list[str]:
        return await self._send(Incoming(self.channel, self.user, self.user, "", delivery_key=self._key(),
                                         payload=payload, language=self.language, replies_in_answer=True))

    async def press_title(self, title_part: str) -> list[str]:
        for reply in self.last:
            for button in reply.buttons:
                if title_part.lower() in button.title.lower():
                    return await self.press(button.payload)
        raise AssertionError(f"no button like {title_part!r} in {[b.title for r in self.last for b in r.buttons]}")

    async def _send(self, msg: Incoming) -> list[str]:
        self.last = await self.app.pipeline.handle(msg)
        return [o.text for o in self.last]

    async def inbox(self) -> list[str]:
        """Replies queued for this customer by agents, handed over once (as in the answer to
        the customer's next message)."""
        async with self.app.tickets.session() as tx:
            customer = await tx.find_customer(self.channel, self.user)
            assert customer is not None
            return [m.text for m in await tx.hand_over_replies(customer.id, self.channel, None)]

    def _key(self) -> str:
        return f"{self.user}-{next(_keys)}"

    @property
    def text(self) -> str:
        return "\n".join(o.text for o in self.last)
