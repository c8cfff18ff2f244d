"""The provisioning service: the only code that calls OneOffice, and the only writer of status
and of the fields that mirror what OneOffice holds.

Every operation has the same shape:

1. take the object's lease, a compare-and-set in a short transaction, so a double click, a
   second worker or a task delivered twice cannot put the same call on the wire twice;
2. check state and input locally; a `ProvisioningError` here means nothing was sent;
3. commit the pending state and a call-log row (first transaction);
4. call OneOffice, outside any transaction;
5. record the outcome and the mirrored state (second transaction).

When the outcome is unknown the object stays `pending`. Calling the same function again on a
pending object (by hand, or the automatic retry task) re-sends the same call with the same
ids; a refusal saying "that id exists" then proves the earlier attempt landed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from customers.models import Customer
from orders import terms
from orders.models import Order
from portal import inflight, oneoffice, retries
from portal.ids import new_id
from portal.models import ProvisioningCall

logger = logging.getLogger(__name__)

Outcome = ProvisioningCall.Outcome
Subject = Customer | Order


class ProvisioningError(Exception):
    """The operation did not go through; the message is written for a sales person.

    `level` (a `logging` level, as Django's messages use) and `summary()` say how the admin
    reports it, so each error decides that for itself.
    """

    level = logging.ERROR
    prefix = "{subject}: not sent. "

    def summary(self, subject: object) -> str:
        return self.prefix.format(subject=subject) + str(self)


class InvalidInput(ProvisioningError):
    """Local validation failed; nothing was sent. `errors` maps field names to messages."""

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.errors = errors or {}


class NotAllowed(ProvisioningError):
    """The object's state (or the renewal window) does not allow this; nothing was sent."""


class Busy(ProvisioningError):
    """Another request about the same object is on the wire right now; nothing was sent."""


class VendorRefused(ProvisioningError):
    """OneOffice refused; the message is its own words."""

    prefix = ""


class ConfigurationProblem(ProvisioningError):
    """The portal's OneOffice settings are wrong; an administrator must fix them."""


class StillPending(ProvisioningError):
    """The operation is not settled yet; it stays pending and is retried automatically."""

    level = logging.WARNING
    prefix = "Not sent yet. "


class OutcomeUnknown(StillPending):
    """OneOffice may or may not have applied the call; a retry with the same ids settles it."""

    prefix = "Outcome unknown. "


# Refusals that, on a retry after an unknown outcome, prove the earlier attempt landed.
# A duplicate on another column (the vendor's documented "users_email") says nothing about our id.
_ID_EXISTS = r"^(?!.*email)(?=.*(duplicate key|already exists))"
_SETTLES = {
    ProvisioningCall.Method.CREATE_CUSTOMER: re.compile(_ID_EXISTS, re.I | re.S),
    ProvisioningCall.Method.CREATE_FIRST_ORDER: re.compile(_ID_EXISTS, re.I | re.S),
    # The portal checked the window before the first attempt, so "too early" now means the
    # earlier attempt already moved the term on.
    ProvisioningCall.Method.CREATE_RENEWAL_ORDER: re.compile(
        _ID_EXISTS + r"|more than \d+ days|days left", re.I | re.S
    ),
    ProvisioningCall.Method.CANCEL_ORDER: re.compile(r"already cancel", re.I),
    ProvisioningCall.Method.SUSPEND_ORDER: re.compile(r"already suspend", re.I),
}

_clients: dict[tuple, oneoffice.OneOfficeClient] = {}


def client() -> oneoffice.OneOfficeClient:
    """The OneOffice client for the current settings, one pooled session per configuration."""
    config = (
        settings.ONEOFFICE_URL,
        settings.ONEOFFICE_API_KEY,
        settings.ONEOFFICE_CONNECT_TIMEOUT,
        settings.ONEOFFICE_TIMEOUT,
    )
    if config not in _clients:
        _clients[config] = oneoffice.OneOfficeClient(
            url=config[0], api_key=config[1], connect_timeout=config[2], read_timeout=config[3]
        )
    return _clients[config]


# Public operations -----------------------------------------------------------------------------


def customer_register(
    *, customer: Customer, by: AbstractBaseUser | None = None, attempt: int | None = None
) -> Customer:
    """Register the customer on OneOffice (`createCustomer`) under its `code`.

    Draft or failed customers are validated and sent; a pending one is re-sent unchanged.
    On success the customer is `registered` with what OneOffice returned; a refusal leaves it
    `failed` with OneOffice's words; an unknown outcome leaves it `pending`. `attempt` is for
    the retry task: the call is skipped unless it is still the attempt it was scheduled after.
    """
    if attempt is None and customer.is_editable:
        # Invalid values the caller holds are refused, not quietly replaced by the stored row.
        _validate(customer)
    with _leased(customer):
        retrying = _reload_and_check_state(customer, attempt, action=Customer.Action.REGISTER)
        if not retrying:
            _validate(customer)
        request = oneoffice.create_customer(
            customer_id=customer.code,
            name=customer.name,
            email=customer.admin_email,
            phone=customer.admin_phone,
            display_name=customer.admin_display_name,
        )
        call = _commit_attempt(customer, request, by=by, retrying=retrying)
        return _send(customer, call, request, on_ok=_registered, refused_status=_failed)


def order_place(
    *, order: Order, by: AbstractBaseUser | None = None, attempt: int | None = None
) -> Order:
    """Place a first order on OneOffice (`createFirstOrder`); its term starts the day it lands.

    Needs a registered customer. Draft or failed orders are validated and sent; a pending one is
    re-sent unchanged. Success makes it `active` with its term; a refusal leaves it `failed`.
    """
    if not order.is_first_order:
        raise NotAllowed(f"{order} is a renewal; only first orders are placed.")
    if attempt is None and order.is_editable:
        # Invalid values the caller holds are refused, not quietly replaced by the stored row.
        _validate(order)
    with _leased(order):
        retrying = _reload_and_check_state(order, attempt, action=Order.Action.PLACE)
        if not retrying:
            _validate(order)
            if order.customer.status != Customer.Status.REGISTERED:
                raise NotAllowed(
                    f"Customer {order.customer} is not registered on OneOffice yet "
                    f"(status: {order.customer.get_status_display()}); register it first."
                )
        request = oneoffice.create_first_order(
            customer_id=order.customer.code,
            order_id=order.number,
            product=order.product,
            licenses=order.licenses,
            duration=order.duration,
        )
        call = _commit_attempt(
            order, request, by=by, retrying=retrying, pending_action=Order.Action.PLACE
        )
        return _send(order, call, request, on_ok=_placed, refused_status=_failed)


def order_renew(
    *, order: Order, by: AbstractBaseUser | None = None, attempt: int | None = None
) -> Order:
    """Renew a subscription (`createRenewalOrder`); `order` is its first order.

    Returns the renewal order, a new row with its own generated id. Refused locally for
    cancelled subscriptions and while more than ONEOFFICE_RENEWAL_WINDOW_DAYS days are left.
    The renewed term keeps product, licenses and duration, and starts at the current term end,
    or on the day it lands if the subscription has lapsed. A pending renewal is re-sent with
    its own id. On success the subscription's `current_term_end` moves on and a suspended
    subscription is active again; a refusal leaves the renewal `failed`.
    """
    if not order.is_first_order:
        raise NotAllowed(f"{order} is a renewal; renew its first order {order.parent}.")
    with _leased(order):
        _reload(order)
        renewal = order.renewals.filter(status=Order.Status.PENDING).first()
        if renewal is not None:
            _check_attempt(renewal, attempt)
        else:
            if attempt is not None:
                raise NotAllowed(f"{order} has no renewal waiting for a retry.")
            _check_renewable(order)
            renewal = Order(
                number=new_id("O"),
                customer_id=order.customer_id,
                parent=order,
                product=order.product,
                licenses=order.licenses,
                duration=order.duration,
                created_by=by if by is not None and by.pk else None,
            )
            _validate(renewal)
        request = oneoffice.create_renewal_order(parent_id=order.number, order_id=renewal.number)
        try:
            call = _commit_attempt(
                renewal,
                request,
                by=by,
                retrying=renewal.pk is not None,
                pending_action=Order.Action.RENEW,
            )
        except IntegrityError:
            raise Busy(f"A renewal of {order} is already in progress.") from None
        return _send(renewal, call, request, on_ok=_renewed, refused_status=_failed)


def order_cancel(
    *, order: Order, by: AbstractBaseUser | None = None, attempt: int | None = None
) -> Order:
    """Cancel a subscription (`cancelOrder`); `order` is its first order.

    Active or suspended subscriptions can be cancelled, not while a renewal is unsettled.
    Success makes it `cancelled`; a refusal puts it back as it was.
    """
    return _change_subscription(
        order=order,
        by=by,
        attempt=attempt,
        action=Order.Action.CANCEL,
        build=oneoffice.cancel_order,
        done=Order.Status.CANCELLED,
    )


def order_suspend(
    *, order: Order, by: AbstractBaseUser | None = None, attempt: int | None = None
) -> Order:
    """Suspend an active subscription (`suspendOrder`); `order` is its first order.

    OneOffice has no resume call; a later renewal reactivates it. Success makes it
    `suspended`; a refusal puts it back as it was.
    """
    return _change_subscription(
        order=order,
        by=by,
        attempt=attempt,
        action=Order.Action.SUSPEND,
        build=oneoffice.suspend_order,
        done=Order.Status.SUSPENDED,
    )


def customer_retry(
    *, customer: Customer, by: AbstractBaseUser | None = None, attempt: int | None = None
) -> Customer:
    """Re-send the pending registration of a customer, with the same id."""
    if not customer.can_retry():
        raise NotAllowed(f"{customer} has nothing pending to retry.")
    return customer_register(customer=customer, by=by, attempt=attempt)


def order_retry(
    *, order: Order, by: AbstractBaseUser | None = None, attempt: int | None = None
) -> Order:
    """Re-send whatever is pending on this order (place, renew, cancel, suspend), same ids."""
    if not order.can_retry():
        raise NotAllowed(f"{order} has nothing pending to retry.")
    if not order.is_first_order:
        return order_renew(order=order.parent, by=by, attempt=attempt)
    operation = {
        Order.Action.PLACE: order_place,
        Order.Action.CANCEL: order_cancel,
        Order.Action.SUSPEND: order_suspend,
    }[Order.Action(order.pending_action)]
    return operation(order=order, by=by, attempt=attempt)


def order_permission_for(order: Order) -> str:
    """The permission codename a person needs to retry what is pending on `order`."""
    action = Order.Action.RENEW if not order.is_first_order else order.pending_action
    return f"{action}_order"


# The shared machinery --------------------------------------------------------------------------


def _lease_length() -> timedelta:
    # Longer than one call can take, so the lease never lapses under a live call.
    return timedelta(seconds=settings.ONEOFFICE_CONNECT_TIMEOUT + settings.ONEOFFICE_TIMEOUT + 30)


@contextmanager
def _leased(subject: Subject) -> Iterator[None]:
    """Hold the object's lease for the duration of one vendor call, or raise `Busy`."""
    model = type(subject)
    now = timezone.now()
    until = now + _lease_length()
    with transaction.atomic(durable=True):
        taken = (
            model.objects.filter(pk=subject.pk)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .update(lease_until=until)
        )
    if not taken:
        raise Busy(f"{subject} is being sent to OneOffice right now by another request.")
    try:
        yield
    finally:
        # Only our own lease: a reply trickling in past it may have let another process in.
        model.objects.filter(pk=subject.pk, lease_until=until).update(lease_until=None)


def _reload(subject: Subject) -> None:
    """Re-read the object under its lease, refusing one the caller changed without saving.

    The service sends what is stored, never what a caller holds in memory: quietly dropping
    an unsaved change would send something else than the caller saw.
    """
    if subject.pk is None:
        raise NotAllowed(f"{subject} is not saved yet; save it first. Nothing was sent.")
    changed = subject.unsaved_fields()
    if changed:
        names = ", ".join(str(subject._meta.get_field(name).verbose_name) for name in changed)
        raise NotAllowed(
            f"{subject} has unsaved changes ({names}); save them first. Nothing was sent."
        )
    subject.refresh_from_db()
    subject.remember_stored()


def _reload_and_check_state(subject: Subject, attempt: int | None, *, action: str) -> bool:
    """Under the lease: re-read the object and check its state allows `action`.

    True when this continues the pending operation (a retry), False when it starts it.
    """
    _reload(subject)
    # Customers have one operation; orders say which one is pending.
    pending = getattr(subject, "pending_action", action)
    if subject.can_retry() and pending == action:
        _check_attempt(subject, attempt)
        return True
    if attempt is not None:
        raise NotAllowed(f"{subject} has nothing pending to retry.")
    if not subject.can(action):
        raise NotAllowed(
            f"{subject} is {_describe_state(subject)}; that does not allow this action."
        )
    return False


def _check_attempt(subject: Subject, attempt: int | None) -> None:
    # A retry task carries the attempt it was scheduled after; a second delivery of it, or a
    # task overtaken by a manual retry, finds the count moved on and sends nothing.
    if attempt is not None and subject.attempts != attempt:
        raise NotAllowed(f"{subject} was already retried (attempt {subject.attempts}).")


def _describe_state(subject: Subject) -> str:
    state = subject.get_status_display()
    if getattr(subject, "pending_action", ""):
        state += f" ({subject.get_pending_action_display()} not settled)"
    return state


def _validate(subject: Subject) -> None:
    """Model validation, turned into one message that names each field."""
    try:
        subject.full_clean()
    except ValidationError as exc:
        errors = exc.message_dict
        parts = []
        for name, messages in errors.items():
            label = subject._meta.get_field(name).verbose_name if name != "__all__" else "Error"
            parts.append(f"{str(label).capitalize()}: {' '.join(messages)}")
        raise InvalidInput("Not sent. " + " ".join(parts), errors) from None


def _check_renewable(order: Order) -> None:
    if order.status == Order.Status.CANCELLED:
        raise NotAllowed(f"{order} is cancelled; cancelled subscriptions cannot be renewed.")
    if not order.can(Order.Action.RENEW):
        raise NotAllowed(
            f"{order} is {_describe_state(order)}; only active or suspended subscriptions "
            "can be renewed."
        )
    window = settings.ONEOFFICE_RENEWAL_WINDOW_DAYS
    left = terms.days_left(order.current_term_end, timezone.localdate())
    if left > window:
        opens = order.current_term_end - timedelta(days=window)
        raise NotAllowed(
            f"{order} has {left} days left on its term (ends {order.current_term_end:%d %b %Y}); "
            f"OneOffice renews only in the last {window} days, from {opens:%d %b %Y}."
        )


def _change_subscription(
    *,
    order: Order,
    by: AbstractBaseUser | None,
    attempt: int | None,
    action: str,
    build: Callable[..., oneoffice.Request],
    done: str,
) -> Order:
    if not order.is_first_order:
        raise NotAllowed(f"{order} is a renewal; {action} its first order {order.parent}.")
    with _leased(order):
        retrying = _reload_and_check_state(order, attempt, action=action)
        if not retrying and order.renewals.filter(status=Order.Status.PENDING).exists():
            raise NotAllowed(
                f"A renewal of {order} is not settled yet; retry it before you {action}."
            )
        request = build(order_id=order.number)
        call = _commit_attempt(order, request, by=by, retrying=retrying, pending_action=action)

        def on_ok(subject: Order, reply: oneoffice.Reply | None, applied_on: date) -> list[str]:
            subject.status = done
            return ["status"]

        return _send(order, call, request, on_ok=on_ok, refused_status=_status_before)


def _commit_attempt(
    subject: Subject,
    request: oneoffice.Request,
    *,
    by: AbstractBaseUser | None,
    retrying: bool,
    pending_action: str = "",
) -> ProvisioningCall:
    """First transaction: the pending state and the call-log row, committed before sending."""
    with transaction.atomic(durable=True):
        if retrying:
            status_before = _settle_stale_calls(subject, request.method)
        else:
            status_before = subject.status
            subject.attempts = 0
            subject.first_sent_at = None
        subject.attempts += 1
        subject.status = subject.Status.PENDING
        fields = ["status", "attempts", "first_sent_at", "updated_at"]
        if isinstance(subject, Order):
            subject.pending_action = pending_action or subject.pending_action
            fields.append("pending_action")
        if subject.pk is None:
            subject.save()
        else:
            subject.save(update_fields=fields)
        return ProvisioningCall.objects.create(
            method=request.method,
            params=request.params,
            customer=subject if isinstance(subject, Customer) else subject.customer,
            order=subject if isinstance(subject, Order) else None,
            triggered_by=by if by is not None and by.pk else None,
            attempt=subject.attempts,
            status_before=status_before,
        )


def _calls_of(subject: Subject):
    if isinstance(subject, Customer):
        return ProvisioningCall.objects.filter(customer=subject, order__isnull=True)
    return ProvisioningCall.objects.filter(order=subject)


def _settle_stale_calls(subject: Subject, method: str) -> str:
    """On a retry: mark calls a dead worker left in flight as unknown; return the state before
    the operation began."""
    calls = _calls_of(subject).filter(method=method)
    for stale in calls.filter(outcome=Outcome.IN_FLIGHT):
        stale.outcome = Outcome.UNKNOWN
        stale.error = "The worker stopped before the outcome was recorded."
        stale.save(update_fields=["outcome", "error"])
        if subject.first_sent_at is None or stale.started_at < subject.first_sent_at:
            subject.first_sent_at = stale.started_at
    first = calls.filter(attempt=1).order_by("-started_at").first()
    return first.status_before if first else ""


def _send(
    subject: Subject,
    call: ProvisioningCall,
    request: oneoffice.Request,
    *,
    on_ok: Callable[[Subject, oneoffice.Reply | None, date], list[str]],
    refused_status: Callable[[Subject, ProvisioningCall], str],
):
    """Send outside any transaction, then record the outcome (second transaction)."""
    try:
        with inflight.slot():
            reply = client().send(request)
    except oneoffice.VendorError as exc:
        return _record_failure(subject, call, exc, on_ok=on_ok, refused_status=refused_status)
    _record_done(subject, call, reply, on_ok=on_ok)
    return subject


def _close_call(call: ProvisioningCall, outcome: str, exc_or_reply, error: str = "") -> None:
    call.outcome = outcome
    call.finished_at = timezone.now()
    call.duration_ms = exc_or_reply.duration_ms
    call.http_status = exc_or_reply.status
    call.response_body = exc_or_reply.body
    call.error = error
    call.save()


def _record_done(
    subject: Subject,
    call: ProvisioningCall,
    reply: oneoffice.Reply | oneoffice.VendorError,
    *,
    on_ok: Callable[[Subject, oneoffice.Reply | None, date], list[str]],
    settled_earlier: bool = False,
) -> None:
    with transaction.atomic(durable=True):
        if settled_earlier:
            call.settled_earlier = True
            _close_call(call, Outcome.OK, reply, error=f"Settled: {reply.message}")
        else:
            _close_call(call, Outcome.OK, reply)
        applied_at = subject.first_sent_at or call.started_at
        fields = on_ok(subject, None if settled_earlier else reply, timezone.localdate(applied_at))
        subject.last_error = ""
        subject.first_sent_at = None
        fields += ["last_error", "first_sent_at", "updated_at"]
        if isinstance(subject, Order):
            subject.pending_action = ""
            fields.append("pending_action")
        subject.save(update_fields=fields)
    logger.info("%s %s: done (attempt %s)", call.method, subject, call.attempt)


class Settle:
    """What becomes of the object after a failed call (see `Decision`)."""

    DONE = "done"  # the refusal proves an earlier attempt landed
    REFUSED = "refused"  # final: the operation's refused state
    RESTORE = "restore"  # final: nothing can have landed; back to the state before
    PENDING = "pending"  # unsettled: stays pending


@dataclass(frozen=True)
class Decision:
    """How one failed call is recorded: the call's outcome, the object's fate, whether a retry
    is scheduled, and the error the caller gets (None when the operation is done)."""

    outcome: str
    settle: str
    retry: bool
    error: type[ProvisioningError] | None


def classify(*, method: str, exc: oneoffice.VendorError, may_have_landed: bool) -> Decision:
    """The decision for a failed call of `method`, given whether an earlier attempt at the same
    operation may have reached OneOffice. Pure: no database, no clock."""
    if isinstance(exc, oneoffice.VendorRefusedError):
        if may_have_landed and _SETTLES[method].search(exc.message):
            return Decision(Outcome.OK, Settle.DONE, retry=False, error=None)
        return Decision(Outcome.REFUSED, Settle.REFUSED, retry=False, error=VendorRefused)
    if isinstance(exc, oneoffice.VendorConfigError):
        # A person fixes the settings, then retries by hand; an earlier attempt that may have
        # landed keeps the object pending until then.
        settle = Settle.PENDING if may_have_landed else Settle.RESTORE
        return Decision(Outcome.CONFIG_ERROR, settle, retry=False, error=ConfigurationProblem)
    if isinstance(exc, oneoffice.VendorNotSentError):
        error = OutcomeUnknown if may_have_landed else StillPending
        return Decision(Outcome.NOT_SENT, Settle.PENDING, retry=True, error=error)
    return Decision(Outcome.UNKNOWN, Settle.PENDING, retry=True, error=OutcomeUnknown)


def _record_failure(
    subject: Subject,
    call: ProvisioningCall,
    exc: oneoffice.VendorError,
    *,
    on_ok: Callable[[Subject, oneoffice.Reply | None, date], list[str]],
    refused_status: Callable[[Subject, ProvisioningCall], str],
):
    """Second transaction after a failed call: record what `classify` decided, then raise."""
    may_have_landed = subject.first_sent_at is not None
    decision = classify(method=call.method, exc=exc, may_have_landed=may_have_landed)
    if decision.settle == Settle.DONE:
        _record_done(subject, call, exc, on_ok=on_ok, settled_earlier=True)
        return subject

    with transaction.atomic(durable=True):
        _close_call(call, decision.outcome, exc, error=exc.message)
        subject.last_error = exc.message
        fields = ["last_error", "updated_at"]
        if decision.settle in (Settle.REFUSED, Settle.RESTORE):
            subject.status = (
                refused_status(subject, call)
                if decision.settle == Settle.REFUSED
                else _status_before(subject, call)
            )
            subject.first_sent_at = None
            fields += ["status", "first_sent_at"]
            if isinstance(subject, Order):
                subject.pending_action = ""
                fields.append("pending_action")
        elif decision.outcome == Outcome.UNKNOWN and subject.first_sent_at is None:
            subject.first_sent_at = call.started_at
            fields.append("first_sent_at")
        subject.save(update_fields=fields)
        if decision.retry:
            retries.plan_retry(subject, call)
    logger.warning(
        "%s %s: %s (attempt %s): %s", call.method, subject, decision.outcome, call.attempt, exc
    )
    raise decision.error(_failure_message(decision, subject, exc, may_have_landed))


def _failure_message(
    decision: Decision, subject: Subject, exc: oneoffice.VendorError, may_have_landed: bool
) -> str:
    if decision.error is VendorRefused:
        return f"OneOffice refused {subject}: {exc.message}"
    if decision.error is ConfigurationProblem:
        unsettled = " The earlier attempt is still unsettled." if may_have_landed else ""
        return f"Not done: {exc.message}{unsettled}"
    return f"{subject}: {exc.message} {_retry_note(subject)}"


def _retry_note(subject: Subject) -> str:
    if subject.attempts < settings.ONEOFFICE_RETRY_MAX_ATTEMPTS:
        return "It stays pending and will be retried automatically."
    return "Automatic retries are used up: it needs attention (use Retry)."


# What each operation records on success or refusal --------------------------------------------


def _registered(customer: Customer, reply: oneoffice.Reply | None, applied_on: date) -> list[str]:
    customer.status = Customer.Status.REGISTERED
    if reply is None:
        return ["status"]
    remote = oneoffice.read_customer(reply.data)
    customer.oneoffice_id = remote.vendor_id
    customer.partner = remote.partner
    customer.remote_created_at = remote.created_at
    customer.is_active = remote.is_active
    customer.onboarding_url = remote.onboarding_url
    return ["status", "oneoffice_id", "partner", "remote_created_at", "is_active", "onboarding_url"]


def _placed(order: Order, reply: oneoffice.Reply | None, applied_on: date) -> list[str]:
    order.status = Order.Status.ACTIVE
    order.term_start = applied_on
    order.term_end = terms.term_end(applied_on, order.duration)
    order.current_term_end = order.term_end
    return ["status", "term_start", "term_end", "current_term_end"]


def _renewed(renewal: Order, reply: oneoffice.Reply | None, applied_on: date) -> list[str]:
    subscription = Order.objects.select_for_update().get(pk=renewal.parent_id)
    renewal.status = Order.Status.ACTIVE
    renewal.term_start = terms.renewal_start(subscription.current_term_end, applied_on)
    renewal.term_end = terms.term_end(renewal.term_start, renewal.duration)
    subscription.current_term_end = renewal.term_end
    if subscription.status == Order.Status.SUSPENDED:
        # OneOffice reactivates a suspended subscription that is renewed.
        subscription.status = Order.Status.ACTIVE
    subscription.save(update_fields=["current_term_end", "status", "updated_at"])
    renewal.parent = subscription
    return ["status", "term_start", "term_end"]


def _failed(subject: Subject, call: ProvisioningCall) -> str:
    return subject.Status.FAILED


def _status_before(subject: Subject, call: ProvisioningCall) -> str:
    if isinstance(subject, Order) and not subject.is_first_order:
        return Order.Status.FAILED
    return call.status_before or subject.Status.DRAFT
