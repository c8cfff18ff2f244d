"""The factories store the states the service would leave: what a test writes directly is what
placing and renewing on the sandbox produce."""

from datetime import date, timedelta

import pytest
import time_machine

from orders.models import Order
from orders.renewals import terms
from portal import provisioning
from tests import service
from tests.factories import CustomerFactory, OrderFactory, RenewalFactory

pytestmark = pytest.mark.django_db

FIELDS = ("status", "product", "licenses", "duration", "term_start", "term_end", "current_term_end")


def _fields(order: Order) -> dict:
    order.refresh_from_db()
    return {name: getattr(order, name) for name in FIELDS}


def test_an_active_subscription_is_stored_as_placing_leaves_it(sandbox):
    day = date(2027, 1, 15)
    placed = service.placed(day, duration=Order.Duration.MONTHLY)
    stored = OrderFactory(active=True, today=day, days_left=(placed.current_term_end - day).days)

    assert _fields(stored) == _fields(placed)
    assert stored.customer.status == placed.customer.status == "registered"
    stored.full_clean()


def test_a_renewal_is_stored_as_renewing_leaves_it_and_its_subscription(sandbox):
    day = date(2027, 1, 15)
    placed = service.placed(day)
    with time_machine.travel(service.noon(placed.current_term_end - timedelta(days=3))):
        renewal = provisioning.order_renew(order=placed)
    stored_subscription = OrderFactory(active=True, today=day, days_left=31)
    stored = RenewalFactory(parent=stored_subscription)

    assert _fields(stored) == _fields(renewal)
    assert _fields(stored_subscription) == _fields(placed)
    assert stored.customer_id == stored_subscription.customer_id


@pytest.mark.parametrize(
    ("trait", "status", "days_left"),
    [
        ("active", "active", 30),
        ("suspended", "suspended", 30),
        ("cancelled", "cancelled", 30),
        ("lapsed", "active", -3),
    ],
)
def test_each_state_trait_stores_its_status_and_term(trait, status, days_left):
    today = date(2027, 3, 10)
    order = OrderFactory(**{trait: True}, today=today)

    assert (order.status, order.current_term_end) == (status, today + timedelta(days_left))
    assert order.term_end == order.current_term_end > order.term_start
    assert terms.term_end(order.term_start, order.duration) == order.term_end


@pytest.mark.parametrize(
    ("duration", "end"),
    [
        ("monthly", date(2027, 2, 28)),
        ("monthly", date(2028, 2, 29)),
        ("monthly", date(2027, 4, 30)),
        ("yearly", date(2027, 2, 28)),
        ("yearly", date(2028, 3, 1)),
    ],
)
def test_a_stored_term_is_one_the_vendor_could_have_given(duration, end):
    order = OrderFactory(active=True, duration=duration, current_term_end=end)

    assert terms.term_end(order.term_start, duration) == order.term_end == end


def test_a_draft_has_no_term_and_its_customer_is_not_registered():
    order = OrderFactory()

    assert (order.status, order.current_term_end, order.term_start) == ("draft", None, None)
    assert order.customer.status == "draft"
    assert CustomerFactory(registered=True).status == "registered"


def test_store_writes_many_in_one_insert(django_assert_num_queries):
    customer = CustomerFactory()
    with django_assert_num_queries(1):
        OrderFactory.store(30, customer=customer, active=True, prefix="O-MANY")

    assert Order.objects.filter(number__startswith="O-MANY", status="active").count() == 30


def _kinds(subscription: Order) -> list[tuple[str, str, str]]:
    return [
        (c.kind, c.status_before, c.status_after)
        for c in subscription.changes.order_by("recorded_at", "id")
    ]


def test_stored_states_come_with_the_history_the_service_records(sandbox):
    suspended, cancelled, renewed = service.placed(), service.placed(), service.placed()
    provisioning.order_suspend(order=suspended)
    provisioning.order_cancel(order=cancelled)
    with time_machine.travel(service.noon(renewed.current_term_end - timedelta(days=3))):
        provisioning.order_renew(order=renewed)

    assert _kinds(OrderFactory(suspended=True)) == _kinds(suspended)
    assert _kinds(OrderFactory(cancelled=True)) == _kinds(cancelled)
    assert _kinds(RenewalFactory().parent) == _kinds(renewed)
    stored = OrderFactory(active=True)
    assert _kinds(stored) == _kinds(service.placed())
    assert stored.changes.get().effective_on == stored.term_start
