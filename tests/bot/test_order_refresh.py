"""The shop's order ids follow the store: looked at every few seconds, rebuilt only on a change."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.app import App
from bot.jobs.order_refresh import OrderIdsRefresher
from knowledge.order_ids import OrderIds
from storage.tickets import SqlTicketStore
from tests.factories import order


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def import_orders(app: App, *ids: str) -> None:
    """As ``deskbot orders import`` would: straight into the store, nothing told to the app."""
    async with app.tickets.session() as tx:
        await tx.upsert_orders([order(order_id) for order_id in ids])


async def test_looks_at_most_every_interval_and_rebuilds_only_on_a_change(app: App) -> None:
    clock = Clock()
    refresher = OrderIdsRefresher(app.tickets, app.services, every=5.0, clock=clock)
    assert await refresher.check()  # the version of what the shop holds is unknown: look
    assert not await refresher.check(force=True)  # nothing changed: the same OrderIds stays
    before = app.services.shop.order_ids

    await import_orders(app, "KX-20417", "KX-20418")
    clock.now = 4.0
    assert not await refresher.check() and app.services.shop.order_ids is before  # not looked yet
    clock.now = 5.0
    assert await refresher.check()
    assert app.services.shop.order_ids.spelling("kx 20418") == "KX-20418"
    assert [shape.describe() for shape in app.services.shop.order_ids.shapes] == ["KX-99999"]

    async with app.tickets.session() as tx:  # an update keeps the ids: nothing to rebuild
        await tx.upsert_orders([order("KX-20417", delivered_days_ago=1)])
    clock.now = 10.0
    assert not await refresher.check()


async def test_a_whole_shop_swapped_meanwhile_is_brought_up_to_date(app: App) -> None:
    await import_orders(app, "KX-20417")
    version = await OrderIdsRefresher.read_version(app.tickets)
    app.services.shop = app.services.shop.with_order_ids(OrderIds(["KX-20417"]))
    refresher = OrderIdsRefresher(app.tickets, app.services, version=version, every=0.0)
    assert not await refresher.check()
    # e.g. an admin's new FAQ phrasing reloaded everything from ids read a moment earlier
    app.services.shop = app.services.shop.with_order_ids(OrderIds())
    assert await refresher.check() and "KX-20417" in app.services.shop.order_ids


@pytest.mark.parametrize("app", ["sqlite+memory"], indirect=True)
async def test_a_failed_look_keeps_the_ids_and_is_logged(
    app: App, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = SqlTicketStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'missing' / 'deskbot.db'}")
    held = app.services.shop.order_ids
    try:
        with caplog.at_level(logging.WARNING, logger="deskbot.orders"):
            assert not await OrderIdsRefresher(unreachable, app.services).check()
    finally:
        await unreachable.close()
    assert app.services.shop.order_ids is held
    # An outage (/readyz and the turn's 503 report it): one warning line, no traceback.
    [record] = [r for r in caplog.records if "order ids not refreshed" in r.getMessage()]
    assert record.levelno == logging.WARNING and record.exc_info is None

