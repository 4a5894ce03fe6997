"""Import shop orders from a CSV export (one row per line item).

Header (any column order; extra columns are ignored)::

    order_id,email,phone,customer_name,sku,item_name,size,quantity,unit_price,currency,status,ordered_at,delivered_at

Rows sharing an ``order_id`` become one ``Order`` whose ``items`` are the rows' line items
and whose ``total`` is the sum of ``quantity * unit_price``; their order-level columns must
agree (a blank cell agrees with anything). Required: ``order_id``, ``status``,
``ordered_at``, ``quantity`` (whole number > 0), ``unit_price`` (>= 0); a blank
``currency`` means EUR; any other blank cell is None. Dates are ISO 8601, a date or a
date and time; without an offset they are UTC. Every error names the file, the line and
the column.

Demo and test data can be written "as of" a fixed day and moved to today on import
(``shift=date_shift(as_of)``): every date moves by the same whole number of days, so
times of day, the gaps between orders and each order's age on the day of import stay as
written, and importing the same file again the same day stores the same dates (the shift
is counted from the file, never from what is stored).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from common.errors import DeskbotError
from storage.models import Order
from storage.tickets import TicketStore

COLUMNS = (
    "order_id",
    "email",
    "phone",
    "customer_name",
    "sku",
    "item_name",
    "size",
    "quantity",
    "unit_price",
    "currency",
    "status",
    "ordered_at",
    "delivered_at",
)
# Columns describing the order (the same on each of its rows), with their size limits.
ORDER_COLUMNS = {
    "email": 320,
    "phone": 40,
    "customer_name": 200,
    "currency": 8,
    "status": 16,
    "ordered_at": None,
    "delivered_at": None,
}
DEFAULT_CURRENCY = "EUR"
MAX_TOTAL = Decimal("9999999999.99")  # orders.total is NUMERIC(12, 2)


class OrdersCsvError(DeskbotError):
    """The CSV cannot be imported; ``line`` is 1-based (the header is line 1)."""

    def __init__(self, path: Path, line: int | None, column: str | None, message: str) -> None:
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column}"
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
        self.column = column


_Fail = Callable[[str, str], OrdersCsvError]  # (column, message) -> error at the current line


@dataclass
class _Draft:
    line: int
    fields: dict[str, Any]
    lines: dict[str, int]  # where each order-level value was first given
    items: list[dict[str, Any]] = field(default_factory=list)
    total: Decimal = Decimal(0)


def date_shift(as_of: date, today: date | None = None) -> timedelta:
    """How far to move a file written as of ``as_of`` so that day becomes ``today`` (UTC)."""
    today = datetime.now(UTC).date() if today is None else today
    return timedelta(days=(today - as_of).days)


def parse_orders_csv(path: str | Path, *, shift: timedelta = timedelta(0)) -> list[Order]:
    """Parse the file into unsaved ``Order`` rows, in order of first appearance.

    ``shift`` is added to every date (see ``date_shift``); real shops import with none.
    """
    path = Path(path)
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1  # first physical line of the record being read
    try:
        header = next(reader, None)
        if header is None:
            raise OrdersCsvError(path, 1, None, "the file is empty; expected a header line")
        index = _header_index(path, header)
        drafts: dict[str, _Draft] = {}
        start = reader.line_num + 1
        for row in reader:
            if row and any(cell.strip() for cell in row):
                _add_row(path, start, index, row, len(header), drafts, shift)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise OrdersCsvError(path, start, None, f"malformed CSV: {exc}") from exc
    return [_order(path, draft) for draft in drafts.values()]


async def import_orders(
    store: TicketStore, path: str | Path, *, shift: timedelta = timedelta(0)
) -> tuple[int, int]:
    """Parse the file and upsert its orders in one transaction; returns (added, updated).

    Nothing is written unless the whole file parses. ``shift`` as in ``parse_orders_csv``.
    """
    orders = parse_orders_csv(path, shift=shift)
    async with store.session() as tx:
        added, updated = await tx.upsert_orders(orders)
    return int(added), int(updated)


# -- parsing ---------------------------------------------------------------------------
def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise OrdersCsvError(path, None, None, f"cannot read: {exc.strerror or exc}") from exc
    try:
        return raw.decode("utf-8-sig")  # tolerates the BOM spreadsheet programs write
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise OrdersCsvError(path, line, None, "not UTF-8 text (save the file as CSV UTF-8)") from exc


def _header_index(path: Path, header: list[str]) -> dict[str, int]:
    names = [name.strip().lower() for name in header]
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        if name in COLUMNS and name in index:
            raise OrdersCsvError(path, 1, name, "column appears twice in the header")
        index.setdefault(name, position)
    missing = [name for name in COLUMNS if name not in index]
    if missing:
        raise OrdersCsvError(path, 1, missing[0], f"missing from the header (missing: {', '.join(missing)})")
    return index


def _add_row(
    path: Path,
    line: int,
    index: dict[str, int],
    row: list[str],
    width: int,
    drafts: dict[str, _Draft],
    shift: timedelta,
) -> None:
    if len(row) != width:
        raise OrdersCsvError(path, line, None, f"expected {width} fields like the header, found {len(row)}")

    def cell(column: str) -> str | None:
        value = row[index[column]].strip()
        return value or None

    def fail(column: str, message: str) -> OrdersCsvError:
        return OrdersCsvError(path, line, column, message)

    order_id = cell("order_id")
    if order_id is None:
        raise fail("order_id", "is empty")
    if len(order_id) > 64:
        raise fail("order_id", "is longer than 64 characters")

    values: dict[str, Any] = {}
    for column, limit in ORDER_COLUMNS.items():
        text = cell(column)
        if text is None:
            values[column] = None
        elif limit is None:
            values[column] = _timestamp(text, fail, column, shift)
        elif len(text) > limit:
            raise fail(column, f"is longer than {limit} characters")
        else:
            values[column] = text.upper() if column == "currency" else text

    quantity = _quantity(cell("quantity"), fail)
    unit_price = _price(cell("unit_price"), fail)
    item = {
        "sku": cell("sku"),
        "name": cell("item_name"),
        "size": cell("size"),
        "quantity": quantity,
        "unit_price": float(unit_price),
    }

    draft = drafts.get(order_id)
    if draft is None:
        draft = drafts[order_id] = _Draft(
            line=line,
            fields={"order_id": order_id, **values},
            lines={column: line for column, value in values.items() if value is not None},
        )
    else:
        for column, value in values.items():
            known = draft.fields[column]
            if value is None:
                continue
            if known is None:
                draft.fields[column], draft.lines[column] = value, line
            elif known != value:
                first = draft.lines[column]
                raise fail(column, f"{value!r} differs from {known!r} given for order {order_id} on line {first}")
    draft.items.append(item)
    draft.total += quantity * unit_price


def _order(path: Path, draft: _Draft) -> Order:
    fields = draft.fields
    for column in ("status", "ordered_at"):
        if fields[column] is None:
            raise OrdersCsvError(path, draft.line, column, f"is empty on every row of order {fields['order_id']}")
    if draft.total > MAX_TOTAL:
        raise OrdersCsvError(path, draft.line, "unit_price", f"order {fields['order_id']} totals more than {MAX_TOTAL}")
    return Order(
        order_id=fields["order_id"],
        email=fields["email"],
        phone=fields["phone"],
        customer_name=fields["customer_name"],
        items=draft.items,
        total=float(draft.total.quantize(Decimal("0.01"))),
        currency=fields["currency"] or DEFAULT_CURRENCY,
        status=fields["status"],
        ordered_at=fields["ordered_at"],
        delivered_at=fields["delivered_at"],
    )


def _quantity(text: str | None, fail: _Fail) -> int:
    if text is None:
        raise fail("quantity", "is empty")
    try:
        quantity = int(text)
    except ValueError:
        raise fail("quantity", f"{text!r} is not a whole number") from None
    if quantity <= 0:
        raise fail("quantity", f"{quantity} is not positive")
    return quantity


def _price(text: str | None, fail: _Fail) -> Decimal:
    if text is None:
        raise fail("unit_price", "is empty")
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise fail("unit_price", f"{text!r} is not a number (use a dot: 12.50)") from None
    if not price.is_finite() or price < 0:
        raise fail("unit_price", f"{text!r} is not a price")
    return price


def _timestamp(text: str, fail: _Fail, column: str, shift: timedelta) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise fail(column, f"{text!r} is not an ISO date (2024-03-01 or 2024-03-01T14:30:00+01:00)") from None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    try:
        return value + shift
    except OverflowError:
        raise fail(column, f"{text!r} moved by {shift.days} days is outside the calendar") from None
