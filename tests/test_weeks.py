"""The weeks ahead, as the dashboard's renewal bars and revenue due per week count them: one
bucketing of term ends into seven-day weeks from today, whichever figure is summed."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db.models import Count, Sum
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from orders import reports
from orders.models import Order
from orders.money import revenue
from orders.renewals.selectors import subscription_ending_per_week
from tests.factories import OrderFactory

TODAY = date(2027, 2, 26)
S = Order.Status


@pytest.mark.django_db
def test_a_week_is_seven_days_from_today_and_its_last_day_counts(settings):
    settings.PORTAL_CURRENCY = "EUR"
    for days_left, licenses in [(-1, 1), (0, 2), (6, 4), (7, 8), (13, 16), (14, 32), (21, 64)]:
        OrderFactory(active=True, today=TODAY, days_left=days_left, licenses=licenses, worth=1)
    OrderFactory(cancelled=True, today=TODAY, days_left=3, licenses=128, worth=1)

    weeks = subscription_ending_per_week(
        today=TODAY, weeks=3, count=Count("id"), licenses=Sum("licenses")
    )

    assert [(w.start, w.end) for w in weeks] == [
        (TODAY, TODAY + timedelta(6)),
        (TODAY + timedelta(7), TODAY + timedelta(13)),
        (TODAY + timedelta(14), TODAY + timedelta(20)),
    ]
    assert [(w.total("count"), w.total("licenses")) for w in weeks] == [(2, 6), (2, 24), (1, 32)]
    renewals = reports.order_renewals_per_week(today=TODAY, weeks=3)
    due = revenue.revenue_due_per_week(today=TODAY, weeks=3)
    assert [(w.start, w.end, w.count, w.licenses) for w in renewals] == [
        (w.start, w.end, w.total("count"), w.total("licenses")) for w in weeks
    ]
    assert [(p.start, p.end, p.count, p.value) for p in due] == [
        (w.start, w.end, w.total("count"), Decimal(w.total("count"))) for w in weeks
    ]


class WeeksAgreeTest(TestCase):
    @settings(max_examples=30, deadline=None)
    @given(
        ends=st.lists(
            st.tuples(st.integers(-3, 60), st.sampled_from([S.ACTIVE, S.SUSPENDED, S.CANCELLED])),
            max_size=12,
        ),
        weeks=st.integers(1, 8),
    )
    def test_both_figures_bucket_every_term_end_the_same_way(self, ends, weeks):
        for days_left, status in ends:
            OrderFactory(placed=True, status=status, today=TODAY, days_left=days_left, worth=1)
        expected = [0] * weeks
        for days_left, status in ends:
            if status != S.CANCELLED and 0 <= days_left < 7 * weeks:
                expected[days_left // 7] += 1

        renewals = reports.order_renewals_per_week(today=TODAY, weeks=weeks)
        due = revenue.revenue_due_per_week(today=TODAY, weeks=weeks)

        assert [w.count for w in renewals] == [p.count for p in due] == expected
        assert [w.start for w in renewals] == [p.start for p in due]
