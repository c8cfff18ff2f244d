"""Automatic retries of unsettled OneOffice calls: one scheduled retry per call, and the sweep
that finds calls nothing would retry (their process died, or so did their retry).

A retry is a django-q2 schedule named after the call it follows, so scheduling twice for one
call is harmless and each new call can have its own. The tasks it runs (`portal.tasks`) call
the service, which checks the attempt count: a retry overtaken by another sends nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypedDict

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone
from django_q.models import Schedule

from customers.models import Customer
from orders.models import Order
from portal.models import ProvisioningCall
from portal.provisioning import notifications

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

Subject = Customer | Order
Outcome = ProvisioningCall.Outcome
# The latest call of a pending object ended like this: nothing settled it yet.
UNSETTLED = (Outcome.IN_FLIGHT, Outcome.UNKNOWN, Outcome.NOT_SENT, Outcome.NOT_NOW)


if TYPE_CHECKING:

    class _LatestCall(TypedDict):
        latest_call_id: int
        latest_outcome: str

    # What `_stranded` adds to each object it finds.
    Stranded = WithAnnotations[Customer, _LatestCall] | WithAnnotations[Order, _LatestCall]


def _kind(subject: Subject | type[Subject]) -> str:
    model = subject if isinstance(subject, type) else type(subject)
    return "customer" if issubclass(model, Customer) else "order"


def retry_name(subject: Subject, *, call_id: int) -> str:
    return f"retry {_kind(subject)} {subject.pk} after call {call_id}"


def scheduled_among(names: Iterable[str]) -> set[str]:
    """Those of `names` that already have a retry scheduled (one query)."""
    return set(Schedule.objects.filter(name__in=list(names)).values_list("name", flat=True))


def _retry_schedule(subject: Subject, *, attempt: int, call_id: int, at: datetime) -> Schedule:
    return Schedule(
        name=retry_name(subject, call_id=call_id),
        func=f"portal.tasks.{_kind(subject)}_retry_task",
        args=repr((subject.pk, attempt)),
        kwargs="{}",
        schedule_type=Schedule.ONCE,
        next_run=at,
        repeats=-1,
    )


def schedule_retry(subject: Subject, *, attempt: int, call_id: int, at: datetime) -> None:
    """One automatic retry of `subject` after the call `call_id`, run once by the cluster at `at`.

    Harmless when that call already has its retry; the cluster deletes it once it has run.
    """
    schedule = _retry_schedule(subject, attempt=attempt, call_id=call_id, at=at)
    if not scheduled_among([schedule.name]):
        schedule.save()


def backoff(attempt: int) -> timedelta:
    """How long to wait after attempt number `attempt` failed."""
    return timedelta(seconds=settings.ONEOFFICE_RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1))


def plan_retry(subject: Subject, call: ProvisioningCall, *, not_before: datetime | None = None):
    """After commit: schedule the next automatic attempt, or tell managers there is none.

    The retry waits the back-off, and never less than until `not_before` (the vendor's
    Retry-After)."""
    attempt = subject.attempts
    if attempt < settings.ONEOFFICE_RETRY_MAX_ATTEMPTS:
        at = timezone.now() + backoff(attempt)
        if not_before is not None and not_before > at:
            at = not_before
        transaction.on_commit(
            lambda: schedule_retry(subject, attempt=attempt, call_id=call.pk, at=at)
        )
    elif attempt == settings.ONEOFFICE_RETRY_MAX_ATTEMPTS:
        transaction.on_commit(lambda: notifications.retries_exhausted(subject))


def _stranded(model: type[Subject], *, now: datetime) -> list[Stranded]:
    calls = ProvisioningCall.objects.filter(**{_kind(model): OuterRef("pk")})
    if model is Customer:
        calls = calls.filter(order__isnull=True)
    latest = calls.order_by("-started_at", "-id")
    return list(
        model.objects.filter(
            model.needs_attention_q(now=now),
            attempts__lt=settings.ONEOFFICE_RETRY_MAX_ATTEMPTS,
        )
        .annotate(
            latest_call_id=Subquery(latest.values("id")[:1]),
            latest_outcome=Subquery(latest.values("outcome")[:1]),
        )
        .filter(latest_outcome__in=UNSETTLED)
        .only("pk", "attempts")
    )


def retry_stranded() -> int:
    """Schedule a retry, now, for pending operations that nothing would retry otherwise.

    That is a pending object no request is working on (its lease, or for a renewal its
    subscription's lease, is free or expired) whose latest call is in flight, unknown or not
    sent, with automatic attempts left and no retry scheduled after that call: a process that
    died mid-call, or a retry lost with its process. Configuration errors, refusals that need a
    decision and used-up attempts wait for a person. A constant number of queries, however many
    objects are pending. Returns how many retries it scheduled.
    """
    now = timezone.now()
    wanted = [
        _retry_schedule(subject, attempt=subject.attempts, call_id=subject.latest_call_id, at=now)
        for model in (Customer, Order)
        for subject in _stranded(model, now=now)
    ]
    taken = scheduled_among(schedule.name for schedule in wanted)
    new = [schedule for schedule in wanted if schedule.name not in taken]
    Schedule.objects.bulk_create(new)
    return len(new)
