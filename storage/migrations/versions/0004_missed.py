"""Learning from what the bot missed: missed customer questions and the phrasings/aliases admins add.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Issue 10's schema. Written to match ``KnowledgeAddition`` and ``MissedQuestion`` in
storage/models.py exactly, as tests/storage/test_migrations.py checks on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _enum(name: str, nullable: bool = False) -> sa.Column[object]:
    # Enum values as plain VARCHAR(16), as 0001 explains.
    return sa.Column(name, sa.String(length=16), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "knowledge_additions",
        sa.Column("id", sa.Integer(), nullable=False),
        _enum("kind"),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("text", sa.String(length=500), nullable=False),
        sa.Column("folded", sa.String(length=500), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        _timestamp("created_at"),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["agents.id"], name=op.f("fk_knowledge_additions_created_by_id_agents"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_knowledge_additions")),
        sa.UniqueConstraint("kind", "target", "language", "folded", name="uq_knowledge_addition_form"),
    )

    op.create_table(
        "missed_questions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        _enum("reason"),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("intent", sa.String(length=64), nullable=True),
        sa.Column("confidence", sa.Double(), nullable=True),
        _timestamp("created_at"),
        _timestamp("resolved_at", nullable=True),
        _enum("resolution", nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("addition_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_missed_questions_message_id_messages"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_missed_questions_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"], ["agents.id"], name=op.f("fk_missed_questions_resolved_by_id_agents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["addition_id"], ["knowledge_additions.id"],
            name=op.f("fk_missed_questions_addition_id_knowledge_additions"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_missed_questions")),
        sa.UniqueConstraint("message_id", name=op.f("uq_missed_questions_message_id")),
    )
    op.create_index(op.f("ix_missed_questions_customer_id"), "missed_questions", ["customer_id"])
    op.create_index("ix_missed_questions_open", "missed_questions", ["resolved_at", "created_at"])


def downgrade() -> None:
    op.drop_table("missed_questions")
    op.drop_table("knowledge_additions")
