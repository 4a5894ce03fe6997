"""Agents' workspace: sessions, API tokens, login throttling, canned responses, merges, queue.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Issue 5's schema in one revision, after issue 3's Telegram links (0002). Written to match storage/models.py exactly, as
tests/storage/test_migrations.py checks on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _agent_fk(table: str, column: str = "agent_id", ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["agents.id"], name=op.f(f"fk_{table}_{column}_agents"), ondelete=ondelete)


# SQLite search tables (FTS5, trigram) → the table and column each one indexes.
SQLITE_SEARCH = {"tickets_subject_fts": ("tickets", "subject"), "customers_name_fts": ("customers", "display_name")}


def _queue_schema() -> None:
    """The agents' queue (storage/queue.py): the stored SLA urgency key and its indexes."""
    op.add_column("tickets", sa.Column("sla_due_at", sa.DateTime(timezone=True), nullable=True))
    # Same rule as storage.models.sla_due_at_of, for the rows that exist already.
    op.execute(
        "UPDATE tickets SET sla_due_at = CASE WHEN status IN ('resolved', 'closed') THEN NULL "
        "WHEN first_response_at IS NULL AND first_response_due IS NOT NULL THEN first_response_due "
        "ELSE COALESCE(resolution_due, first_response_due, created_at) END"
    )
    op.create_index("ix_tickets_sla_queue", "tickets", ["sla_due_at", "id"])
    op.create_index("ix_tickets_status_sla", "tickets", ["status", "sla_due_at", "id"])
    op.create_index("ix_tickets_assignee_sla", "tickets", ["assignee_id", "sla_due_at", "id"])
    op.create_index("ix_tickets_updated_queue", "tickets", ["updated_at", "id"])
    # Analytics by day and retention by age.
    op.create_index("ix_messages_created", "messages", ["created_at"])
    op.create_index(op.f("ix_tickets_resolved_at"), "tickets", ["resolved_at"])
    op.create_index("ix_ticket_events_kind_created", "ticket_events", ["kind", "created_at"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            "ix_tickets_subject_trgm", "tickets", ["subject"],
            postgresql_using="gin", postgresql_ops={"subject": "gin_trgm_ops"},
        )
        op.create_index(
            "ix_customers_display_name_trgm", "customers", ["display_name"],
            postgresql_using="gin", postgresql_ops={"display_name": "gin_trgm_ops"},
        )
    elif op.get_bind().dialect.name == "sqlite":
        # FTS5 trigram tables + triggers: the same SQL as storage.models.sqlite_search_*.
        for fts, (table, column) in SQLITE_SEARCH.items():
            op.execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5({column}, content='{table}', "
                "content_rowid='id', tokenize='trigram')"
            )
            add = f"INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column});"  # noqa: S608 - constant names
            remove = f"INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column});"  # noqa: S608 - constant names
            op.execute(f"CREATE TRIGGER IF NOT EXISTS {fts}_ai AFTER INSERT ON {table} BEGIN {add} END")
            op.execute(f"CREATE TRIGGER IF NOT EXISTS {fts}_ad AFTER DELETE ON {table} BEGIN {remove} END")
            op.execute(
                f"CREATE TRIGGER IF NOT EXISTS {fts}_au AFTER UPDATE OF {column} ON {table} BEGIN {remove} {add} END"
            )
            op.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")  # noqa: S608 - constant names


def upgrade() -> None:
    _queue_schema()
    # A plain integer without FK (see Ticket.merged_into_id): SQLite can add it in place.
    op.add_column("tickets", sa.Column("merged_into_id", sa.Integer(), nullable=True))

    op.create_table(
        "agent_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=300), nullable=True),
        _timestamp("created_at"),
        _timestamp("last_seen_at"),
        _timestamp("expires_at"),
        _agent_fk("agent_sessions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_agent_sessions_token_hash")),
    )
    op.create_index(op.f("ix_agent_sessions_agent_id"), "agent_sessions", ["agent_id"])
    op.create_index(op.f("ix_agent_sessions_expires_at"), "agent_sessions", ["expires_at"])

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        _timestamp("created_at"),
        _timestamp("last_used_at", nullable=True),
        _timestamp("revoked_at", nullable=True),
        _agent_fk("api_tokens"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_index(op.f("ix_api_tokens_agent_id"), "api_tokens", ["agent_id"])

    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=400), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        _timestamp("window_started_at"),
        _timestamp("locked_until", nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )

    op.create_table(
        "canned_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        _timestamp("created_at"),
        _agent_fk("canned_responses", "created_by_id", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_responses")),
        sa.UniqueConstraint("title", name=op.f("uq_canned_responses_title")),
    )


def downgrade() -> None:
    for table in ("canned_responses", "login_throttle", "api_tokens", "agent_sessions"):
        op.drop_table(table)
    if op.get_bind().dialect.name == "sqlite":
        for fts in SQLITE_SEARCH:
            for suffix in ("ai", "ad", "au"):
                op.execute(f"DROP TRIGGER IF EXISTS {fts}_{suffix}")
            op.execute(f"DROP TABLE IF EXISTS {fts}")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_customers_display_name_trgm", table_name="customers")
        op.drop_index("ix_tickets_subject_trgm", table_name="tickets")
    op.drop_index("ix_ticket_events_kind_created", table_name="ticket_events")
    op.drop_index("ix_messages_created", table_name="messages")
    op.drop_index(op.f("ix_tickets_resolved_at"), table_name="tickets")
    queue_indexes = ("ix_tickets_updated_queue", "ix_tickets_assignee_sla", "ix_tickets_status_sla",
                     "ix_tickets_sla_queue")
    for index in queue_indexes:
        op.drop_index(index, table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("merged_into_id")
        batch.drop_column("sla_due_at")
