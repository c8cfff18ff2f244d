"""One renewal window, on OneOffice's calendar: the Renewals due list, the order list's filter,
the Renew confirmation, the reminder job, auto-renewal and the service's own check agree on
every date and time, whatever the two time zones, around midnight and month ends."""

import calendar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.admin.sites import site
from django.test import RequestFactory, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.admin.renewals import RenewalWindowFilter
from orders.models import Order, RenewalReminder
from orders.renewals import terms
from orders.renewals.autorenew import auto_renew_candidates
from orders.renewals.reminders import send_renewal_reminders
from orders.renewals.selectors import DUE, LAPSED, order_list_due_for_renewal
from portal import provisioning
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db
WINDOW = 15
# Zones far apart on both sides of UTC, with and without summer time.
ZONES = [
    "UTC",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Asia/Tokyo",
    "America/Los_Angeles",
    "Europe/Athens",
    "Australia/Adelaide",
]


@st.composite
def moments(draw) -> datetime:
    """Instants near midnight somewhere, mostly around month ends (leap years included)."""
    year = draw(st.integers(2026, 2029))
    month = draw(st.integers(1, 12))
    last = calendar.monthrange(year, month)[1]
    day = draw(st.sampled_from([1, 2, last - 1, last]) | st.integers(1, last))
    minutes = draw(st.integers(-14 * 60, 14 * 60) | st.sampled_from([-1, 0, 1, 59, 60, 61]))
    return datetime.combine(date(year, month, day), time(0), tzinfo=UTC) + timedelta(
        minutes=minutes
    )


def _renew_action():
    admin = site._registry[Order]
    return next(a for a in admin.provisioning_actions if a.name == "renew")


def _in_filter(value: str, request, subscription) -> bool:
    admin = site._registry[Order]
    chosen = RenewalWindowFilter(request, {"renewal": [value]}, Order, admin)
    return chosen.queryset(request, Order.objects.filter(pk=subscription.pk)).exists()


@pytest.fixture
def subscription(db):
    customer = CustomerFactory(status="registered")
    return Order.objects.create(
        number="O-WINDOW",
        customer=customer,
        product=Order.Product.OO_STD,
        licenses=1,
        duration=Order.Duration.MONTHLY,
        status=Order.Status.ACTIVE,
        auto_renew=True,
    )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    moment=moments(),
    django_zone=st.sampled_from(ZONES),
    vendor_zone=st.sampled_from(ZONES),
    # Days between OneOffice's today and the term end: the window's edges, and beyond.
    offset=st.integers(WINDOW - 2, WINDOW + 2) | st.integers(-3, 3) | st.integers(-40, 60),
)
def test_every_reader_of_the_renewal_window_agrees(
    subscription, moment, django_zone, vendor_zone, offset
):
    request = RequestFactory().get("/")
    with (
        override_settings(
            TIME_ZONE=django_zone,
            ONEOFFICE_TIME_ZONE=vendor_zone,
            ONEOFFICE_RENEWAL_WINDOW_DAYS=WINDOW,
            AUTO_RENEW_DAYS_BEFORE_END=WINDOW,
        ),
        time_machine.travel(moment, tick=False),
    ):
        vendor_today = moment.astimezone(ZoneInfo(vendor_zone)).date()
        # The window's edges on every example, and one drawn offset.
        for days in sorted({offset, WINDOW, WINDOW + 1, 0, -1}):
            _check(subscription, request, vendor_today + timedelta(days=days), vendor_today)


def _check(subscription, request, term_end, vendor_today):
    Order.objects.filter(pk=subscription.pk).update(current_term_end=term_end)
    subscription.refresh_from_db()
    # OneOffice's rule, as its page states it: refused with more than 15 days left.
    vendor_accepts = (term_end - vendor_today).days <= WINDOW

    service = provisioning.order_renew_refusal(subscription) == ""
    confirmation = _renew_action().refused(subscription) == ""
    listed = order_list_due_for_renewal().filter(pk=subscription.pk).exists()
    filtered = _in_filter(DUE, request, subscription) or _in_filter(LAPSED, request, subscription)
    auto = auto_renew_candidates().filter(pk=subscription.pk).exists()
    RenewalReminder.objects.all().delete()
    send_renewal_reminders()
    reminded = RenewalReminder.objects.filter(subscription=subscription, term_end=term_end).exists()

    assert service == confirmation == listed == filtered == reminded == vendor_accepts
    # Auto-renewal renews what is due and has not lapsed.
    assert auto == (vendor_accepts and term_end >= vendor_today)
    # The day the page names as the window's opening is the first day it is accepted.
    opens = terms.renewal_opens(term_end)
    assert (vendor_today >= opens) == vendor_accepts
    if not service:
        assert f"from {opens:%d %b %Y}" in provisioning.order_renew_refusal(subscription)
