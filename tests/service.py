"""Customers and subscriptions brought to a state through the provisioning service on the
sandbox, for tests of what the service and its callers send. A test that only reads a stored
state writes it with tests/factories.py instead."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import time_machine
from django.conf import settings
from django.contrib.auth.models import User

from customers.models import Customer
from orders.models import Order
from portal import provisioning
from tests.factories import CustomerFactory, OrderFactory


def noon(day: date) -> datetime:
    """Midday of a business date in DJANGO_TIME_ZONE."""
    return datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(settings.TIME_ZONE))


def registered(**fields) -> Customer:
    """A customer registered on the sandbox."""
    return provisioning.customer_register(customer=CustomerFactory(**fields))


def placed(
    on: date | None = None, *, customer: Customer | None = None, by: User | None = None, **fields
) -> Order:
    """A first order placed on the sandbox by `by` (for a newly registered customer unless
    given), on the business date `on` (at noon) or now."""
    if on is None:
        return _place(customer, fields, by)
    with time_machine.travel(noon(on), tick=False):
        return _place(customer, fields, by)


def placed_many(count: int, *, customer: Customer | None = None, **fields) -> list[Order]:
    """`count` first orders of one customer placed on the sandbox now, one by one."""
    customer = customer or registered()
    return [_place(customer, fields) for _ in range(count)]


def _place(customer: Customer | None, fields: dict, by: User | None = None) -> Order:
    order = OrderFactory(customer=customer or registered(), **fields)
    return provisioning.order_place(order=order, by=by)
