"""``storage.migrate.upgrade`` builds exactly the schema of storage/models.py, on both backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from storage.migrate import current, head, upgrade
from storage.models import SEARCH_INDEXES, Base
from storage.tickets import SqlTicketStore


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a database without tables (a SQLite file whose folder does not exist yet)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'not' / 'yet' / 'deskbot.db'}"
    url: str = request.getfixturevalue("empty_postgres_database")
    return url


async def differences(url: str, metadata: MetaData = Base.metadata) -> list[Any]:
    def compare(connection: Connection) -> list[Any]:
        def on_this_backend(obj: Any, name: Any, type_: str, reflected: bool, compare_to: Any) -> bool:
            # Indexes declared ``.ddl_if(dialect="postgresql")`` (trigram search) exist there only.
            condition = getattr(obj, "_ddl_if", None)
            # SQLite's search tables (FTS5 and its shadow tables) are created by SQL, not models.
            if type_ == "table" and reflected and str(name).split("_fts")[0] + "_fts" in SEARCH_INDEXES:
                return False
            return condition is None or condition.dialect in (None, connection.dialect.name)

        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "compare_server_default": True, "include_object": on_this_backend},
        )
        return list(compare_metadata(context, metadata))

    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(compare)
    finally:
        await engine.dispose()


async def test_upgrade_builds_the_models_schema(empty_database: str) -> None:
    assert head() == "0005"
    assert await current(empty_database) is None
    await upgrade(empty_database)
    assert await current(empty_database) == head()
    assert await differences(empty_database) == []


async def test_upgrade_is_idempotent(empty_database: str) -> None:
    await upgrade(empty_database)
    await upgrade(empty_database)
    assert await current(empty_database) == head()
    assert await differences(empty_database) == []


async def test_the_comparison_would_notice_a_difference(empty_database: str) -> None:
    # Guards the tests above against comparing nothing with nothing.
    await upgrade(empty_database)
    extended = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.tables.values():
        copy = table.to_metadata(extended)
        for index in copy.indexes:  # to_metadata does not carry .ddl_if over
            original = next(i for i in table.indexes if i.name == index.name)
            index._ddl_if = getattr(original, "_ddl_if", None)
    Table("extra", extended, Column("id", Integer, primary_key=True))
    extended.tables["customers"].append_column(Column("nickname", Integer))
    found = {(diff[0], getattr(diff[-1], "name", None)) for diff in await differences(empty_database, extended)}
    assert found == {("add_table", "extra"), ("add_column", "nickname")}


async def test_store_works_on_a_migrated_database(empty_database: str) -> None:
    await upgrade(empty_database)
    store = SqlTicketStore.from_url(empty_database)
    try:
        async with store.session() as tx:
            customer, _ = await tx.resolve_customer("telegram", "1", "1")
            await tx.upsert_orders([])
        async with store.session() as tx:
            assert (await tx.resolve_customer("telegram", "1", "1"))[0].id == customer.id
    finally:
        await store.close()


async def test_the_later_revisions_downgrade_and_upgrade_again(empty_database: str) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from storage.migrate import alembic_config

    await upgrade(empty_database)
    engine = create_async_engine(empty_database, poolclass=pool.NullPool)
    try:
        async with engine.begin() as connection:

            def down(sync_connection: Connection) -> set[str]:
                config = alembic_config()
                config.attributes["connection"] = sync_connection
                command.downgrade(config, "0001")
                return set(inspect(sync_connection).get_table_names())

            tables = await connection.run_sync(down)
    finally:
        await engine.dispose()
    assert await current(empty_database) == "0001"
    assert not tables & {"agent_sessions", "api_tokens", "login_throttle", "canned_responses", "telegram_tickets",
                         "missed_questions", "knowledge_additions"}
    await upgrade(empty_database)
    assert await differences(empty_database) == []
