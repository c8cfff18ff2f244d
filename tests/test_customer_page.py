"""A customer's page: its subscriptions first (status, term end, value), its MRR and next
renewal, then one timeline of its calls, subscription changes, reminders and batches, newest
first, bounded; each part only for those who may see it, at a cost that does not grow."""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orders.models import Order
from portal import provisioning
from tests.factories import (
    BatchFactory,
    BatchItemFactory,
    CustomerFactory,
    OrderFactory,
    RenewalReminderFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

S = Order.Status


def _page(client, customer) -> str:
    response = client.get(reverse("admin:customers_customer_change", args=[customer.pk]))
    assert response.status_code == 200
    return response.content.decode()


def _section(html: str, name: str) -> str | None:
    found = re.search(
        rf'<fieldset class="module customer-overview" id="{name}">(.*?)</fieldset>', html, re.S
    )
    return found.group(1) if found else None


def _subscription(customer, number, status, days_left, value, duration="monthly"):
    return OrderFactory(
        customer=customer,
        number=number,
        duration=duration,
        days_left=days_left,
        worth=value,
        **{status: True},
    )


@pytest.fixture
def book(db, settings):
    settings.PORTAL_CURRENCY = "EUR"
    customer = CustomerFactory(name="Café Olé")
    orders = {
        "monthly": _subscription(customer, "O-MONTHLY234", S.ACTIVE, 40, Decimal("100.00")),
        "yearly": _subscription(
            customer, "O-YEARLY2345", S.ACTIVE, 200, Decimal("1200.00"), duration="yearly"
        ),
        "suspended": _subscription(customer, "O-SUSPEND234", S.SUSPENDED, 20, Decimal("30.00")),
        "due": _subscription(customer, "O-DUESOON234", S.ACTIVE, 6, Decimal("50.00")),
        "lapsed": _subscription(customer, "O-LAPSED2345", S.ACTIVE, -3, Decimal("70.00")),
        "cancelled": _subscription(customer, "O-CANCEL2345", S.CANCELLED, 9, Decimal("90.00")),
        "draft": OrderFactory(customer=customer, number="O-DRAFT23456"),
    }
    # Another customer's subscription counts nowhere on this page.
    _subscription(CustomerFactory(name="Zebra SA"), "O-ZEBRA23456", S.ACTIVE, 1, Decimal("999"))
    return customer, orders


def test_customer_page_lists_subscriptions_first_running_ones_soonest_first(
    client, manager_user, book
):
    customer, orders = book
    client.force_login(manager_user)

    html = _page(client, customer)
    subscriptions = _section(html, "customer-subscriptions")
    numbers = re.findall(
        r'<tr class="subscription">\s*<td class="nowrap"><a href="[^"]+">([^<]+)', subscriptions
    )

    assert numbers == [
        "O-LAPSED2345",
        "O-DUESOON234",
        "O-SUSPEND234",
        "O-MONTHLY234",
        "O-YEARLY2345",
        "O-DRAFT23456",
        "O-CANCEL2345",
    ]
    # Above the customer's own fields, and before the timeline.
    assert html.index('id="customer-subscriptions"') < html.index('id="customer-timeline"')
    assert html.index('id="customer-timeline"') < html.index('class="form-row field-name"')
    assert "1,200.00 EUR" in subscriptions and "badge-lapsed" in subscriptions
    assert "O-ZEBRA23456" not in html


def test_customer_page_mrr_counts_active_running_terms_yearly_as_a_twelfth(
    client, manager_user, book
):
    customer, _ = book
    client.force_login(manager_user)

    figures = _section(_page(client, customer), "customer-subscriptions")
    mrr = re.search(r'<div id="customer-mrr"><dt>MRR</dt><dd>(.*?)</dd>', figures).group(1)

    # 100 (monthly) + 1200 / 12 (yearly) + 50 (due soon); lapsed, suspended and cancelled not.
    assert mrr.startswith("250.00 EUR")
    assert "(suspended: 30.00 EUR)" in mrr


def test_customer_page_next_renewal_is_the_soonest_running_term_end(client, manager_user, book):
    customer, orders = book
    client.force_login(manager_user)

    figures = _section(_page(client, customer), "customer-subscriptions")
    renewal = re.search(r'<div id="customer-next-renewal">(.*?)</div>', figures, re.S).group(1)

    due = orders["due"]
    assert f"{due.current_term_end:%-d %b %Y}" in renewal
    assert f'href="{reverse("admin:orders_order_change", args=[due.pk])}">O-DUESOON234' in renewal
    assert "(in 6 days, due now)" in renewal


def test_customer_page_without_running_subscriptions_says_so(client, manager_user):
    customer = CustomerFactory()
    client.force_login(manager_user)

    html = _page(client, customer)

    assert "No subscriptions yet." in html and "none running" in html
    assert "Nothing has happened yet." in html


def test_customer_timeline_merges_calls_changes_reminders_and_batches_newest_first(
    client, manager_user, registered_customer
):
    customer = registered_customer
    start = timezone.now()
    with time_machine.travel(start + timedelta(hours=1), tick=False):
        placed = provisioning.order_place(order=OrderFactory(customer=customer))
    with time_machine.travel(start + timedelta(hours=2), tick=False):
        RenewalReminderFactory(subscription=placed)
    with time_machine.travel(start + timedelta(hours=3), tick=False):
        batch = BatchItemFactory(
            batch=BatchFactory(action="suspend", label="Suspend"), subject=placed
        ).batch
        provisioning.order_suspend(order=placed)
    client.force_login(manager_user)

    timeline = _section(_page(client, customer), "customer-timeline")
    kinds = re.findall(r'<tr class="event event-(\w+)">', timeline)
    whats = re.findall(r"<td>(?:<a href=\"[^\"]+\">)?([^<]+)", timeline)

    assert kinds == ["call", "change", "batch", "reminder", "call", "change", "call"]
    assert f"{placed.number} suspended" in whats and f"{placed.number} placed" in whats
    assert "Renewal reminder for " + placed.number in whats
    assert f"Batch {batch.pk}: Suspend" in whats
    assert "suspendOrder" in whats and "createFirstOrder" in whats and "createCustomer" in whats


def test_customer_timeline_shows_the_latest_20_and_says_so(client, manager_user):
    customer = CustomerFactory()
    subscription = OrderFactory(customer=customer)
    base = datetime(2030, 1, 1, tzinfo=UTC)
    for n in range(25):
        RenewalReminderFactory(
            subscription=subscription,
            term_end=date(2030, 1, 1) + timedelta(days=n),
            created_at=base + timedelta(days=n),
            sent_at=None,
            forced=True,
        )
    client.force_login(manager_user)

    timeline = _section(_page(client, customer), "customer-timeline")

    assert timeline.count('<tr class="event event-reminder">') == 20
    assert "term ends 2030-01-25" in timeline and "term ends 2030-01-05" not in timeline
    assert "the latest 20 are shown" in timeline


def test_customer_page_shows_each_part_only_to_who_may_see_it(client, manager_user, book):
    customer, orders = book
    viewer = UserFactory(username="viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client.force_login(manager_user)
    everything = _page(client, customer)
    client.force_login(viewer)

    html = _page(client, customer)

    assert _section(everything, "customer-subscriptions") and "O-MONTHLY234" in everything
    assert _section(html, "customer-subscriptions") is None and "O-MONTHLY234" not in html
    assert _section(html, "customer-timeline") is None
    assert "Café Olé" in html

    viewer.user_permissions.add(Permission.objects.get(codename="view_order"))
    viewer = type(viewer).objects.get(pk=viewer.pk)
    client.force_login(viewer)
    html = _page(client, customer)
    timeline = _section(html, "customer-timeline")
    assert "O-MONTHLY234" in html and "Subscription changes, newest first" in timeline
    assert "call log" not in timeline and "OneOffice calls" not in timeline


def test_customer_page_costs_the_same_queries_with_more_history(client, manager_user):
    def queries_for(customer) -> int:
        client.get(reverse("admin:customers_customer_change", args=[customer.pk]))
        with CaptureQueriesContext(connection) as captured:
            _page(client, customer)
        return len(captured)

    client.force_login(manager_user)
    small = CustomerFactory()
    _subscription(small, "O-SMALL23456", S.ACTIVE, 10, Decimal("10"))
    large = CustomerFactory()
    for n in range(30):
        order = _subscription(large, f"O-LARGE{n:05d}", S.ACTIVE, n, Decimal("10"))
        RenewalReminderFactory(subscription=order)
        BatchItemFactory(subject=order)

    assert queries_for(large) == queries_for(small)
