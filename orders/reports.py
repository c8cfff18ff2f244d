"""Figures for managers. Each function is one aggregate query, whatever the number of orders."""

from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Count, Q, Sum
from django.utils import timezone

from customers.models import Customer
from orders.models import Order
from orders.renewals import selectors, terms

# Running subscriptions: those that can still be renewed.
RENEWABLE = selectors.RENEWABLE


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    count: int
    licenses: int = 0


@dataclass(frozen=True)
class Week:
    start: date
    end: date
    count: int
    licenses: int


def subscription_needs_attention_q(*, now: datetime) -> Q:
    """A subscription (first order) that needs attention itself or through a stuck renewal."""
    # IN, not EXISTS: under an OR, PostgreSQL cannot turn EXISTS into a join, and the plan it
    # makes instead is costed high enough to be JIT-compiled (0.2 s at 100,000 orders).
    stuck_renewals = Order.objects.filter(
        Order.needs_attention_q(now=now), parent__isnull=False
    ).values("parent_id")
    return Q(parent__isnull=True) & (Order.needs_attention_q(now=now) | Q(pk__in=stuck_renewals))


def order_count_by_status() -> list[Figure]:
    """Subscriptions per status, every status listed (zero when none)."""
    rows = (
        Order.objects.filter(parent__isnull=True)
        .order_by()
        .values("status")
        .annotate(count=Count("id"))
    )
    counts = {row["status"]: row["count"] for row in rows}
    return [Figure(value, label, counts.get(value, 0)) for value, label in Order.Status.choices]


def order_licenses_by_product() -> list[Figure]:
    """Licenses and subscriptions per product, over active and suspended subscriptions."""
    rows = (
        Order.objects.filter(parent__isnull=True, status__in=RENEWABLE)
        .order_by()
        .values("product")
        .annotate(count=Count("id"), licenses=Sum("licenses"))
    )
    by_product = {row["product"]: row for row in rows}
    return [
        Figure(
            value,
            label,
            by_product.get(value, {}).get("count", 0),
            by_product.get(value, {}).get("licenses") or 0,
        )
        for value, label in Order.Product.choices
    ]


def order_renewals_per_week(*, today: date | None = None, weeks: int = 8) -> list[Week]:
    """Active and suspended subscriptions, and their licenses, whose current term ends in each
    of the next `weeks` weeks (`subscription_ending_per_week`)."""
    return [
        Week(start=w.start, end=w.end, count=w.total("count"), licenses=w.total("licenses"))
        for w in selectors.subscription_ending_per_week(
            today=today, weeks=weeks, count=Count("id"), licenses=Sum("licenses")
        )
    ]


def order_renewal_state_counts(*, today: date | None = None) -> dict[str, int]:
    """How many subscriptions are due for renewal now and how many have lapsed (today on
    OneOffice's calendar, as the renewal window counts)."""
    today = today or terms.vendor_date()
    due = selectors.renewal_state_q(selectors.DUE, today=today)
    lapsed = selectors.renewal_state_q(selectors.LAPSED, today=today)
    _, last = terms.renewal_window(today=today)
    # Both states end on or before the window's last day: the term-end index narrows the scan.
    return Order.objects.filter(current_term_end__lte=last).aggregate(
        due=Count("id", filter=due), lapsed=Count("id", filter=lapsed)
    )


def needs_attention_counts(*, now: datetime | None = None) -> dict[str, int]:
    """Customers and subscriptions the 'needs attention' filters of their lists show."""
    now = now or timezone.now()
    return {
        "customers": Customer.objects.filter(Customer.needs_attention_q(now=now)).count(),
        "orders": Order.objects.filter(subscription_needs_attention_q(now=now)).count(),
    }
