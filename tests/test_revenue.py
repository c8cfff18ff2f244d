"""Revenue figures on a book computed by hand: MRR and ARR (monthly vs yearly, suspended apart,
unpriced apart), renewals due, churn, renewal rate, MRR by month and value due per week; the
dashboard that shows them and its query count."""

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders.models import Order, SubscriptionChange
from orders.money import revenue
from portal.models import ProvisioningCall
from tests.factories import OrderFactory, ProvisioningCallFactory, RenewalFactory

pytestmark = pytest.mark.django_db

TODAY = date(2026, 6, 15)
S = Order.Status
D = Decimal


@pytest.fixture(autouse=True)
def today(settings):
    settings.TIME_ZONE = "Europe/Athens"
    settings.PORTAL_CURRENCY = "EUR"
    noon = datetime(2026, 6, 15, 12, tzinfo=ZoneInfo("Europe/Athens"))
    with time_machine.travel(noon, tick=False):
        yield TODAY


def _subscription(
    code, product, duration, status, term_end, value, *, currency="EUR", cancelled_at=None
):
    """One row of a book: a subscription whose current term ends on `term_end`, worth `value`,
    and, when `cancelled_at` is given, the cancel call that settled then and the cancellation
    recorded on that day."""
    order = OrderFactory(
        placed=True,
        number=code,
        product=product,
        duration=duration,
        status=status,
        current_term_end=term_end,
        worth=value,
        currency_code=currency,
        history__on=cancelled_at and cancelled_at.date(),
    )
    if cancelled_at is not None:
        ProvisioningCallFactory(
            order=order,
            method=ProvisioningCall.Method.CANCEL_ORDER,
            status_before=S.ACTIVE,
            finished_at=cancelled_at,
        )
    return order


@pytest.fixture
def book():
    """The hand-computed book of the module docstring's tests (see each test's arithmetic)."""
    _subscription("A", "oo-std", "monthly", S.ACTIVE, date(2026, 7, 1), D("100.00"))
    _subscription("B", "oo-std", "yearly", S.ACTIVE, date(2027, 1, 10), D("1200.00"))
    _subscription("C", "oo-ent", "yearly", S.ACTIVE, date(2026, 6, 20), D("1000.00"))
    _subscription("D", "oo-ent", "monthly", S.SUSPENDED, date(2026, 6, 25), D("50.00"))
    _subscription("E", "oo-lite", "monthly", S.ACTIVE, date(2026, 7, 10), None)
    _subscription("F", "oo-lite", "monthly", S.ACTIVE, date(2026, 6, 10), D("30.00"))
    _subscription(
        "G",
        "erp-std",
        "yearly",
        S.CANCELLED,
        date(2026, 12, 1),
        D("600.00"),
        cancelled_at=datetime(2026, 5, 20, 9, tzinfo=UTC),
    )
    _subscription(
        "H",
        "erp-std",
        "monthly",
        S.CANCELLED,
        date(2026, 4, 1),
        D("40.00"),
        cancelled_at=datetime(2026, 4, 1, 10, tzinfo=UTC),
    )
    _subscription("I", "oo-std", "monthly", S.ACTIVE, date(2026, 7, 5), D("10.00"), currency="USD")
    # R: placed 1 Mar, renewed on time twice, then late (5 Jun instead of 1 Jun).
    first = _subscription("R", "oo-lite", "monthly", S.ACTIVE, date(2026, 4, 1), D("18.00"))
    RenewalFactory(parent=first, number="R1", worth=D("19.00"))
    RenewalFactory(parent=first, number="R2", worth=D("20.00"))
    RenewalFactory(parent=first, number="R3", worth=D("20.00"), term_start=date(2026, 6, 5))
    # A renewal that never landed: no term, no value, in no figure.
    RenewalFactory(parent=first, number="R4", status=S.FAILED, term_start=None, term_end=None)


