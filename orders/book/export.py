"""The order list as CSV: one row per subscription, columns named, every cell formula-safe."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP

from django.conf import settings
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from orders.models import Order
from orders.money.pricing import money_quantum, monthly
from orders.renewals import terms
from portal.core.spreadsheets import csv_cell

CHUNK_SIZE = 2000
S = Order.Status


@dataclass(frozen=True)
class Column:
    header: str
    cell: Callable[[dict, date], object]


def _field(name: str) -> Callable[[dict, date], object]:
    return lambda row, today: row[name]


def _days_left(row: dict, today: date) -> int | None:
    # Only a term that still runs has days left: a cancelled subscription has none.
    if row["current_term_end"] is None or row["status"] == S.CANCELLED:
        return None
    return terms.days_left(row["current_term_end"], today)


def _created_at(row: dict, today: date) -> str:
    return timezone.localtime(row["created_at"]).isoformat(timespec="seconds")


def _currency(row: dict, today: date) -> str:
    return row["current_currency"] or row["currency"]


def _mrr(row: dict, today: date):
    """What the subscription adds to MRR today: active, term running, priced in our currency."""
    value = row["current_value"]
    if (
        value is None
        or row["status"] != S.ACTIVE
        or row["current_term_end"] is None
        or row["current_term_end"] < today
        or row["current_currency"] != settings.PORTAL_CURRENCY
    ):
        return None
    quantum = money_quantum(row["current_currency"])
    return monthly(value, row["duration"]).quantize(quantum, rounding=ROUND_HALF_UP)


COLUMNS = [
    Column("order id", _field("number")),
    Column("customer id", _field("customer__code")),
    Column("customer", _field("customer__name")),
    Column("account manager", _field("customer__account_manager__username")),
    Column("product", _field("product")),
    Column("licenses", _field("licenses")),
    Column("duration", _field("duration")),
    Column("status", _field("status")),
    Column("pending action", _field("pending_action")),
    Column("current term end", _field("current_term_end")),
    Column("created at", _created_at),
    Column("days left", _days_left),
    Column("unit price", _field("unit_price")),
    Column("discount %", _field("discount_percent")),
    Column("order value", _field("value")),
    Column("current term value", _field("current_value")),
    Column("currency", _currency),
    Column("MRR", _mrr),
]
FIELDS = [
    "number",
    "customer__code",
    "customer__name",
    "customer__account_manager__username",
    "product",
    "licenses",
    "duration",
    "status",
    "pending_action",
    "current_term_end",
    "created_at",
    "unit_price",
    "discount_percent",
    "value",
    "currency",
    "current_value",
    "current_currency",
]


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(rows: Iterable[dict], *, today: date) -> Iterator[str]:
    """The header, then one CSV line per row of `FIELDS`."""
    writer = csv.writer(_Echo())
    # A byte-order mark, so spreadsheets read the file as UTF-8.
    yield "\ufeff" + writer.writerow([column.header for column in COLUMNS])
    for row in rows:
        yield writer.writerow([csv_cell(column.cell(row, today)) for column in COLUMNS])


def order_export(orders: QuerySet[Order], *, today: date | None = None) -> StreamingHttpResponse:
    """`orders` (already filtered and ordered) as a streamed CSV download."""
    today = today or timezone.localdate()
    rows = orders.values(*FIELDS).iterator(chunk_size=CHUNK_SIZE)
    response = StreamingHttpResponse(
        csv_lines(rows, today=today), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="orders-{today:%Y-%m-%d}.csv"'
    return response
