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
    Case,
    Count,
    DecimalField,
    Exists,
    F,
    Max,
    OuterRef,
    Q,
    Subquery,
    Sum,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from orders.models import Order, SubscriptionChange
from orders.money import charts
from orders.money.pricing import money_quantum
from orders.renewals import terms
from orders.renewals.selectors import RENEWABLE, subscription_ending_per_week

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


# What a subscription counts for today ---------------------------------------------------------


# Sent, answer not known: OneOffice may have applied it, so the subscription is at risk.
AT_RISK = Q(status=S.PENDING, pending_action__in=[Order.Action.CANCEL, Order.Action.SUSPEND])


def _term_running_today(today: date) -> tuple[Case, Case]:
    """(value, currency) of the term a subscription runs today. A renewal made early starts
    later: until it starts, the term running is the one before it, at its own value; the
    subquery is evaluated only for subscriptions with such a renewal."""
    renewed_early = Exists(Order.objects.filter(parent=OuterRef("pk"), term_start__gt=today))
    running = Order.objects.filter(
        Q(pk=OuterRef("pk")) | Q(parent=OuterRef("pk")), term_start__lte=today
    ).order_by("-term_start")
    value = Case(
        When(renewed_early, then=Subquery(running.values("value")[:1])),
        default=F("current_value"),
    )
    currency = Case(
        When(renewed_early, then=Subquery(running.values("currency")[:1])),
        default=F("current_currency"),
    )
    return value, currency


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
    at_risk: int = 0
    at_risk_mrr: Decimal = ZERO

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
    at_risk: int = 0
    at_risk_mrr: Decimal = ZERO
    exact_mrr: Decimal = ZERO
    currency: str = field(default_factory=lambda: settings.PORTAL_CURRENCY)