def test_revenue_mrr_counts_a_yearly_term_one_twelfth(book):
    figures = revenue.revenue_recurring()

    # A 100 (monthly) + B 1200/12 + C 1000/12 + R 20; F lapsed, D suspended, E/I unpriced.
    assert figures.mrr == D("303.33")
    assert figures.arr == D("3640.00")  # 12 × 303.3333..., rounded once
    by_product = {p.product: p for p in figures.products}
    assert by_product["oo-std"].mrr == D("200.00")
    assert by_product["oo-ent"].mrr == D("83.33")
    assert by_product["oo-ent"].arr == D("1000.00")
    assert by_product["oo-lite"].mrr == D("20.00")
    assert by_product["erp-std"].mrr == D("0.00")
    assert (figures.subscriptions, figures.suspended, figures.unpriced) == (6, 1, 2)
    assert figures.suspended_mrr == D("50.00")
    assert by_product["oo-ent"].suspended_mrr == D("50.00")


def test_revenue_mrr_monthly_and_yearly_of_the_same_value(today):
    _subscription("M", "oo-std", "monthly", S.ACTIVE, date(2026, 7, 1), D("120.00"))
    _subscription("Y", "oo-ent", "yearly", S.ACTIVE, date(2027, 6, 1), D("120.00"))

    by_product = {p.product: p for p in revenue.revenue_recurring().products}

    assert by_product["oo-std"].mrr == D("120.00")
    assert by_product["oo-ent"].mrr == D("10.00")
    assert by_product["oo-ent"].arr == D("120.00")


def test_revenue_renewals_due_counts_and_values(book):
    due = {row.key: (row.count, row.value) for row in revenue.revenue_renewals_due()}

    assert due == {
        "due15": (2, D("1050.00")),  # C 20 Jun, D 25 Jun
        "due30": (6, D("1170.00")),  # + A 1 Jul, I 5 Jul (USD), R 5 Jul, E 10 Jul (no price)
        "due90": (6, D("1170.00")),
        "lapsed": (1, D("30.00")),  # F ended 10 Jun
    }


def test_revenue_churn_of_the_last_30_and_90_days(book):
    churn = {row.days: row for row in revenue.revenue_churn()}

    # 30 days: G cancelled 20 May; F lapsed 10 Jun. 90 days: also H cancelled 1 Apr.
    assert (churn[30].cancelled, churn[30].cancelled_value) == (1, D("600.00"))
    assert (churn[30].lapsed, churn[30].lapsed_value) == (1, D("30.00"))
    assert churn[30].value == D("630.00")
    assert (churn[90].cancelled, churn[90].cancelled_value) == (2, D("640.00"))
    assert churn[90].value == D("670.00")


def test_revenue_churn_in_mrr_with_rates_and_retention(book):
    churn = {row.days: row for row in revenue.revenue_churn()}

    # 30 days (17 May – 15 Jun): G 600 / 12 = 50 cancelled, F 30 lapsed.
    assert (churn[30].cancelled_mrr, churn[30].lapsed_mrr) == (D(50), D(30))
    assert churn[30].churned_mrr == D("80.00")
    # Opening, 16 May: B 100 + C 83.33 + F 30 + G 50 + R2 20, five subscriptions.
    assert _cents(churn[30].opening_mrr) == D("283.33") and churn[30].opening == 5
    assert churn[30].subscription_rate == D("40.0")  # 2 of 5
    assert churn[30].revenue_rate == D("28.2")  # 80 / 283.33
    assert (churn[30].expansion_mrr, churn[30].contraction_mrr) == (0, 0)  # R3 20 after R2 20
    assert churn[30].gross_retention == churn[30].net_retention == D("71.8")
    # 90 days (18 Mar – 15 Jun): also H 40; opening 17 Mar: B, C, G, H 40, R 18 = 291.33.
    assert churn[90].churned_mrr == D("120.00")
    assert _cents(churn[90].opening_mrr) == D("291.33") and churn[90].opening == 5
    assert churn[90].subscription_rate == D("60.0")
    assert churn[90].revenue_rate == D("41.2")
    # R1 19 after R 18, R2 20 after R1 19: expansion 2.
    assert (churn[90].expansion_mrr, churn[90].contraction_mrr) == (D(2), 0)
    assert churn[90].gross_retention == D("58.8")  # (291.33 − 120) / 291.33
    assert churn[90].net_retention == D("59.5")  # (291.33 − 120 + 2) / 291.33


