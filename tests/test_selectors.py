"""The renewal window: due, lapsed and not yet due, in DJANGO_TIME_ZONE, in one query."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from orders.models import Order
from orders.renewals import terms
from orders.renewals.selectors import (
    DUE,
    LAPSED,
    NOT_YET_DUE,
    order_list_due_for_renewal,
    renewal_state_q,
)
from tests.factories import CustomerFactory, OrderFactory, UserFactory

S = Order.Status
# Far east and far west of UTC: near midnight, their dates differ from UTC's by a day.
ZONES = ["Pacific/Auckland", "America/Los_Angeles", "UTC", "Pacific/Kiritimati"]
STATUSES = [S.ACTIVE, S.SUSPENDED, S.CANCELLED, S.PENDING]
# Around the months and leap days where calendar arithmetic goes wrong.
MONTH_ENDS = st.builds(
    lambda year, month, back: terms.add_months(date(year, month, 1), 1) - timedelta(days=back),
    st.integers(2023, 2032),
    st.integers(1, 12),
    st.integers(0, 3),
)
TODAYS = st.one_of(
    MONTH_ENDS,
    st.sampled_from([date(2024, 2, 29), date(2028, 2, 29), date(2100, 2, 28)]),
    st.dates(date(2023, 1, 1), date(2032, 12, 31)),
)


def _clock(seconds: int) -> time:
    return time(seconds // 3600, seconds // 60 % 60, seconds % 60)


# Within an hour either side of local midnight.
CLOCKS = st.one_of(st.integers(0, 3599).map(_clock), st.integers(86400 - 3600, 86399).map(_clock))
PROPERTY = hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def expected_state(status: str, term_end: date, today: date, window: int) -> str | None:
    """The window as the issue states it, written independently of the selector."""
    if status not in {S.ACTIVE, S.SUSPENDED}:
        return None
    if term_end < today:
        return LAPSED
    if (term_end - today).days <= window:
        return DUE
    return NOT_YET_DUE


def local_instant(zone: str, today: date, clock: time) -> datetime:
    return datetime.combine(today, clock, tzinfo=ZoneInfo(zone))


@pytest.mark.django_db
@PROPERTY
@given(
    zone=st.sampled_from(ZONES),
    today=TODAYS,
    clock=CLOCKS,
    window=st.integers(0, 31),
    orders=st.lists(
        st.tuples(st.sampled_from(STATUSES), st.integers(-40, 45)), min_size=0, max_size=6
    ),
)
@example(
    zone="Pacific/Auckland",
    today=date(2024, 2, 29),
    clock=time(0, 0, 1),
    window=15,
    orders=[(S.ACTIVE, 0)],
)
@example(
    zone="America/Los_Angeles",
    today=date(2023, 12, 31),
    clock=time(23, 59, 59),
    window=15,
    orders=[(S.SUSPENDED, 15)],
)
def test_order_list_due_for_renewal_follows_the_window_in_local_time(
    settings, django_assert_num_queries, zone, today, clock, window, orders
):
    settings.TIME_ZONE = zone
    settings.ONEOFFICE_RENEWAL_WINDOW_DAYS = window
    # The edges of the window are in every example, besides the random term ends.
    orders = [*orders, (S.ACTIVE, -1), (S.ACTIVE, 0), (S.ACTIVE, window), (S.ACTIVE, window + 1)]
    with time_machine.travel(local_instant(zone, today, clock), tick=False), transaction.atomic():
        assert timezone.localdate() == today
        customer = CustomerFactory()
        made = [
            OrderFactory(
                customer=customer, status=status, current_term_end=today + timedelta(offset)
            )
            for status, offset in orders
        ]
        expected = {o.pk: expected_state(o.status, o.current_term_end, today, window) for o in made}

        with django_assert_num_queries(1):
            listed = list(order_list_due_for_renewal())

        assert [(o.pk, o.renewal_state) for o in listed] == [
            (o.pk, expected[o.pk])
            for o in sorted(made, key=lambda o: (o.current_term_end, o.number))
            if expected[o.pk] in {DUE, LAPSED}
        ]
        for state in (DUE, LAPSED, NOT_YET_DUE):
            found = set(Order.objects.filter(renewal_state_q(state)).values_list("pk", flat=True))
            assert found == {pk for pk, s in expected.items() if s == state}
        transaction.set_rollback(True)


@pytest.mark.django_db
@PROPERTY
@given(
    zone=st.sampled_from(ZONES),
    start=MONTH_ENDS,
    duration=st.sampled_from([Order.Duration.MONTHLY, Order.Duration.YEARLY]),
    clock=CLOCKS,
)
def test_subscription_is_due_exactly_in_the_last_window_days_of_its_term(
    settings, zone, start, duration, clock
):
    settings.TIME_ZONE = zone
    window = settings.ONEOFFICE_RENEWAL_WINDOW_DAYS
    end = terms.term_end(start, duration)
    with transaction.atomic():
        order = OrderFactory(
            active=True, duration=duration, term_start=start, term_end=end, current_term_end=end
        )
        states = {}
        for day in (end - timedelta(window + 1), end - timedelta(window), end, end + timedelta(1)):
            with time_machine.travel(local_instant(zone, day, clock), tick=False):
                states[day] = {
                    s
                    for s in (DUE, LAPSED, NOT_YET_DUE)
                    if Order.objects.filter(renewal_state_q(s), pk=order.pk).exists()
                }
        transaction.set_rollback(True)

    assert list(states.values()) == [{NOT_YET_DUE}, {DUE}, {DUE}, {LAPSED}]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("zone", "instant_utc", "state"),
    [
        # 23:30 on Feb 29 in Los Angeles is already Mar 1 in UTC: the term ends today, due.
        ("America/Los_Angeles", datetime(2024, 3, 1, 7, 30), DUE),
        # 00:30 on Mar 1 in Auckland is still Feb 29 in UTC: the term ended yesterday, lapsed.
        ("Pacific/Auckland", datetime(2024, 2, 29, 11, 30), LAPSED),
    ],
)
def test_order_list_due_for_renewal_uses_the_local_date_not_utc(settings, zone, instant_utc, state):
    settings.TIME_ZONE = zone
    order = OrderFactory(active=True, current_term_end=date(2024, 2, 29))

    with time_machine.travel(instant_utc.replace(tzinfo=ZoneInfo("UTC")), tick=False):
        listed = list(order_list_due_for_renewal())

    assert [(o.pk, o.renewal_state) for o in listed] == [(order.pk, state)]


@pytest.mark.django_db
def test_order_list_due_for_renewal_leaves_out_renewals_drafts_and_cancelled():
    today = date(2027, 5, 10)
    subscription = OrderFactory(active=True, current_term_end=today + timedelta(3))
    OrderFactory(
        status=S.ACTIVE, parent=subscription, customer=subscription.customer, term_end=today
    )
    OrderFactory(cancelled=True, current_term_end=today + timedelta(3))
    OrderFactory(cancelled=True, current_term_end=today - timedelta(3))
    OrderFactory(status=S.DRAFT)

    listed = list(order_list_due_for_renewal(today=today))

    assert listed == [subscription]


@pytest.mark.django_db
def test_order_list_due_for_renewal_is_one_query_whatever_the_count(django_assert_num_queries):
    today = date(2027, 5, 10)
    customers = [CustomerFactory(account_manager=UserFactory()) for _ in range(5)]
    for i in range(40):
        OrderFactory(
            active=True, customer=customers[i % 5], current_term_end=today + timedelta(i - 20)
        )

    with django_assert_num_queries(1):
        listed = list(order_list_due_for_renewal(today=today))
        managers = {o.customer.account_manager.email for o in listed}

    assert len(listed) == 36
    assert len(managers) == 5


@pytest.mark.django_db
def test_order_list_due_for_renewal_days_overrides_the_window():
    today = date(2027, 5, 10)
    near = OrderFactory(active=True, current_term_end=today + timedelta(10))
    OrderFactory(active=True, current_term_end=today + timedelta(11))

    assert list(order_list_due_for_renewal(today=today, days=10)) == [near]


def test_renewal_state_q_rejects_an_unknown_state():
    with pytest.raises(ValueError, match="unknown renewal state"):
        renewal_state_q("overdue")
