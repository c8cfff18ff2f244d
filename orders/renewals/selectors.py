"""Read-only queries about orders: the renewal states, as `terms.renewal_window` defines
them on OneOffice's calendar."""

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Case, Q, QuerySet, Value, When
from django.utils import timezone

from orders.models import Order
from orders.renewals.terms import renewal_window

DUE = "due"
LAPSED = "lapsed"
NOT_YET_DUE = "not-yet-due"

# Subscriptions that can be renewed: the renewal window is about them only.
RENEWABLE = sorted(Order.states_allowing(Order.Action.RENEW))
_DUE_FIELDS = [
    "number",
    "customer",
    "parent",
    "product",
    "licenses",
    "duration",
    "status",
    "pending_action",
    "current_term_end",
    "current_value",
    "current_currency",
    "customer__code",
    "customer__name",
    "customer__account_manager",
    *(
        f"customer__account_manager__{name}"
        for name in ("username", "first_name", "last_name", "email", "is_active")
    ),
]


def term_end_of(subscription: Order) -> date:
    """The current term end of a subscription these selectors returned: each has one."""
    if subscription.current_term_end is None:
        raise ValueError(f"{subscription} has no current term.")
    return subscription.current_term_end


def renewal_state_q(state: str, *, today: date | None = None, days: int | None = None) -> Q:
    """The predicate for one renewal state of subscriptions (first orders, active or suspended).

    The three states split those subscriptions: due (the term ends today or within the window),
    lapsed (it ended before today), not yet due. Cancelled subscriptions are in none, and so
    are those with a cancel or suspend still pending: nobody can renew them until it settles.
    """
    today, last = renewal_window(today=today, days=days)
    subscription = Q(parent__isnull=True, current_term_end__isnull=False)
    if state == DUE:
        return subscription & Q(
            status__in=RENEWABLE, current_term_end__gte=today, current_term_end__lte=last
        )
    if state == LAPSED:
        return subscription & Q(status__in=RENEWABLE, current_term_end__lt=today)
    if state == NOT_YET_DUE:
        return subscription & Q(status__in=RENEWABLE, current_term_end__gt=last)
    raise ValueError(f"unknown renewal state {state!r}")


def order_list_due_for_renewal(
    *, today: date | None = None, days: int | None = None
) -> QuerySet[Order]:
    """Subscriptions due (term ends within the window) or lapsed (ended, not renewed),
    soonest first, annotated with `renewal_state`. One query on the indexed term end."""
    today, last = renewal_window(today=today, days=days)
    # DUE | LAPSED, written as one range on the term end so the index serves it.
    return (
        Order.objects.filter(parent__isnull=True, status__in=RENEWABLE, current_term_end__lte=last)
        .select_related("customer", "customer__account_manager")
        # What the renewals page, the reminders and `renewals_due` read; loading whole rows of
        # three tables doubled the time on large lists.
        .only(*_DUE_FIELDS)
        .annotate(
            renewal_state=Case(
                When(current_term_end__lt=today, then=Value(LAPSED)), default=Value(DUE)
            )
        )
        .order_by("current_term_end", "number")
    )


@dataclass(frozen=True)
class EndingWeek:
    """One week of `subscription_ending_per_week`: its first and last day, and a row per day
    on which terms end (`current_term_end` and the aggregates asked for)."""

    start: date
    end: date
    days: list[dict]

    def total(self, name: str, zero=0):
        """The sum of aggregate `name` over the week's days (None counts as nothing)."""
        return sum((day[name] for day in self.days if day[name] is not None), zero)


def subscription_ending_per_week(
    *, today: date | None = None, weeks: int, **aggregates
) -> list[EndingWeek]:
    """Renewable subscriptions whose current term ends in each of the next `weeks` weeks: the
    first starts today (DJANGO_TIME_ZONE), each is seven days. The database computes
    `aggregates` per day (at most 7 × `weeks` rows, one query); Python only buckets the days."""
    today = today or timezone.localdate()
    rows = (
        subscription_list_ending_between(first=today, last=today + timedelta(days=7 * weeks - 1))
        .values("current_term_end")
        .annotate(**aggregates)
    )
    buckets: list[list[dict]] = [[] for _ in range(weeks)]
    for row in rows:
        buckets[(row["current_term_end"] - today).days // 7].append(row)
    return [
        EndingWeek(
            start=today + timedelta(days=7 * i), end=today + timedelta(days=7 * i + 6), days=days
        )
        for i, days in enumerate(buckets)
    ]


def subscription_list_ending_between(*, first: date, last: date) -> QuerySet[Order]:
    """Renewable subscriptions whose current term ends from `first` to `last`, unordered."""
    return Order.objects.filter(
        parent__isnull=True,
        status__in=RENEWABLE,
        current_term_end__gte=first,
        current_term_end__lte=last,
    ).order_by()
