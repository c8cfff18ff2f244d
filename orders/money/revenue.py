"""Revenue figures for managers, each one SQL query whatever the number of orders.

Amounts are in PORTAL_CURRENCY; orders recorded in another currency, or without a price, are
left out of every sum and counted apart. A subscription's value is that of its latest confirmed
term (`current_value`: the first order's, or its latest renewal's). Definitions a manager can
check by hand are in the README ("Money").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from orders.models import Order
from orders.money import charts
from orders.money.pricing import money_quantum
from orders.renewals import terms
from orders.renewals.selectors import RENEWABLE, subscription_ending_per_week
from portal.models import ProvisioningCall

S = Order.Status
DUE_HORIZONS = (15, 30, 90)
CHURN_PERIODS = (30, 90)
RENEWAL_RATE_DAYS = 90
ZERO = Decimal(0)


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(money_quantum(settings.PORTAL_CURRENCY), rounding=ROUND_HALF_UP)


def _dec(amount) -> Decimal:
    # SQLite sums decimals as floats; one rounding to cents at the end absorbs that.
    return ZERO if amount is None else Decimal(str(amount))


def _priced(prefix: str = "") -> Q:
    return Q(**{f"{prefix}value__isnull": False, f"{prefix}currency": settings.PORTAL_CURRENCY})


def _sum(name: str, condition: Q) -> Sum:
    return Sum(name, filter=condition, output_field=DecimalField(max_digits=20, decimal_places=4))


def _start_of(day: date) -> datetime:
    """The first instant of `day` in DJANGO_TIME_ZONE."""
    return timezone.make_aware(datetime.combine(day, time.min))


# MRR and ARR ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductRevenue:
    product: str
    label: str
    subscriptions: int
    exact_mrr: Decimal
    suspended: int
    suspended_mrr: Decimal
    unpriced: int

    @property
    def mrr(self) -> Decimal:
        return _cents(self.exact_mrr)

    @property
    def arr(self) -> Decimal:
        # From the unrounded MRR: figures are rounded once, at the end.
        return _cents(self.exact_mrr * 12)


@dataclass(frozen=True)
class Recurring:
    products: list[ProductRevenue]
    mrr: Decimal
    arr: Decimal
    subscriptions: int
    suspended_mrr: Decimal
    suspended: int
    unpriced: int
    currency: str = field(default_factory=lambda: settings.PORTAL_CURRENCY)


def revenue_recurring(*, today: date | None = None, customer_id: int | None = None) -> Recurring:
    """MRR and ARR of active subscriptions whose term runs today, by product and in total;
    suspended ones apart; subscriptions without a price counted; of one customer when given.
    One query."""
    today = today or timezone.localdate()
    running = Q(parent__isnull=True, status__in=RENEWABLE, current_term_end__gte=today)
    if customer_id is not None:
        running &= Q(customer_id=customer_id)
    priced = _priced("current_")
    active, suspended = Q(status=S.ACTIVE), Q(status=S.SUSPENDED)
    monthly, yearly = Q(duration=Order.Duration.MONTHLY), Q(duration=Order.Duration.YEARLY)
    rows = (
        Order.objects.filter(running)
        .order_by()
        .values("product")
        .annotate(
            active=Count("id", filter=active),
            suspended=Count("id", filter=suspended),
            unpriced=Count("id", filter=~priced),
            active_monthly=_sum("current_value", priced & active & monthly),
            active_yearly=_sum("current_value", priced & active & yearly),
            suspended_monthly=_sum("current_value", priced & suspended & monthly),
            suspended_yearly=_sum("current_value", priced & suspended & yearly),
        )
    )
    by_product = {row["product"]: row for row in rows}
    products, mrr_exact, suspended_exact = [], ZERO, ZERO
    for value, label in Order.Product.choices:
        row = by_product.get(value, {})
        mrr = _dec(row.get("active_monthly")) + _dec(row.get("active_yearly")) / 12
        paused = _dec(row.get("suspended_monthly")) + _dec(row.get("suspended_yearly")) / 12
        mrr_exact += mrr
        suspended_exact += paused
        products.append(
            ProductRevenue(
                product=value,
                label=label,
                subscriptions=row.get("active", 0),
                exact_mrr=mrr,
                suspended=row.get("suspended", 0),
                suspended_mrr=_cents(paused),
                unpriced=row.get("unpriced", 0),
            )
        )
    return Recurring(
        products=products,
        mrr=_cents(mrr_exact),
        arr=_cents(mrr_exact * 12),
        subscriptions=sum(p.subscriptions for p in products),
        suspended_mrr=_cents(suspended_exact),
        suspended=sum(p.suspended for p in products),
        unpriced=sum(p.unpriced for p in products),
    )


# Renewals due, churn, renewal rate ---------------------------------------------------------------


@dataclass(frozen=True)
class Amount:
    key: str
    label: str
    count: int
    value: Decimal


def revenue_renewals_due(*, today: date | None = None) -> list[Amount]:
    """Active and suspended subscriptions whose term ends within 15, 30 and 90 days (today
    included), and those lapsed (term ended, not renewed): counts and value. One query."""
    today = today or timezone.localdate()
    priced = _priced("current_")
    windows = {
        f"due{days}": (
            f"due in the next {days} days",
            Q(current_term_end__gte=today, current_term_end__lte=today + timedelta(days=days)),
        )
        for days in DUE_HORIZONS
    }
    windows["lapsed"] = ("lapsed", Q(current_term_end__lt=today))
    aggregates = {}
    for key, (_, condition) in windows.items():
        aggregates[f"{key}_count"] = Count("id", filter=condition)
        aggregates[f"{key}_value"] = _sum("current_value", condition & priced)
    row = Order.objects.filter(
        parent__isnull=True,
        status__in=RENEWABLE,
        current_term_end__lte=today + timedelta(days=max(DUE_HORIZONS)),
    ).aggregate(**aggregates)
    return [
        Amount(key, label, row[f"{key}_count"], _cents(_dec(row[f"{key}_value"])))
        for key, (label, _) in windows.items()
    ]


def _with_cancel_dates(orders: QuerySet[Order], *, of_renewals: bool = False) -> QuerySet[Order]:
    """`orders` annotated with `cancelled_at`: when OneOffice confirmed the cancellation of
    their subscription (the call log's successful cancelOrder), or null.

    A join, not a subquery per row: the figures filter on the date a dozen times, and SQLite
    and PostgreSQL would evaluate a subquery once per use. A subscription is cancelled once,
    so at most one call matches and no row is counted twice.
    """
    cancel_ok = {
        "method": ProvisioningCall.Method.CANCEL_ORDER,
        "outcome": ProvisioningCall.Outcome.OK,
    }
    orders = orders.annotate(
        own_cancel=FilteredRelation(
            "calls", condition=Q(**{f"calls__{k}": v for k, v in cancel_ok.items()})
        )
    )
    if not of_renewals:
        return orders.annotate(cancelled_at=F("own_cancel__finished_at"))
    # Only cancelled subscriptions are joined: a join with every first order costs more
    # than the rest of the query.
    return orders.annotate(
        cancelled_parent=FilteredRelation("parent", condition=Q(parent__status=S.CANCELLED)),
        parent_cancel=FilteredRelation(
            "cancelled_parent__calls",
            condition=Q(**{f"cancelled_parent__calls__{k}": v for k, v in cancel_ok.items()}),
        ),
        cancelled_at=Coalesce("own_cancel__finished_at", "parent_cancel__finished_at"),
    )


@dataclass(frozen=True)
class Churn:
    days: int
    cancelled: int
    cancelled_value: Decimal
    lapsed: int
    lapsed_value: Decimal

    @property
    def count(self) -> int:
        return self.cancelled + self.lapsed

    @property
    def value(self) -> Decimal:
        return self.cancelled_value + self.lapsed_value


def revenue_churn(*, today: date | None = None) -> list[Churn]:
    """Value lost in the last 30 and 90 days (today included): subscriptions cancelled in that
    time, and active or suspended ones whose term ended in it without renewal. One query."""
    today = today or timezone.localdate()
    longest = max(CHURN_PERIODS)
    priced = _priced("current_")
    aggregates = {}
    for days in CHURN_PERIODS:
        cancelled = Q(status=S.CANCELLED, cancelled_at__gte=_start_of(today - timedelta(days - 1)))
        lapsed = Q(
            status__in=RENEWABLE,
            current_term_end__lt=today,
            current_term_end__gte=today - timedelta(days=days),
        )
        aggregates[f"cancelled{days}"] = Count("id", filter=cancelled)
        aggregates[f"cancelled{days}_value"] = _sum("current_value", cancelled & priced)
        aggregates[f"lapsed{days}"] = Count("id", filter=lapsed)
        aggregates[f"lapsed{days}_value"] = _sum("current_value", lapsed & priced)
    candidates = Order.objects.filter(parent__isnull=True).filter(
        Q(status=S.CANCELLED)
        | Q(
            status__in=RENEWABLE,
            current_term_end__lt=today,
            current_term_end__gte=today - timedelta(days=longest),
        )
    )
    row = _with_cancel_dates(candidates).aggregate(**aggregates)
    return [
        Churn(
            days=days,
            cancelled=row[f"cancelled{days}"],
            cancelled_value=_cents(_dec(row[f"cancelled{days}_value"])),
            lapsed=row[f"lapsed{days}"],
            lapsed_value=_cents(_dec(row[f"lapsed{days}_value"])),
        )
        for days in CHURN_PERIODS
    ]


@dataclass(frozen=True)
class RenewalRate:
    days: int
    came_due: int
    renewed: int

    @property
    def percent(self) -> Decimal | None:
        if not self.came_due:
            return None
        return (Decimal(100) * self.renewed / self.came_due).quantize(
            Decimal("0.1"), rounding=ROUND_HALF_UP
        )


def revenue_renewal_rate(*, today: date | None = None) -> RenewalRate:
    """Terms that ended in the last 90 days (before today), and how many of them were renewed
    on time: a renewal of the same subscription starts on the day the term ended. One query."""
    today = today or timezone.localdate()
    days = RENEWAL_RATE_DAYS
    next_term = Order.objects.filter(
        parent_id=OuterRef("subscription_id"),
        term_start=OuterRef("term_end"),
        status=S.ACTIVE,
    )
    row = (
        Order.objects.filter(
            term_end__gte=today - timedelta(days=days),
            term_end__lt=today,
        )
        .annotate(subscription_id=Coalesce("parent_id", "id"))
        .annotate(on_time=Exists(next_term))
        .aggregate(came_due=Count("id"), renewed=Count("id", filter=Q(on_time=True)))
    )
    return RenewalRate(days=days, came_due=row["came_due"], renewed=row["renewed"])


# Over time ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    start: date
    end: date
    value: Decimal
    count: int = 0


def month_ends(today: date, months: int = 12) -> list[date]:
    """The last day of each of the `months` months up to this one; today for this month."""
    first = today.replace(day=1)
    days = [terms.add_months(first, 1 - i) - timedelta(days=1) for i in range(months - 1, 0, -1)]
    return [*days, today]


def revenue_mrr_by_month(
    *, today: date | None = None, months: int = 12, current: Decimal | None = None
) -> list[Point]:
    """MRR at the end of each of the last `months` months. A past month counts every priced
    term running on its last day (term start ≤ day < term end) of a subscription not cancelled
    by then; this month's point is today's MRR (`current`, else `revenue_recurring`'s). One
    query for the past months."""
    today = today or timezone.localdate()
    if current is None:
        current = revenue_recurring(today=today).mrr
    days = month_ends(today, months)
    past = days[:-1]
    aggregates = {}
    for i, day in enumerate(past):
        running = Q(term_start__lte=day, term_end__gt=day) & (
            Q(cancelled_at__isnull=True) | Q(cancelled_at__gte=_start_of(day + timedelta(1)))
        )
        aggregates[f"m{i}"] = _sum("value", running & Q(duration=Order.Duration.MONTHLY))
        aggregates[f"y{i}"] = _sum("value", running & Q(duration=Order.Duration.YEARLY))
    terms_then = Order.objects.filter(_priced(), term_start__lte=past[-1], term_end__gt=past[0])
    row = _with_cancel_dates(terms_then, of_renewals=True).aggregate(**aggregates) if past else {}
    points = [
        Point(
            start=day.replace(day=1),
            end=day,
            value=_cents(_dec(row[f"m{i}"]) + _dec(row[f"y{i}"]) / 12),
        )
        for i, day in enumerate(past)
    ]
    return [*points, Point(start=today.replace(day=1), end=today, value=current)]


def revenue_due_per_week(*, today: date | None = None, weeks: int = 12) -> list[Point]:
    """Value of active and suspended subscriptions whose term ends in each of the next
    `weeks` weeks (`subscription_ending_per_week`), rounded once per week."""
    return [
        Point(
            start=week.start,
            end=week.end,
            value=_cents(sum((_dec(day["value"]) for day in week.days), ZERO)),
            count=week.total("count"),
        )
        for week in subscription_ending_per_week(
            today=today,
            weeks=weeks,
            count=Count("id"),
            value=_sum("current_value", _priced("current_")),
        )
    ]


# The dashboard ----------------------------------------------------------------------------------


def dashboard_context(*, today: date | None = None) -> dict:
    """Everything the dashboard's revenue part shows: six queries, whatever the book's size."""
    today = today or timezone.localdate()
    currency = settings.PORTAL_CURRENCY
    recurring = revenue_recurring(today=today)
    months = revenue_mrr_by_month(today=today, current=recurring.mrr)
    weeks = revenue_due_per_week(today=today)
    month_bars = [
        charts.Bar(
            label=f"{point.end:%b %y}",
            value=point.value,
            title=(
                f"{point.end:%B %Y}: MRR {point.value:,} {currency} "
                + ("today" if point.end == today else f"on {point.end:%d %b %Y}")
            ),
            hatched=point.end == today,
        )
        for point in months
    ]
    week_bars = [
        charts.Bar(
            label=f"{point.start:%d %b}",
            value=point.value,
            title=(
                f"{point.start:%d %b %Y} – {point.end:%d %b %Y}: {point.count} renewals, "
                f"{point.value:,} {currency}"
            ),
        )
        for point in weeks
    ]
    return {
        "revenue_currency": currency,
        "revenue": recurring,
        "revenue_due": revenue_renewals_due(today=today),
        "revenue_churn": revenue_churn(today=today),
        "revenue_rate": revenue_renewal_rate(today=today),
        "revenue_months": months,
        "revenue_weeks": weeks,
        "revenue_months_chart": charts.bar_chart(
            month_bars, title=f"MRR by month, last 12 months ({currency})", chart_id="mrr-chart"
        ),
        "revenue_weeks_chart": charts.bar_chart(
            week_bars,
            title=f"Renewal value due per week, next 12 weeks ({currency})",
            chart_id="due-chart",
        ),
    }