def revenue_recurring(*, today: date | None = None, customer_id: int | None = None) -> Recurring:
    """MRR and ARR of active subscriptions whose term runs today, at the value of that term,
    by product and in total; suspended ones apart, and those whose cancellation or suspension
    was sent without a known answer (at risk); subscriptions without a price counted; of one
    customer when given. One query."""
    today = today or timezone.localdate()
    running = Q(parent__isnull=True, current_term_end__gte=today) & (
        Q(status__in=RENEWABLE) | AT_RISK
    )
    if customer_id is not None:
        running &= Q(customer_id=customer_id)
    value, currency = _term_running_today(today)
    priced = Q(today_value__isnull=False, today_currency=settings.PORTAL_CURRENCY)
    groups = {"active": Q(status=S.ACTIVE), "suspended": Q(status=S.SUSPENDED), "risk": AT_RISK}
    monthly, yearly = Q(duration=Order.Duration.MONTHLY), Q(duration=Order.Duration.YEARLY)
    aggregates = {"unpriced": Count("id", filter=~priced & (Q(status__in=RENEWABLE) | AT_RISK))}
    for name, condition in groups.items():
        aggregates[name] = Count("id", filter=condition)
        aggregates[f"{name}_monthly"] = _sum("today_value", priced & condition & monthly)
        aggregates[f"{name}_yearly"] = _sum("today_value", priced & condition & yearly)
    rows = (
        Order.objects.filter(running)
        .annotate(today_value=value, today_currency=currency)
        .order_by()
        .values("product")
        .annotate(**aggregates)
    )
    by_product = {row["product"]: row for row in rows}

    def mrr_of(row: dict, name: str) -> Decimal:
        return _dec(row.get(f"{name}_monthly")) + _dec(row.get(f"{name}_yearly")) / 12

    products = []
    exact = {name: ZERO for name in groups}
    for product, label in Order.Product.choices:
        row = by_product.get(product, {})
        for name in groups:
            exact[name] += mrr_of(row, name)
        products.append(
            ProductRevenue(
                product=product,
                label=label,
                subscriptions=row.get("active", 0),
                exact_mrr=mrr_of(row, "active"),
                suspended=row.get("suspended", 0),
                suspended_mrr=_cents(mrr_of(row, "suspended")),
                unpriced=row.get("unpriced", 0),
                at_risk=row.get("risk", 0),
                at_risk_mrr=_cents(mrr_of(row, "risk")),
            )
        )
    return Recurring(
        products=products,
        mrr=_cents(exact["active"]),
        arr=_cents(exact["active"] * 12),
        subscriptions=sum(p.subscriptions for p in products),
        suspended_mrr=_cents(exact["suspended"]),
        suspended=sum(p.suspended for p in products),
        unpriced=sum(p.unpriced for p in products),
        at_risk=sum(p.at_risk for p in products),
        at_risk_mrr=_cents(exact["risk"]),
        exact_mrr=exact["active"],
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


def _monthly_sum(name: str, condition: Q) -> dict[str, Sum]:
    """Two sums whose MRR is monthly + yearly / 12 (`_mrr`), keyed `name`_m and `name`_y."""
    return {
        f"{name}_m": _sum("current_value", condition & Q(duration=Order.Duration.MONTHLY)),
        f"{name}_y": _sum("current_value", condition & Q(duration=Order.Duration.YEARLY)),
    }


def _mrr(row: dict, name: str) -> Decimal:
    return _dec(row[f"{name}_m"]) + _dec(row[f"{name}_y"]) / 12


def _cancelled_on(subscription: str = "pk") -> Subquery:
    """The day OneOffice's calendar recorded the subscription's (latest) cancellation: the
    service's, or a record brought in line with a cancellation OneOffice holds."""
    return Subquery(
        SubscriptionChange.objects.filter(
            subscription=OuterRef(subscription), status_after=S.CANCELLED
        )
        .order_by()
        .values("subscription")
        .annotate(on=Max("effective_on"))
        .values("on")[:1]
    )


def mrr_on_days(days: list[date]) -> dict[date, tuple[Decimal, int]]:
    """(exact MRR, subscriptions) on each past day, from the recorded terms: the term running
    on the day (start ≤ day < end; a term ending that day counts when no renewal starts on
    it, as today's MRR counts a subscription whose term ends today), of a subscription not
    cancelled on or before the day. Unpriced terms are counted, not added. One query."""
    if not days:
        return {}
    subscription = Coalesce("parent_id", "id")
    renewed_that_day = Exists(
        Order.objects.filter(parent=OuterRef("subscription_id"), term_start=OuterRef("term_end"))
    )
    aggregates = {}
    for i, day in enumerate(days):
        running = (
            Q(term_start__lte=day)
            & (Q(term_end__gt=day) | Q(term_end=day, renewed_that_day=False))
            & (Q(cancelled_on__isnull=True) | Q(cancelled_on__gt=day))
        )
        aggregates[f"n{i}"] = Count("id", filter=running)
        aggregates.update({k: _sum("value", c) for k, c in _priced_terms(f"d{i}", running).items()})
    terms_then = Order.objects.filter(
        term_start__isnull=False, term_start__lte=max(days), term_end__gte=min(days)
    ).annotate(
        subscription_id=subscription,
        renewed_that_day=renewed_that_day,
        cancelled_on=_cancelled_on("subscription_id"),
    )
    row = terms_then.aggregate(**aggregates)
    return {day: (_mrr(row, f"d{i}"), row[f"n{i}"]) for i, day in enumerate(days)}


def _priced_terms(name: str, condition: Q) -> dict[str, Q]:
    priced = _priced() & condition
    return {
        f"{name}_m": priced & Q(duration=Order.Duration.MONTHLY),
        f"{name}_y": priced & Q(duration=Order.Duration.YEARLY),
    }


@dataclass(frozen=True)
class Churn:
    """What the last `days` days (today included) lost and gained, in MRR, against the MRR
    and the subscriptions of the day before them (`opening_mrr`, `opening`)."""

    days: int
    cancelled: int
    cancelled_value: Decimal
    lapsed: int
    lapsed_value: Decimal
    cancelled_mrr: Decimal = ZERO
    lapsed_mrr: Decimal = ZERO
    opening: int = 0
    opening_mrr: Decimal = ZERO
    expansion_mrr: Decimal = ZERO
    contraction_mrr: Decimal = ZERO

    @property
    def count(self) -> int:
        return self.cancelled + self.lapsed

    @property
    def value(self) -> Decimal:
        return self.cancelled_value + self.lapsed_value

    @property
    def churned_mrr(self) -> Decimal:
        return _cents(self.cancelled_mrr + self.lapsed_mrr)

    @staticmethod
    def _percent(part: Decimal, whole: Decimal) -> Decimal | None:
        if not whole:
            return None
        return (Decimal(100) * part / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)

    @property
    def subscription_rate(self) -> Decimal | None:
        """Subscriptions lost ÷ subscriptions running the day before the period, in %."""
        return self._percent(Decimal(self.count), Decimal(self.opening))

    @property
    def revenue_rate(self) -> Decimal | None:
        """Churned MRR ÷ opening MRR, in %."""
        return self._percent(self.cancelled_mrr + self.lapsed_mrr, self.opening_mrr)

    @property
    def gross_retention(self) -> Decimal | None:
        """(Opening MRR − churned − contraction) ÷ opening MRR, in %."""
        lost = self.cancelled_mrr + self.lapsed_mrr + self.contraction_mrr
        return self._percent(self.opening_mrr - lost, self.opening_mrr)

    @property
    def net_retention(self) -> Decimal | None:
        """(Opening MRR − churned − contraction + expansion) ÷ opening MRR, in %."""
        lost = self.cancelled_mrr + self.lapsed_mrr + self.contraction_mrr
        return self._percent(self.opening_mrr - lost + self.expansion_mrr, self.opening_mrr)


def _renewal_changes(firsts: list[date], today: date) -> list[tuple[Decimal, Decimal]]:
    """(expansion, contraction) from each of `firsts` to today: renewals whose term started
    then, in MRR, against the term each continued (the subscription's term before it). One
    query."""
    previous = Order.objects.filter(
        Q(pk=OuterRef("parent_id")) | Q(parent=OuterRef("parent_id")),
        term_start__lt=OuterRef("term_start"),
    ).order_by("-term_start")
    renewals = (
        Order.objects.filter(
            _priced(), parent__isnull=False, term_start__gte=min(firsts), term_start__lte=today
        )
        .annotate(
            before=Subquery(previous.values("value")[:1]),
            before_currency=Subquery(previous.values("currency")[:1]),
        )
        .filter(before__isnull=False, before_currency=settings.PORTAL_CURRENCY)
        .annotate(change=F("value") - F("before"))
    )
    aggregates = {}
    for i, first in enumerate(firsts):
        for name, condition in (("up", Q(change__gt=0)), ("down", Q(change__lt=0))):
            in_period = condition & Q(term_start__gte=first)
            for key, duration in (("m", Order.Duration.MONTHLY), ("y", Order.Duration.YEARLY)):
                aggregates[f"{name}{i}_{key}"] = _sum("change", in_period & Q(duration=duration))
    row = renewals.aggregate(**aggregates)
    return [(_mrr(row, f"up{i}"), -_mrr(row, f"down{i}")) for i in range(len(firsts))]


def revenue_churn(*, today: date | None = None) -> list[Churn]:
    """What the last 30 and 90 days (today included) lost, in count, value and MRR: subscriptions
    cancelled in that time, and active or suspended ones whose term ended in it without
    renewal; with the MRR and subscriptions of the day before each period, and the expansion
    and contraction of renewals in it. Three queries."""
    today = today or timezone.localdate()
    longest = max(CHURN_PERIODS)
    priced = _priced("current_")
    aggregates = {}
    for days in CHURN_PERIODS:
        cancelled = Q(status=S.CANCELLED, cancelled_on__gte=today - timedelta(days - 1))
        lapsed = Q(
            status__in=RENEWABLE,
            current_term_end__lt=today,
            current_term_end__gte=today - timedelta(days=days),
        )
        aggregates[f"cancelled{days}"] = Count("id", filter=cancelled)
        aggregates[f"cancelled{days}_value"] = _sum("current_value", cancelled & priced)
        aggregates.update(_monthly_sum(f"cancelled{days}", cancelled & priced))
        aggregates[f"lapsed{days}"] = Count("id", filter=lapsed)
        aggregates[f"lapsed{days}_value"] = _sum("current_value", lapsed & priced)
        aggregates.update(_monthly_sum(f"lapsed{days}", lapsed & priced))
    candidates = Order.objects.filter(parent__isnull=True).filter(
        Q(status=S.CANCELLED)
        | Q(
            status__in=RENEWABLE,
            current_term_end__lt=today,
            current_term_end__gte=today - timedelta(days=longest),
        )
    )
    row = candidates.annotate(cancelled_on=_cancelled_on()).aggregate(**aggregates)
    opening = mrr_on_days([today - timedelta(days=days) for days in CHURN_PERIODS])
    moves = _renewal_changes([today - timedelta(days - 1) for days in CHURN_PERIODS], today)
    result = []
    for days, (expansion, contraction) in zip(CHURN_PERIODS, moves, strict=True):
        opening_mrr, opening_count = opening[today - timedelta(days=days)]
        result.append(
            Churn(
                days=days,
                cancelled=row[f"cancelled{days}"],
                cancelled_value=_cents(_dec(row[f"cancelled{days}_value"])),
                lapsed=row[f"lapsed{days}"],
                lapsed_value=_cents(_dec(row[f"lapsed{days}_value"])),
                cancelled_mrr=_mrr(row, f"cancelled{days}"),
                lapsed_mrr=_mrr(row, f"lapsed{days}"),
                opening=opening_count,
                opening_mrr=opening_mrr,
                expansion_mrr=expansion,
                contraction_mrr=contraction,
            )
        )
    return result


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
    """MRR at the end of each of the last `months` months: a past month's by `mrr_on_days` on
    its last day; this month's point is today's MRR (`current`, else `revenue_recurring`'s).
    One query for the past months."""
    today = today or timezone.localdate()
    if current is None:
        current = revenue_recurring(today=today).mrr
    days = month_ends(today, months)
    past = mrr_on_days(days[:-1])
    points = [
        Point(start=day.replace(day=1), end=day, value=_cents(past[day][0]), count=past[day][1])
        for day in days[:-1]
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
    """Everything the dashboard's revenue part shows: eight queries, whatever the book's size."""
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
