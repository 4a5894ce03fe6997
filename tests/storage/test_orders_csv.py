"""Importing orders from CSV: parsing, error positions, and the upsert into the store."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import ShopConfig
from storage.models import Customer, Order
from storage.orders_csv import OrdersCsvError, date_shift, import_orders, parse_orders_csv
from storage.tickets import SqlTicketStore

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).parent / "data"
EXAMPLE = DATA / "orders.csv"
HEADER = "order_id,email,phone,customer_name,sku,item_name,size,quantity,unit_price,currency,status,ordered_at,delivered_at"
ROW = "A-1,ann@example.com,,Ann,SKU-1,Shoe,42,1,10.00,EUR,delivered,2024-03-01,"
UTC = UTC


def write(tmp_path: Path, *lines: str, name: str = "orders.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_example_file() -> None:
    orders = {o.order_id: o for o in parse_orders_csv(EXAMPLE)}
    assert list(orders) == ["A-1001", "A-1002", "B-2001"]

    a = orders["A-1001"]
    assert (a.email, a.phone, a.customer_name, a.currency, a.status) == (
        "ann@example.com", "+4915112345678", "Ann Lee", "EUR", "delivered",
    )
    assert a.items == [
        {"sku": "SHOE-42", "name": "Trail Runner", "size": "42", "quantity": 1, "unit_price": 89.9},
        {"sku": "SOCK-3P", "name": "Socks, 3 pack", "size": "M", "quantity": 2, "unit_price": 9.99},
    ]
    assert a.total == 109.88  # summed exactly, not 109.88000000000001
    assert a.ordered_at == datetime(2024, 3, 1, 9, 15, tzinfo=UTC)  # +01:00 converted
    assert a.delivered_at == datetime(2024, 3, 4, tzinfo=UTC)  # a date is midnight UTC

    b = orders["A-1002"]
    assert (b.customer_name, b.items[0]["name"], b.currency) == ("王小明", "T-Shirt “红色”", "EUR")
    assert (b.total, b.delivered_at) == (59.97, None)
    assert b.ordered_at == datetime(2024, 3, 5, 8, 0, tzinfo=UTC)  # naive means UTC

    c = orders["B-2001"]
    assert (c.email, c.customer_name, c.currency, c.total) == (None, None, "USD", 15.0)
    assert c.items == [{"sku": "CAP-01", "name": "Cap", "size": None, "quantity": 1, "unit_price": 15.0}]


def test_example_file_starts_with_a_bom() -> None:
    assert EXAMPLE.read_bytes().startswith(b"\xef\xbb\xbf")


def test_column_order_extra_columns_blank_lines_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(
        b"Status,Order_ID,note,email,phone,customer_name,sku,item_name,size,quantity,unit_price,currency,ordered_at,delivered_at\r\n"
        b"\r\n"
        b"paid,X-1,ignored,,,,S,Hat,,2,0.10,,2024-01-31T23:59:59Z,\r\n"
    )
    [order] = parse_orders_csv(path)
    assert (order.order_id, order.status, order.currency, order.total) == ("X-1", "paid", "EUR", 0.2)
    assert order.ordered_at == datetime(2024, 1, 31, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    ("lines", "line", "column", "message"),
    [
        pytest.param([HEADER.replace(",quantity", "")], 1, "quantity", "missing from the header", id="missing-column"),
        pytest.param([HEADER + ",email"], 1, "email", "appears twice", id="duplicate-column"),
        pytest.param([HEADER, ROW, ROW.replace(",1,10.00", ",two,10.00")], 3, "quantity", "not a whole number", id="quantity"),
        pytest.param([HEADER, ROW.replace(",1,10.00", ",0,10.00")], 2, "quantity", "not positive", id="zero-quantity"),
        pytest.param([HEADER, ROW.replace("10.00", "10,00")], 2, None, "expected 13 fields", id="comma-price"),
        pytest.param([HEADER, ROW.replace("10.00", '"10,00"')], 2, "unit_price", "not a number", id="decimal-comma"),
        pytest.param([HEADER, ROW.replace("10.00", "-1")], 2, "unit_price", "not a price", id="negative-price"),
        pytest.param([HEADER, ROW.replace("10.00", "nan")], 2, "unit_price", "not a price", id="nan-price"),
        pytest.param([HEADER, ROW.replace(",,", ",")], 2, None, "expected 13 fields like the header, found 12", id="short-row"),
        pytest.param([HEADER, ROW.replace("2024-03-01", "01/03/2024")], 2, "ordered_at", "not an ISO date", id="date"),
        pytest.param([HEADER, ROW.replace("A-1,", " ,")], 2, "order_id", "is empty", id="no-order-id"),
        pytest.param([HEADER, ROW.replace("A-1,", "A" * 65 + ",")], 2, "order_id", "longer than 64", id="long-id"),
        pytest.param([HEADER, ROW.replace(",EUR,", ",EURO-DOLLAR,")], 2, "currency", "longer than 8", id="currency"),
        pytest.param(
            [HEADER, ROW, "", ROW.replace("ann@", "bob@")], 4, "email", "differs from 'ann@example.com' given for order A-1 on line 2",
            id="conflicting-order-field",
        ),
        pytest.param([HEADER, ROW.replace("delivered", "")], 2, "status", "empty on every row", id="no-status"),
        pytest.param(
            [HEADER, ROW.replace("Shoe", '"Shoe\nwith a\nnewline"'), ROW.replace(",1,", ",x,")], 5, "quantity", "whole number",
            id="line-after-multiline-field",
        ),
        pytest.param([HEADER, ROW.replace("10.00", "99999999999")], 2, "unit_price", "totals more than", id="total-too-big"),
        pytest.param([HEADER, ROW.replace("Shoe", '"Sh"oe"')], 2, None, "malformed CSV", id="stray-quote"),
    ],
)
def test_errors_name_file_line_and_column(
    tmp_path: Path, lines: list[str], line: int, column: str | None, message: str
) -> None:
    path = write(tmp_path, *lines)
    with pytest.raises(OrdersCsvError) as caught:
        parse_orders_csv(path)
    error = caught.value
    assert (error.path, error.line, error.column) == (path, line, column)
    assert message in str(error)
    assert str(error).startswith(f"{path}, line {line}")
    if column:
        assert f"column {column}:" in str(error)


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(f"{HEADER}\n{ROW}\n".encode() + ROW.replace("Ann", "Zoë").encode("latin-1") + b"\n")
    with pytest.raises(OrdersCsvError, match=r"line 3: not UTF-8") as caught:
        parse_orders_csv(path)
    assert caught.value.line == 3


def test_empty_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(OrdersCsvError, match="empty"):
        parse_orders_csv(empty)
    with pytest.raises(OrdersCsvError, match="cannot read") as caught:
        parse_orders_csv(tmp_path / "nope.csv")
    assert caught.value.line is None
    assert parse_orders_csv(write(tmp_path, HEADER)) == []


async def test_import_adds_then_updates(ticket_store: SqlTicketStore, tmp_path: Path) -> None:
    assert await import_orders(ticket_store, EXAMPLE) == (3, 0)
    changed = write(
        tmp_path,
        HEADER,
        "A-1001,ann@example.com,,Ann Lee,SHOE-42,Trail Runner,42,1,89.90,EUR,returned,2024-03-01T10:15:00+01:00,2024-03-04",
        "C-3001,carl@example.com,,Carl,BAG,Bag,,1,40,EUR,paid,2024-04-01,",
    )
    assert await import_orders(ticket_store, changed) == (1, 1)
    async with ticket_store.session() as tx:
        customer = Customer(id=999, email="Ann@Example.com")
        [ann] = await tx.orders_for(customer)
        assert (ann.order_id, ann.status, ann.total, len(ann.items)) == ("A-1001", "returned", 89.9, 1)
        stored = await tx.get_order("a-1002")
        assert stored is not None and stored.customer_name == "王小明" and stored.total == 59.97
        assert stored.ordered_at == datetime(2024, 3, 5, 8, 0, tzinfo=UTC)


async def test_import_of_a_bad_file_writes_nothing(ticket_store: SqlTicketStore, tmp_path: Path) -> None:
    bad = write(tmp_path, HEADER, ROW, ROW.replace("A-1,", "A-2,").replace("2024-03-01", "yesterday"))
    with pytest.raises(OrdersCsvError, match="line 3, column ordered_at"):
        await import_orders(ticket_store, bad)
    async with ticket_store.session() as tx:
        assert await tx.get_order("A-1") is None


# -- moving demo/test data to today (`deskbot orders import FILE --as-of DAY`) ---------------
def dates(orders: list[Order]) -> dict[str, tuple[datetime, datetime | None]]:
    return {o.order_id: (o.ordered_at, o.delivered_at) for o in orders}


def test_date_shift_is_whole_days_from_the_as_of_day_to_today() -> None:
    assert date_shift(date(2026, 11, 23), today=date(2026, 12, 2)) == timedelta(days=9)
    assert date_shift(date(2024, 3, 1), today=date(2024, 2, 28)) == timedelta(days=-2)  # a leap year
    assert date_shift(date(2026, 11, 23), today=date(2026, 11, 23)) == timedelta(0)
    today = datetime.now(UTC).date()
    assert date_shift(today - timedelta(days=40)) == timedelta(days=40)  # today is UTC's


def test_shift_moves_every_date_column_and_keeps_the_time_of_day() -> None:
    written = parse_orders_csv(EXAMPLE)
    moved = parse_orders_csv(EXAMPLE, shift=timedelta(days=1000))
    assert len(written) == len(moved) == 3
    for before, after in zip(written, moved, strict=True):
        assert after.ordered_at == before.ordered_at + timedelta(days=1000)
        assert after.ordered_at.time() == before.ordered_at.time()
        if before.delivered_at is None:
            assert after.delivered_at is None
        else:
            assert after.delivered_at == before.delivered_at + timedelta(days=1000)
        assert (after.order_id, after.items, after.total, after.status) == (
            before.order_id, before.items, before.total, before.status,
        )
    # the +01:00 order time is converted to UTC first, then moved: 2024-03-01 09:15 UTC + 1000 days
    assert moved[0].ordered_at == datetime(2026, 11, 26, 9, 15, tzinfo=UTC)
    assert moved[0].delivered_at == datetime(2026, 11, 29, tzinfo=UTC)


def test_a_shift_past_the_calendar_names_the_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER, ROW.replace("2024-03-01", "9999-12-30"))
    with pytest.raises(OrdersCsvError, match="line 2, column ordered_at: '9999-12-30' moved by 5 days"):
        parse_orders_csv(path, shift=timedelta(days=5))


async def test_importing_again_with_a_shift_stores_the_same_dates(ticket_store: SqlTicketStore) -> None:
    """`make run` imports the demo each time: the dates follow the file, never drift from the store."""
    written = dates(parse_orders_csv(EXAMPLE))

    async def stored() -> dict[str, tuple[datetime, datetime | None]]:
        async with ticket_store.session() as tx:
            found = [await tx.get_order(order_id) for order_id in written]
        return dates([order for order in found if order is not None])

    nine = date_shift(date(2024, 3, 1), today=date(2024, 3, 10))
    assert await import_orders(ticket_store, EXAMPLE, shift=nine) == (3, 0)
    first = await stored()
    assert await import_orders(ticket_store, EXAMPLE, shift=nine) == (0, 3)
    assert await stored() == first
    assert first["A-1001"] == (datetime(2024, 3, 10, 9, 15, tzinfo=UTC), datetime(2024, 3, 13, tzinfo=UTC))

    # the next day: one day later than the file says plus ten, not than the store says
    ten = date_shift(date(2024, 3, 1), today=date(2024, 3, 11))
    assert await import_orders(ticket_store, EXAMPLE, shift=ten) == (0, 3)
    assert await stored() == {
        order_id: (ordered + ten, None if delivered is None else delivered + ten)
        for order_id, (ordered, delivered) in written.items()
    }


def test_the_demo_orders_keep_the_readme_tour_working_on_any_day() -> None:
    """Makefile's `run` imports the demo as of DEMO_ORDERS_AS_OF; the tour's orders then sit where README says."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    declared = re.search(r"^DEMO_ORDERS_AS_OF := (\S+)$", makefile, re.M)
    assert declared is not None
    as_of = date.fromisoformat(declared.group(1))
    assert "orders import examples/shop/orders.csv --as-of $(DEMO_ORDERS_AS_OF)" in makefile
    window = timedelta(days=ShopConfig().return_window_days)
    demo = ROOT / "examples/shop/orders.csv"
    for today in (datetime.now(UTC).date(), date(2031, 2, 28), as_of):
        now = datetime.combine(today, datetime.now(UTC).time(), UTC)
        orders = {o.order_id: o for o in parse_orders_csv(demo, shift=date_shift(as_of, today=today))}
        age = {order_id: now - o.delivered_at for order_id, o in orders.items() if o.delivered_at is not None}
        assert age["A10243"] < window  # the tour's return: delivered recently
        assert age["A10234"] > window + timedelta(days=14)  # delivered long ago: escalates with the reason
        assert window < age["A10239"] < window + timedelta(days=2)  # just outside, by one day
        assert max(o.ordered_at for o in orders.values()) <= now  # nothing ordered in the future
