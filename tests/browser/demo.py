"""A demo data set made through the real service (the sandbox as vendor): what a sales team's
portal holds after a few months, with the awkward cases a screen must survive."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.utils import timezone

from customers.models import Customer
from orders.models import Order
from portal import provisioning
from portal.security.roles import MANAGERS, SALES
from tests.factories import CustomerFactory, OrderFactory, UserFactory

LONG_NAME = (
    "Hellenic Federation of Regional Agricultural Cooperatives, Producer Groups and Allied "
    "Food Processing Enterprises of Central Macedonia, Thessaly and the Ionian Islands S.A."
)


def staff(username: str, group: str, **names):
    user = UserFactory(username=username, is_staff=True, **names)
    user.groups.add(Group.objects.get(name=group))
    return user


def at(day: date):
    """The clock (ours and the sandbox's, which shares the process) on `day` at noon UTC."""
    return time_machine.travel(datetime(day.year, day.month, day.day, 12, tzinfo=UTC), tick=False)


def registered(**kwargs) -> Customer:
    return provisioning.customer_register(customer=CustomerFactory(**kwargs))


def subscription(customer: Customer, *, placed_on: date, **kwargs) -> Order:
    """A first order placed on `placed_on`, so its term ends when a real one would."""
    with at(placed_on):
        return provisioning.order_place(order=OrderFactory(customer=customer, **kwargs))


def due_in(days: int, duration: str = Order.Duration.MONTHLY) -> date:
    """The day to place an order on so that its term ends `days` from today."""
    today = timezone.localdate()
    back = timedelta(days=(31 if duration == Order.Duration.MONTHLY else 365) - days)
    return today - back


@dataclass
class Demo:
    sales: object
    manager: object
    customers: list[Customer] = field(default_factory=list)
    orders: dict[str, Order] = field(default_factory=dict)


def seed(sandbox) -> Demo:
    """Customers and subscriptions in every state; statuses come from the service."""
    sales = staff("sally", SALES, first_name="Sally", last_name="Seller")
    manager = staff("manny", MANAGERS, first_name="Manny", last_name="Manager")
    demo = Demo(sales=sales, manager=manager)
    today = timezone.localdate()
    names = ["Acme Office Supplies Ltd", LONG_NAME, "Björk & Søn Rådgivning AS", "Kappa Logistics"]
    for name in names:
        demo.customers.append(registered(name=name, account_manager=sales))
    acme, long_named, bjork, kappa = demo.customers
    demo.customers.append(CustomerFactory(name="Nova Draft Consulting", account_manager=sales))

    demo.orders["due"] = subscription(acme, placed_on=due_in(5), licenses=25)
    demo.orders["long"] = subscription(
        long_named, placed_on=due_in(200, "yearly"), duration="yearly", licenses=1200
    )
    demo.orders["lapsed"] = subscription(bjork, placed_on=due_in(-3), product="erp-std")
    demo.orders["yearly"] = subscription(
        kappa, placed_on=due_in(40, "yearly"), duration="yearly", product="oo-ent", licenses=350
    )
    demo.orders["suspended"] = provisioning.order_suspend(
        order=subscription(acme, placed_on=due_in(20), product="erp-admin", licenses=3)
    )
    demo.orders["cancelled"] = provisioning.order_cancel(
        order=subscription(bjork, placed_on=today - timedelta(days=10), product="oo-lite")
    )
    with at(due_in(12)):
        first = provisioning.order_place(order=OrderFactory(customer=kappa, licenses=40))
    with at(due_in(12) + timedelta(days=18)):  # the day before yesterday, inside the window
        provisioning.order_renew(order=first)
    first.refresh_from_db()
    demo.orders["renewed"] = first
    sandbox.inject("createFirstOrder", "500-after")
    with pytest.raises(provisioning.OutcomeUnknown):
        provisioning.order_place(order=OrderFactory(customer=kappa, product="erp-lim"))
    demo.orders["pending"] = Order.objects.get(product="erp-lim")
    demo.orders["draft"] = OrderFactory(customer=acme, product="oo-ent", licenses=10)
    for key, order in demo.orders.items():
        order.refresh_from_db()
        demo.orders[key] = order
    return demo
