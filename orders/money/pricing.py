"""What an order is worth: the price list on the day its term starts, the discount, one rounding.

The provisioning service sets the price (`set_price`) once a term is confirmed (placed or
renewed), and saves it in the transaction that records the term. Nothing else writes the
recorded values, so a later change to the price list never changes an order already sold.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import transaction

from orders.models import Order, Price

HUNDRED = Decimal(100)
# ISO 4217 currencies without minor units; every other currency is rounded to cents.
_NO_MINOR_UNITS = {"CLP", "ISK", "JPY", "KRW", "PYG", "UGX", "VND", "XAF", "XOF"}


def money_quantum(currency: str) -> Decimal:
    """The smallest amount of `currency`: 0.01, or 1 for currencies without cents."""
    return Decimal(1) if currency.upper() in _NO_MINOR_UNITS else Decimal("0.01")


def order_value(
    *, licenses: int, unit_price: Decimal, discount_percent: Decimal, currency: str
) -> Decimal:
    """licenses × unit price × (1 − discount), computed exactly and rounded half-up once."""
    exact = licenses * unit_price * (HUNDRED - discount_percent) / HUNDRED
    return exact.quantize(money_quantum(currency), rounding=ROUND_HALF_UP)


def price_on(*, product: str, duration: str, on: date, lock: bool = False) -> Price | None:
    """The price-list line in force on `on` (the newest from on or before it that no
    correction superseded), or None. `lock` holds the line until the caller's transaction
    ends, so that nobody changes a line while a sale is being recorded at it."""
    lines = Price.objects.filter(
        product=product,
        duration=duration,
        currency=settings.PORTAL_CURRENCY,
        valid_from__lte=on,
        correction__isnull=True,
    ).order_by("-valid_from")
    if lock:
        # Only the line's own row: the outer join to its correction cannot be locked.
        line = lines.values_list("pk", flat=True).first()
        if line is None:
            return None
        return Price.objects.select_for_update(no_key=True).get(pk=line)
    return lines.first()


def price_order(order: Order, *, on: date) -> list[str]:
    """Record on `order` the unit price, currency and value in force on `on`, its term's start.

    Called when a term is confirmed, inside the transaction that records it. A renewal keeps the
    discount of its subscription. Without a price for the day the values stay empty ("no
    price"). The subscription's current term value follows its latest term. Writes the order's
    row (and a renewal's subscription row) and returns the order's fields it wrote.
    """
    with transaction.atomic():
        fields = set_price(order, on=on)
        if not order.is_first_order:
            Order.objects.filter(pk=order.parent_id).update(**current_value_of(order))
        Order.objects.filter(pk=order.pk).update(**{name: getattr(order, name) for name in fields})
    return fields


def set_price(order: Order, *, on: date) -> list[str]:
    """`price_order` without the writes, for a caller saving the rows itself: sets the fields
    on `order` and on a renewal's `parent` (`current_value`, `current_currency`), and returns
    the order's fields it set."""
    if not order.is_first_order:
        order.discount_percent = order.parent.discount_percent
    price = price_on(product=order.product, duration=order.duration, on=on, lock=True)
    order.price = price
    if price is None:
        order.unit_price, order.currency, order.value = None, "", None
    else:
        order.unit_price, order.currency = price.unit_price, price.currency
        order.value = order_value(
            licenses=order.licenses,
            unit_price=price.unit_price,
            discount_percent=order.discount_percent,
            currency=price.currency,
        )
    fields = ["price", "unit_price", "currency", "value", "discount_percent"]
    current = current_value_of(order)
    subscription = order if order.is_first_order else order.parent
    for name, value in current.items():
        setattr(subscription, name, value)
    if order.is_first_order:
        fields += current
    return fields


def current_value_of(order: Order) -> dict[str, object]:
    return {"current_value": order.value, "current_currency": order.currency}


def monthly(value: Decimal, duration: str) -> Decimal:
    """A term's value per month: a yearly term counts one twelfth."""
    return value / 12 if duration == Order.Duration.YEARLY else value


def format_money(value: Decimal | None, currency: str) -> str:
    """`1,234.50 EUR`, or "no price" when the order has none."""
    if value is None:
        return "no price"
    quantum = money_quantum(currency or settings.PORTAL_CURRENCY)
    rounded = value.quantize(quantum, rounding=ROUND_HALF_UP)
    return f"{rounded:,} {currency or settings.PORTAL_CURRENCY}"
