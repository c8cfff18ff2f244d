"""What a customer's page reads: its subscriptions, its next renewal and one timeline of what
happened to it. Each read is bounded and served by an index on the customer's own rows, so the
page costs the same however large the tables around it grow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Case, F, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from customers.models import Customer
from orders.models import Order, RenewalReminder, SubscriptionChange
from orders.renewals.selectors import RENEWABLE
from portal.core.people import display_name
from portal.models import Batch, BatchItem, ProvisioningCall

# The kinds of events a timeline holds; a page asks for those its reader may see.
CALLS = "call"
CHANGES = "change"
REMINDERS = "reminder"
BATCHES = "batch"
KINDS = (CALLS, CHANGES, REMINDERS, BATCHES)


def customer_subscriptions(*, customer: Customer) -> QuerySet[Order]:
    """The customer's subscriptions (first orders): running ones first, soonest term end
    first; then the rest, newest first."""
    running = Case(
        When(status__in=RENEWABLE, then=Value(0)),
        When(status=Order.Status.PENDING, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    running_end = Case(When(status__in=RENEWABLE, then=F("current_term_end")), default=None)
    return (
        Order.objects.filter(customer=customer, parent__isnull=True)
        .annotate(running=running, running_end=running_end)
        .order_by("running", F("running_end").asc(nulls_last=True), "-created_at", "-id")
    )


def customer_next_renewal(*, customer: Customer, today: date | None = None) -> Order | None:
    """The renewable subscription whose term ends first on or after today."""
    today = today or timezone.localdate()
    return (
        Order.objects.filter(
            customer=customer,
            parent__isnull=True,
            status__in=RENEWABLE,
            current_term_end__gte=today,
        )
        .order_by("current_term_end", "number")
        .first()
    )


@dataclass(frozen=True)
class Event:
    """One thing that happened, as a timeline row reads it."""

    at: datetime
    kind: str
    what: str
    detail: str
    by: str
    obj: object


def customer_timeline(
    *, customer: Customer, kinds: frozenset[str] | set[str], limit: int
) -> tuple[list[Event], bool]:
    """The customer's latest `limit` events of `kinds`, newest first, and whether there are
    more: its OneOffice calls and its orders', its subscriptions' changes and reminders, and
    the batches that held it or its orders. At most `limit` rows are read of each kind."""
    orders = list(Order.objects.filter(customer=customer).values_list("pk", "parent_id"))
    order_ids = [pk for pk, _ in orders]
    subscription_ids = [pk for pk, parent in orders if parent is None]
    events: list[Event] = []
    if CALLS in kinds:
        events += _calls(customer, order_ids, limit)
    if CHANGES in kinds:
        events += _changes(subscription_ids, limit)
    if REMINDERS in kinds:
        events += _reminders(subscription_ids, limit)
    if BATCHES in kinds:
        events += _batches(customer, order_ids, limit)
    events.sort(key=lambda event: event.at, reverse=True)
    return events[:limit], len(events) > limit


def _calls(customer: Customer, order_ids: list[int], limit: int) -> list[Event]:
    calls = (
        ProvisioningCall.objects.filter(Q(customer=customer) | Q(order_id__in=order_ids))
        .select_related("order", "triggered_by")
        .order_by("-started_at", "-id")[: limit + 1]
    )
    return [
        Event(
            at=call.started_at,
            kind=CALLS,
            what=f"{call.method}{f' #{call.attempt}' if call.attempt > 1 else ''}",
            detail=" · ".join(
                part
                for part in (
                    call.order.number if call.order_id else "",
                    call.get_outcome_display(),
                )
                if part
            ),
            by=call.triggered_by_label,
            obj=call,
        )
        for call in calls
    ]


def _changes(subscription_ids: list[int], limit: int) -> list[Event]:
    changes = (
        SubscriptionChange.objects.filter(subscription_id__in=subscription_ids)
        .select_related("subscription", "by")
        .order_by("-recorded_at", "-id")[: limit + 1]
    )
    return [
        Event(
            at=change.recorded_at,
            kind=CHANGES,
            what=f"{change.subscription.number} {change.get_kind_display()}",
            detail=" · ".join(
                part
                for part in (
                    f"{change.status_before or 'new'} → {change.status_after}",
                    f"effective {change.effective_on:%Y-%m-%d}",
                    change.note,
                )
                if part
            ),
            by=display_name(change.by) if change.by_id else "scheduler",
            obj=change.subscription,
        )
        for change in changes
    ]


def _reminders(subscription_ids: list[int], limit: int) -> list[Event]:
    reminders = (
        RenewalReminder.objects.filter(subscription_id__in=subscription_ids)
        .select_related("subscription", "requested_by")
        .order_by("-created_at", "-id")[: limit + 1]
    )
    return [
        Event(
            at=reminder.sent_at or reminder.created_at,
            kind=REMINDERS,
            what=f"Renewal reminder for {reminder.subscription.number}",
            detail=" · ".join(
                part
                for part in (
                    f"term ends {reminder.term_end:%Y-%m-%d}",
                    f"to {reminder.recipients}" if reminder.sent_at else "not sent yet",
                    "re-sent by hand" if reminder.forced else "",
                )
                if part
            ),
            by=reminder.requested_by.get_username() if reminder.requested_by_id else "reminder job",
            obj=reminder,
        )
        for reminder in reminders
    ]


def _batches(customer: Customer, order_ids: list[int], limit: int) -> list[Event]:
    items = (
        BatchItem.objects.filter(
            Q(batch__kind=Batch.Kind.CUSTOMER, object_id=customer.pk)
            | Q(batch__kind=Batch.Kind.ORDER, object_id__in=order_ids)
        )
        .select_related("batch", "batch__created_by")
        .order_by("-batch__created_at", "-batch_id")[: limit + 1]
    )
    return [
        Event(
            at=item.batch.created_at,
            kind=BATCHES,
            what=f"Batch {item.batch_id}: {item.batch.label}",
            detail=f"{item.object_label}: {item.get_state_display()}",
            by=item.batch.started_by_label,
            obj=item.batch,
        )
        for item in items
    ]
