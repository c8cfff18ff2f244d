"""The shared shape of every operation: commit the attempt, send outside any transaction,
record the outcome."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import TypeVar

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from customers.models import Customer
from orders.models import Order
from orders.renewals import terms
from portal.models import ProvisioningCall
from portal.oneoffice import api
from portal.ops.logging import log_context
from portal.provisioning import inflight, retries
from portal.provisioning.errors import (
    ConfigurationProblem,
    InvalidInput,
    NeedsDecisionError,
    VendorRefused,
)
from portal.provisioning.lease import describe_state, field_label, save_releasing_lease
from portal.provisioning.outcomes import Decision, Settle, classify

logger = logging.getLogger("portal.provisioning")

Outcome = ProvisioningCall.Outcome
Subject = Customer | Order
# One operation's object: its `on_ok` and `refused_status` take that same model.
S = TypeVar("S", Customer, Order)
# What an operation records on success: given the object, OneOffice's reply (None when a
# refusal settled it), the day it took effect on OneOffice's calendar and the call, it sets
# the object's fields and returns their names, to be saved with the outcome.
OnOk = Callable[[S, api.Reply | None, date, ProvisioningCall], list[str]]

_clients: dict[tuple, api.OneOfficeClient] = {}


def client() -> api.OneOfficeClient:
    """The OneOffice client for the current settings, one pooled session per configuration."""
    config = (
        settings.ONEOFFICE_URL,
        settings.ONEOFFICE_API_KEY,
        settings.ONEOFFICE_CONNECT_TIMEOUT,
        settings.ONEOFFICE_TIMEOUT,
    )
    if config not in _clients:
        _clients[config] = api.OneOfficeClient(
            url=config[0], api_key=config[1], connect_timeout=config[2], read_timeout=config[3]
        )
    return _clients[config]


def validate(subject: Subject, *, built_from_stored: bool = False) -> None:
    """Model validation, turned into one message that names each field.

    `built_from_stored` is for a row the service builds itself from rows already stored and
    checked (a renewal copied from its subscription): its fields are still checked, but not its
    relations (each one a query to find a row just read) nor its constraints (a query each,
    re-checking what the database enforces when the row is inserted anyway; a second pending
    renewal is refused there, and the caller turns that into `Busy`).
    """
    relations = [field.name for field in subject._meta.fields if field.is_relation]
    try:
        subject.full_clean(
            exclude=relations if built_from_stored else None,
            validate_unique=not built_from_stored,
            validate_constraints=not built_from_stored,
        )
    except ValidationError as exc:
        errors = exc.message_dict
        parts = []
        for name, messages in errors.items():
            label = field_label(subject, name) if name != "__all__" else "Error"
            parts.append(f"{str(label).capitalize()}: {' '.join(messages)}")
        raise InvalidInput("Not sent. " + " ".join(parts), errors) from None


def commit_attempt(
    subject: Subject,
    request: api.Request,
    *,
    by: User | AnonymousUser | None,
    retrying: bool,
    pending_action: str = "",
) -> ProvisioningCall:
    """First transaction: the pending state and the call-log row, committed before sending."""
    with transaction.atomic(durable=True):
        before = settle_stale_calls(subject, request.method) if retrying else subject.status
        fields = subject.begin_attempt(retrying=retrying, action=pending_action)
        if subject.pk is None:
            subject.save()
        else:
            subject.save(update_fields=fields)
        return ProvisioningCall.objects.create(
            method=request.method,
            params=request.params,
            # The id, not the object: a new renewal has not loaded its customer.
            customer_id=subject.pk if isinstance(subject, Customer) else subject.customer_id,
            order=subject if isinstance(subject, Order) else None,
            triggered_by=by if isinstance(by, User) and by.pk else None,
            attempt=subject.attempts,
            status_before=before,
        )


def calls_of(subject: Subject):
    if isinstance(subject, Customer):
        return ProvisioningCall.objects.filter(customer=subject, order__isnull=True)
    return ProvisioningCall.objects.filter(order=subject)


def settle_stale_calls(subject: Subject, method: str) -> str:
    """On a retry: mark calls a dead worker left in flight as unknown; return the state before
    the operation began."""
    calls = calls_of(subject).filter(method=method)
    for stale in calls.filter(outcome=Outcome.IN_FLIGHT):
        stale.outcome = Outcome.UNKNOWN
        stale.error = "The worker stopped before the outcome was recorded."
        stale.save(update_fields=["outcome", "error"])
        if subject.first_sent_at is None or stale.started_at < subject.first_sent_at:
            subject.first_sent_at = stale.started_at
    first = calls.filter(attempt=1).order_by("-started_at").first()
    return first.status_before if first else ""


def send(
    subject: S,
    call: ProvisioningCall,
    request: api.Request,
    *,
    on_ok: OnOk[S],
    refused_status: Callable[[S, ProvisioningCall], str],
) -> S:
    """Send outside any transaction, then record the outcome (second transaction). Every line
    logged meanwhile names the object and the vendor method."""
    with log_context(object=_log_object(subject), vendor_method=call.method):
        try:
            with inflight.slot():
                reply = client().send(request)
        except api.VendorError as exc:
            return record_failure(subject, call, exc, on_ok=on_ok, refused_status=refused_status)
        record_done(subject, call, reply, on_ok=on_ok)
    return subject


def _log_object(subject: Customer | Order) -> str:
    if isinstance(subject, Customer):
        return f"customer {subject.code}"
    return f"order {subject.number}"


def close_call(call: ProvisioningCall, outcome: str, exc_or_reply, error: str = "") -> None:
    call.outcome = outcome
    call.finished_at = timezone.now()
    call.duration_ms = exc_or_reply.duration_ms
    call.http_status = exc_or_reply.status
    call.response_body = exc_or_reply.body
    call.error = error
    call.save()


def record_done(
    subject: S,
    call: ProvisioningCall,
    reply: api.Reply | api.VendorError,
    *,
    on_ok: OnOk[S],
    settled_earlier: bool = False,
) -> None:
    with transaction.atomic(durable=True):
        if settled_earlier:
            call.settled_earlier = True
            # Only a refusal settles a call earlier, and it carries OneOffice's words.
            message = reply.message if isinstance(reply, api.VendorError) else ""
            close_call(call, Outcome.OK, reply, error=f"Settled: {message}")
        else:
            close_call(call, Outcome.OK, reply)
        applied_at = subject.first_sent_at or call.started_at
        done_reply = None if settled_earlier or isinstance(reply, api.VendorError) else reply
        fields: list[str] = on_ok(subject, done_reply, terms.vendor_date(applied_at), call)
        save_outcome(subject, [*fields, *subject.end_attempts()])
    logger.info("%s %s: done (attempt %s)", call.method, subject, call.attempt)


def save_outcome(subject: Subject, fields: list[str]) -> None:
    """Save the outcome; the same UPDATE frees the object's lease while it is still ours."""
    if not save_releasing_lease(subject, fields):
        # The lease lapsed under a stalled call: the outcome is still what OneOffice answered.
        logger.warning("%s: lease lapsed before its outcome was recorded", subject)
        subject.save(update_fields=fields)


