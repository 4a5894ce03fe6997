"""The outbox and proofs: outbound messages sent under a lease, durable update dedupe, sender proofs.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Issue 11's schema ("Nothing lost, nobody impersonated"). Written to match ``Message``,
``Identity`` and ``ProcessedUpdate`` in storage/models.py exactly, as
tests/storage/test_migrations.py checks on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(_timestamp("not_before"))
        batch.add_column(_timestamp("lease_until"))
        batch.add_column(_timestamp("sent_at"))
        batch.add_column(sa.Column("reply_to_id", sa.Integer(), nullable=True))
    op.create_index("ix_messages_pending", "messages", ["status", "channel", "id"])
    op.create_index("ix_messages_reply_to", "messages", ["reply_to_id"])
    with op.batch_alter_table("identities") as batch:
        batch.add_column(sa.Column("proof_hash", sa.String(length=64), nullable=True))
    op.create_table(
        "processed_updates",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        _timestamp("created_at", nullable=False),
        sa.PrimaryKeyConstraint("source", "key", name=op.f("pk_processed_updates")),
    )
    op.create_index(op.f("ix_processed_updates_created_at"), "processed_updates", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_processed_updates_created_at"), table_name="processed_updates")
    op.drop_table("processed_updates")
    with op.batch_alter_table("identities") as batch:
        batch.drop_column("proof_hash")
    op.drop_index("ix_messages_reply_to", table_name="messages")
    op.drop_index("ix_messages_pending", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        for column in ("reply_to_id", "sent_at", "lease_until", "not_before", "attempts"):
            batch.drop_column(column)
