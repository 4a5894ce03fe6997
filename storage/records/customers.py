"""Customers and their channel identities: who is writing, found or created on first contact."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Insert, bindparam, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from common.errors import StorageError
from storage.models import (
    Customer,
    Identity,
    Owner,
    utcnow,
)
from storage.records.base import Records

CUSTOMER_BY_IDENTITY = (
    select(Customer)
    .join(Identity, Identity.customer_id == Customer.id)
    .where(Identity.channel == bindparam("channel"), Identity.external_id == bindparam("external_id"))
)


class CustomerRecords(Records):
    async def resolve_customer(
        self,
        channel: str,
        external_id: str,
        chat_id: str,
        display_name: str | None = None,
        language: str | None = None,
    ) -> tuple[Customer, bool]:
        """Find the customer behind a channel identity, creating both on first contact.

        Safe against a concurrent first contact (two workers, a resent message): the
        loser of the race gets the winner's customer instead of an IntegrityError.
        """
        row = await self._customer_by_identity(channel, external_id)
        if row is not None:
            return self._seen(row, channel, chat_id, display_name), False
        customer = Customer(
            display_name=display_name,
            language=language or "en",
            tags=[],
            owner=Owner.BOT,
            last_channel=channel,
            last_chat_id=chat_id,
        )
        self.db.add(customer)
        await self.db.flush()
        # A plain INSERT would fail the whole turn (and lose its message) when another
        # transaction inserted the same identity meanwhile; PostgreSQL makes this INSERT
        # wait for that transaction, then skip.
        inserted = await self.db.execute(
            self._insert_identity_unless_known().values(
                customer_id=customer.id, channel=channel, external_id=external_id, chat_id=chat_id, created_at=utcnow()
            )
        )
        if inserted.first() is not None:
            return customer, True
        await self.db.delete(customer)
        await self.db.flush()
        winner = await self._customer_by_identity(channel, external_id)
        if winner is None:  # pragma: no cover - the conflicting row is committed by then
            raise StorageError(f"identity {channel}:{external_id} conflicts but cannot be found")
        return self._seen(winner, channel, chat_id, display_name), False

    async def _customer_by_identity(self, channel: str, external_id: str) -> Customer | None:
        found = await self.db.execute(CUSTOMER_BY_IDENTITY, {"channel": channel, "external_id": external_id})
        return found.scalar_one_or_none()

    @staticmethod
    def _seen(customer: Customer, channel: str, chat_id: str, display_name: str | None) -> Customer:
        if display_name and not customer.display_name:
            customer.display_name = display_name
        if customer.last_channel != channel or customer.last_chat_id != chat_id:
            customer.last_channel, customer.last_chat_id = channel, chat_id
        if customer.unreachable:
            customer.unreachable = False  # they wrote to us: the block is lifted
        return customer

    def _insert_identity_unless_known(self) -> Insert:
        """``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` (no row back: it existed)."""
        conflict = [Identity.channel, Identity.external_id]
        dialect = self.db.get_bind().dialect.name
        if dialect == "postgresql":
            return postgresql.insert(Identity).on_conflict_do_nothing(index_elements=conflict).returning(Identity.id)
        if dialect == "sqlite":
            return sqlite.insert(Identity).on_conflict_do_nothing(index_elements=conflict).returning(Identity.id)
        return insert(Identity).returning(Identity.id)  # other databases: no race protection

    async def find_customer(self, channel: str, external_id: str) -> Customer | None:
        """The customer behind a channel identity, without creating one."""
        return await self._customer_by_identity(channel, external_id)

    async def get_customer(self, customer_id: int) -> Customer | None:
        return await self.db.get(Customer, customer_id)

    async def identities(self, customer_id: int) -> Sequence[Identity]:
        return (
            (await self.db.execute(select(Identity).where(Identity.customer_id == customer_id)))
            .scalars()
            .all()
        )