def _cents(amount):
    return amount.quantize(D("0.01"))


def test_revenue_churn_contraction_of_a_cheaper_renewal(today):
    first = _subscription("Y", "oo-std", "yearly", S.ACTIVE, date(2026, 6, 1), D("1200.00"))
    RenewalFactory(parent=first, worth=D("600.00"))

    churn = revenue.revenue_churn()[0]

    assert churn.contraction_mrr == D(50) and churn.expansion_mrr == 0  # (1200 − 600) / 12
    assert churn.opening_mrr == D(100) and churn.gross_retention == D("50.0")


def test_revenue_pending_cancellation_is_at_risk_not_dropped(today):
    kept = _subscription("K", "oo-std", "monthly", S.ACTIVE, date(2026, 7, 1), D("100.00"))
    sent = _subscription("P", "oo-std", "yearly", S.ACTIVE, date(2027, 1, 1), D("840.00"))
    Order.objects.filter(pk=sent.pk).update(status=S.PENDING, pending_action=Order.Action.CANCEL)

    figures = revenue.revenue_recurring()

    assert (figures.mrr, figures.subscriptions) == (D("100.00"), 1)
    assert (figures.at_risk, figures.at_risk_mrr) == (1, D("70.00"))
    assert revenue.revenue_churn()[0].cancelled == 0
    # OneOffice holds it cancelled: brought in line (no cancel call of ours), it churned today.
    sent.refresh_from_db()
    sent.status = S.CANCELLED
    sent.pending_action = ""
    sent.save()
    sent.record_change(
        SubscriptionChange.Kind.ALIGNED,
        status_before=S.ACTIVE,
        effective_on=TODAY,
    )
    churn = revenue.revenue_churn()[0]
    assert (churn.cancelled, churn.cancelled_mrr) == (1, D(70))
    assert revenue.revenue_recurring().at_risk == 0
    assert kept.status == S.ACTIVE


def test_revenue_mrr_counts_the_term_running_today_not_an_early_renewal(today):
    first = _subscription("E", "oo-std", "monthly", S.ACTIVE, date(2026, 7, 1), D("100.00"))
    RenewalFactory(parent=first, worth=D("150.00"))  # 1 Jul – 1 Aug, sold today

    assert revenue.revenue_recurring().mrr == D("100.00")
    assert revenue.revenue_recurring(today=date(2026, 6, 30)).mrr == D("100.00")
    assert revenue.revenue_recurring(today=date(2026, 7, 1)).mrr == D("150.00")


def test_revenue_mrr_by_month_counts_a_term_ending_on_the_last_day_once(today):
    renewed = _subscription("X", "oo-std", "monthly", S.ACTIVE, date(2026, 5, 31), D("10.00"))
    RenewalFactory(parent=renewed, worth=D("12.00"))  # 31 May – 30 Jun
    _subscription("L", "oo-ent", "monthly", S.ACTIVE, date(2026, 5, 31), D("7.00"))  # lapsed

    may = {p.end: p.value for p in revenue.revenue_mrr_by_month()}[date(2026, 5, 31)]

    # On its last day, as today's MRR would count it: X's renewal once, L due that day.
    assert may == D("19.00")
    assert may == revenue.revenue_recurring(today=date(2026, 5, 31)).mrr


def test_revenue_renewal_rate_of_the_last_90_days(book):
    rate = revenue.revenue_renewal_rate()

    # Terms ended 17 Mar – 14 Jun: R's 1 Apr and 1 May (renewed on their last day), R's 1 Jun
    # (renewed late, 5 Jun), F's 10 Jun and H's 1 Apr (not renewed).
    assert (rate.came_due, rate.renewed) == (5, 2)
    assert rate.percent == D("40.0")


def test_revenue_renewal_rate_without_terms_coming_due(today):
    assert revenue.revenue_renewal_rate().percent is None


