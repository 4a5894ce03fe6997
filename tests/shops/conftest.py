"""Fixtures for the test shops: the whole deskbot serving one shop, both backend pairs.

``shop_app`` builds the app for the shop named by the test module's ``SHOP`` (sqlite+memory
and postgres+redis, like the suite's ``app`` fixture): settings from config.yaml with the
shop's ``DESKBOT_SHOP__*`` overrides, its orders imported through the real importer before
start-up, and the session's trained classifier — trained from intents/data only, so it is
the model ``make run`` builds for this shop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite(
    "tests.shops.harness",
    "tests.shops.conversations_electronics",
    "tests.shops.conversations_cosmetics",
    "tests.shops.conversations_furniture",
)

from bot.app import App  # noqa: E402
from intents.classifier import BuiltinClassifier  # noqa: E402
from storage.tickets import SqlTicketStore  # noqa: E402
from tests.conftest import _delete_keys, empty_tables, storage_environ  # noqa: E402
from tests.shops.harness import SHOPS, open_shop_app, shop_settings  # noqa: E402


@pytest.fixture
def shop_key(request: pytest.FixtureRequest) -> str:
    """The shop a test module plays (its ``SHOP``); parametrize ``shop_key`` to play several."""
    key: str = request.module.SHOP
    return key


@pytest.fixture
def shop_classifier(trained_classifier: BuiltinClassifier) -> BuiltinClassifier:
    """The classifier the shop gets: the session's, as config.yaml configures it (override per module)."""
    return trained_classifier


@pytest.fixture
def shop_environ() -> dict[str, str]:
    """Extra ``DESKBOT_*`` overrides for the app (override per module, e.g. the classifier model)."""
    return {}


@pytest.fixture(params=["sqlite+memory", "postgres+redis"])
async def shop_app(
    request: pytest.FixtureRequest,
    shop_key: str,
    tmp_path: Path,
    shop_classifier: BuiltinClassifier,
    shop_environ: dict[str, str],
    redis_prefix: str,
) -> AsyncIterator[App]:
    spec = SHOPS[shop_key]
    sqlite = request.param == "sqlite+memory"
    environ = storage_environ(request, tmp_path, redis_prefix, server=not sqlite) | shop_environ
    settings = shop_settings(spec, tmp_path, environ)

    async def empty(store: SqlTicketStore) -> None:
        await empty_tables(store.engine)

    async with open_shop_app(
        settings, shop_classifier, create_schema=sqlite, prepare_store=None if sqlite else empty
    ) as deskbot:
        yield deskbot
    if not sqlite:
        await _delete_keys(settings.state.redis_url, redis_prefix)
