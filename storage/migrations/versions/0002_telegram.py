"""Telegram agents' group: where each escalated ticket is posted (topic, card, message).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Matches ``TelegramTicketLink`` in storage/models.py (checked by tests/storage/test_migrations.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "telegram_tickets",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=False),
        sa.Column("thread_id", sa.Integer(), nullable=True),
        sa.Column("card_message_id", sa.Integer(), nullable=True),
        sa.Column("ticket_message_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=128), nullable=True),
        sa.Column("card_digest", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_telegram_tickets_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_telegram_tickets")),
    )
    op.create_index("ix_telegram_tickets_thread", "telegram_tickets", ["chat_id", "thread_id"])
    op.create_index("ix_telegram_tickets_message", "telegram_tickets", ["chat_id", "ticket_message_id"])


def downgrade() -> None:
    op.drop_table("telegram_tickets")
