"""The lease: one vendor call about an object at a time, and the state checks made under it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from django.db import transaction
from django.db.models import Field, ForeignKey, Q
from django.utils import timezone

from customers.models import Customer
from orders.models import Order
from portal.provisioning.errors import Busy, NotAllowed
from portal.provisioning.holds import call_hold

Subject = Customer | Order
S = TypeVar("S", Customer, Order)


@contextmanager
def leased(subject: Subject) -> Iterator[None]:
    """Hold the object's lease for the duration of one vendor call, or raise `Busy`."""
    model = type(subject)
    now = timezone.now()
    until = now + call_hold()
    # One UPDATE in autocommit is its own transaction: the compare-and-set needs no other. A
    # caller inside a transaction is refused by the attempt's durable transaction, before sending.
    taken = (
        model.objects.filter(pk=subject.pk)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=until)
    )
    if not taken:
        if not model.objects.filter(pk=subject.pk).exists():
            raise NotAllowed(f"{subject} no longer exists. Nothing was sent.")
        raise Busy(f"{subject} is being sent to OneOffice right now by another request.")
    # The instance knows it holds the lease: the outcome's UPDATE frees it in passing
    # (`save_releasing_lease`), and then nothing is left to release here.
    subject.lease_until = until
    try:
        yield
    finally:
        if subject.lease_until == until:
            # Only our own lease: a reply trickling in past it may have let another process in.
            model.objects.filter(pk=subject.pk, lease_until=until).update(lease_until=None)
        subject.lease_until = None


def save_releasing_lease(subject: Subject, fields: list[str]) -> bool:
    """Save `fields` of `subject` and, when this process holds its lease, free the lease in the
    same UPDATE, on condition that it is still ours.

    False, with nothing written, when the lease is held but no longer ours (it lapsed under a
    stalled call and another process may have acted since): the caller decides what to write.
    """
    held = subject.lease_until
    if held is None:
        subject.save(update_fields=fields)
        return True
    subject.updated_at = timezone.now()
    values = {name: getattr(subject, name) for name in {*fields, "updated_at"}}
    rows = type(subject).objects.filter(pk=subject.pk, lease_until=held)
    if not rows.update(**values, lease_until=None):
        return False
    subject.remember_stored(list(values))
    # Only once it is committed: rolled back, the lease is still held and `leased` frees it.
    transaction.on_commit(lambda: setattr(subject, "lease_until", None))
    return True


def reload(subject: S, *, also: Q | None = None) -> list[S]:
    """Re-read the object under its lease, refusing one the caller changed without saving.

    The service sends what is stored, never what a caller holds in memory: quietly dropping
    an unsaved change would send something else than the caller saw. `also` selects more rows
    of the same table, read in the same query and returned.
    """
    if subject.pk is None:
        raise NotAllowed(f"{subject} is not saved yet; save it first. Nothing was sent.")
    changed = subject.unsaved_fields()
    if changed:
        names = ", ".join(field_label(subject, name) for name in changed)
        raise NotAllowed(
            f"{subject} has unsaved changes ({names}); save them first. Nothing was sent."
        )
    rows = list(type(subject)._base_manager.filter(Q(pk=subject.pk) | (also or Q(pk__in=[]))))
    fresh = next((row for row in rows if row.pk == subject.pk), None)
    if fresh is None:
        raise NotAllowed(f"{subject} no longer exists. Nothing was sent.")
    _copy_fields(fresh, subject)
    subject.remember_stored()
    return [row for row in rows if row.pk != subject.pk]


def _copy_fields(fresh: Subject, subject: Subject) -> None:
    # What `refresh_from_db` does with the row it reads: related rows are read again too. The
    # lease is left as `leased` set it: the one this process holds, whatever the row says.
    for field in subject._meta.concrete_fields:
        if field.attname == "lease_until":
            continue
        setattr(subject, field.attname, getattr(fresh, field.attname))
        if isinstance(field, ForeignKey) and field.is_cached(subject):
            field.delete_cached_value(subject)
    for relation in subject._meta.related_objects:
        if relation.is_cached(subject):
            relation.delete_cached_value(subject)


def field_label(subject: Subject, name: str) -> str:
    field = subject._meta.get_field(name)
    # Relations seen from the other side have no label of their own; their name is the label.
    return str(field.verbose_name) if isinstance(field, Field) else name


def reload_and_check_state(subject: S, attempt: int | None, *, action: str) -> bool:
    """Under the lease: re-read the object and check its state allows `action`.

    True when this continues the pending operation (a retry), False when it starts it.
    """
    reload(subject)
    # Customers have one operation; orders say which one is pending.
    pending = subject.pending_action if isinstance(subject, Order) else action
    if subject.can_retry() and pending == action:
        check_attempt(subject, attempt)
        return True
    if attempt is not None:
        raise NotAllowed(f"{subject} has nothing pending to retry.")
    if not subject.can(action):
        raise NotAllowed(
            f"{subject} is {describe_state(subject)}; that does not allow this action."
        )
    return False


def check_attempt(subject: Subject, attempt: int | None) -> None:
    # A retry task carries the attempt it was scheduled after; a second delivery of it, or a
    # task overtaken by a manual retry, finds the count moved on and sends nothing.
    if attempt is not None and subject.attempts != attempt:
        raise NotAllowed(f"{subject} was already retried (attempt {subject.attempts}).")


def describe_state(subject: Subject) -> str:
    state = subject.get_status_display()
    if isinstance(subject, Order) and subject.pending_action:
        state += f" ({subject.get_pending_action_display()} not settled)"
    return state