def test_revenue_mrr_by_month(book):
    points = revenue.revenue_mrr_by_month()

    assert [p.end for p in points][-4:] == [
        date(2026, 3, 31),
        date(2026, 4, 30),
        date(2026, 5, 31),
        TODAY,
    ]
    values = {p.end: p.value for p in points}
    # 31 Mar: B 100 + C 83.33 + G 50 + H 40 + R 18.
    assert values[date(2026, 3, 31)] == D("291.33")
    # 30 Apr: H ended 1 Apr; R1 19.
    assert values[date(2026, 4, 30)] == D("252.33")
    # 31 May: G cancelled 20 May; D 50 (suspended only now), F 30, R2 20.
    assert values[date(2026, 5, 31)] == D("283.33")
    assert values[TODAY] == revenue.revenue_recurring().mrr
    # 31 Jul 2025, the first of the twelve months: only C (started 20 Jun 2025).
    assert points[0].end == date(2025, 7, 31)
    assert values[date(2025, 7, 31)] == D("83.33")
    assert len(points) == 12


def test_revenue_due_per_week(book):
    weeks = revenue.revenue_due_per_week()

    assert len(weeks) == 12
    assert (weeks[0].start, weeks[0].end) == (TODAY, date(2026, 6, 21))
    assert [(w.count, w.value) for w in weeks[:4]] == [
        (1, D("1000.00")),  # C
        (1, D("50.00")),  # D
        (3, D("120.00")),  # A, I (USD: counted, no value), R
        (1, D("0.00")),  # E, no price
    ]
    assert sum(w.count for w in weeks[4:]) == 0


def _figure(html: str, name: str) -> str:
    match = re.search(rf'data-figure="{re.escape(name)}">\s*([^<]*?)\s*<', html)
    assert match, name
    return match.group(1)


def test_dashboard_shows_revenue_and_charts(client, manager_user, book):
    client.force_login(manager_user)

    html = client.get(reverse("dashboard")).content.decode()

    assert _figure(html, "mrr") == "303.33"
    assert _figure(html, "arr") == "3,640.00"
    assert _figure(html, "unpriced") == "2"
    assert _figure(html, "lapsed-value") == "30.00"
    assert _figure(html, "churn90-value") == "670.00"
    assert _figure(html, "churn90-mrr") == "120.00"
    assert _figure(html, "churn30-subscription-rate") == "40.0% (2 of 5)"
    assert _figure(html, "churn90-revenue-rate") == "41.2%"
    assert _figure(html, "churn90-grr") == "58.8%"
    assert _figure(html, "churn90-nrr") == "59.5%"
    assert _figure(html, "at-risk") == "0"
    assert _figure(html, "renewal-rate").startswith("40.0%")
    assert _figure(html, "mrr-month-2026-05") == "283.33"
    charts = re.findall(r'<svg id="[^"]*" class="revenue-chart".*?</svg>', html, flags=re.S)
    assert len(charts) == 2
    for chart in charts:
        assert 'role="img"' in chart and "<title" in chart
        # Self-contained: no script, nothing fetched from elsewhere.
        assert "<script" not in chart
        assert "http" not in chart.replace('xmlns="http://www.w3.org/2000/svg"', "")
    # Readable without colour: every bar carries its figure as text, this month is hatched.
    assert ">283.33<" not in charts[0]  # labels are short, the table holds the cents
    assert ">283<" in charts[0] and "url(#mrr-chart-hatch)" in charts[0]


def test_dashboard_revenue_query_count_is_constant(
    client, manager_user, django_assert_max_num_queries
):
    client.force_login(manager_user)
    for i in range(3):
        _subscription(f"S{i}", "oo-std", "monthly", S.ACTIVE, date(2026, 7, 1), D("10.00"))
    with CaptureQueriesContext(connection) as few:
        revenue.dashboard_context()
    for i in range(3, 40):
        _subscription(
            f"S{i}",
            "oo-ent",
            "yearly",
            S.CANCELLED,
            date(2026, 12, 1),
            D("10.00"),
            cancelled_at=datetime(2026, 6, 1, tzinfo=UTC),
        )
    with django_assert_max_num_queries(8), CaptureQueriesContext(connection) as many:
        revenue.dashboard_context()

    assert len(few) == len(many) == 8
    assert settings.PORTAL_CURRENCY == "EUR"