def record_failure(
    subject: S,
    call: ProvisioningCall,
    exc: api.VendorError,
    *,
    on_ok: OnOk[S],
    refused_status: Callable[[S, ProvisioningCall], str],
) -> S:
    """Second transaction after a failed call: record what `classify` decided, then raise."""
    may_have_landed = subject.first_sent_at is not None
    decision = classify(method=call.method, exc=exc, may_have_landed=may_have_landed)
    if decision.settle == Settle.DONE:
        record_done(subject, call, exc, on_ok=on_ok, settled_earlier=True)
        return subject

    with transaction.atomic(durable=True):
        close_call(call, decision.outcome, exc, error=exc.message)
        subject.last_error = exc.message
        fields = ["last_error", "updated_at"]
        if decision.settle in (Settle.REFUSED, Settle.RESTORE):
            ended = (
                refused_status(subject, call)
                if decision.settle == Settle.REFUSED
                else status_before(subject, call)
            )
            fields += subject.end_attempts(ended, error=exc.message)
        elif decision.outcome == Outcome.UNKNOWN and subject.first_sent_at is None:
            subject.first_sent_at = call.started_at
            fields.append("first_sent_at")
        if decision.proves and isinstance(subject, Order):
            fields += note_proof(subject, decision.proves, call)
        save_outcome(subject, fields)
        if decision.retry:
            retries.plan_retry(subject, call, not_before=decision.not_before)
    logger.warning(
        "%s %s: %s (attempt %s): %s", call.method, subject, decision.outcome, call.attempt, exc
    )
    error = decision.error
    if error is None:
        # `classify` leaves the error out only of a decision that settles the call as done.
        raise RuntimeError(f"{call.method} {subject}: a failure decided without an error.")
    failure = error(failure_message(decision, subject, exc, may_have_landed))
    failure.proves = decision.proves
    failure.not_now, failure.not_before = decision.not_now, decision.not_before
    raise failure


def note_proof(order: Order, status: str, call: ProvisioningCall) -> list[str]:
    """Remember on the subscription what OneOffice's refusal proved; the fields of `order`
    to save with the outcome. A renewal's subscription is written here, under the lease this
    process holds on it."""
    if order.is_first_order:
        return order.note_oneoffice_status(status, call)
    subscription = order.parent
    if subscription is not None:
        noted = subscription.note_oneoffice_status(status, call)
        if noted:
            Order.objects.filter(pk=subscription.pk).update(
                **{name: getattr(subscription, name) for name in noted}
            )
    return []


def failure_message(
    decision: Decision, subject: Subject, exc: api.VendorError, may_have_landed: bool
) -> str:
    if decision.error is VendorRefused:
        if decision.proves:
            subscription = (
                subject.parent if isinstance(subject, Order) and subject.parent else subject
            )
            return (
                f"OneOffice refused {subject}: {exc.message}. OneOffice holds {subscription} "
                f"as {decision.proves}; the portal still shows it as "
                f"{describe_state(subscription)}. Nothing changed: to record it as "
                f"{decision.proves}, use Bring in line with OneOffice."
            )
        return f"OneOffice refused {subject}: {exc.message}"
    if decision.error is ConfigurationProblem:
        unsettled = " The earlier attempt is still unsettled." if may_have_landed else ""
        return f"Not done: {exc.message}{unsettled}"
    if decision.error is NeedsDecisionError:
        return (
            f'{subject}: OneOffice answered the retry with "{exc.message}". That is true if the '
            "earlier attempt renewed it, and also if OneOffice's term end differs from ours. "
            "It is not retried: check with OneOffice, then mark it as renewed or not renewed."
        )
    return f"{subject}: {exc.message} {retry_note(subject)}"


def retry_note(subject: Subject) -> str:
    if subject.attempts < settings.ONEOFFICE_RETRY_MAX_ATTEMPTS:
        return "It stays pending and will be retried automatically."
    return "Automatic retries are used up: it needs attention (use Retry)."


def failed_status(subject: Subject, call: ProvisioningCall) -> str:
    return subject.Status.FAILED


def status_before(subject: Subject, call: ProvisioningCall) -> str:
    if isinstance(subject, Order) and not subject.is_first_order:
        return Order.Status.FAILED
    return call.status_before or subject.Status.DRAFT
