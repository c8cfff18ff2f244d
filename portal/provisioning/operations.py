"""The public operations, and what each records on success."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date

from django.contrib.auth.models import AnonymousUser, User
from django.db import IntegrityError, transaction
from django.db.models import Q

from customers.models import Customer
from orders.models import Order, SubscriptionChange
from orders.money.pricing import current_value_of, set_price
from orders.renewals import terms
from portal.core.ids import new_id
from portal.models import Provisioned, ProvisioningCall
from portal.oneoffice import api
from portal.provisioning import batches
from portal.provisioning.errors import Busy, NotAllowed
from portal.provisioning.lease import (
    check_attempt,
    describe_state,
    leased,
    reload,
    reload_and_check_state,
    save_releasing_lease,
)
from portal.provisioning.lifecycle import (
    calls_of,
    commit_attempt,
    failed_status,
    save_outcome,
    send,
    status_before,
    validate,
)

logger = logging.getLogger("portal.provisioning")

Outcome = ProvisioningCall.Outcome
Subject = Customer | Order


# Public operations -----------------------------------------------------------------------------


def customer_register(
    *, customer: Customer, by: User | AnonymousUser | None = None, attempt: int | None = None
) -> Customer:
    """Register the customer on OneOffice (`createCustomer`) under its `code`.

    Draft or failed customers are validated and sent; a pending one is re-sent unchanged.
    On success the customer is `registered` with what OneOffice returned; a refusal leaves it
    `failed` with OneOffice's words; an unknown outcome leaves it `pending`. `attempt` is for
    the retry task: the call is skipped unless it is still the attempt it was scheduled after.
    What is stored is sent: a `customer` holding unsaved changes to it is refused (`NotAllowed`),
    as with every operation here.
    """
    if attempt is None and customer.is_editable and customer.unsaved_fields():
        # Invalid values the caller holds are refused, not quietly replaced by the stored row;
        # what is stored is checked under the lease.
        validate(customer)
    with leased(customer):
        retrying = reload_and_check_state(customer, attempt, action=Customer.Action.REGISTER)
        if not retrying:
            validate(customer)
        request = api.create_customer(
            customer_id=customer.code,
            name=customer.name,
            email=customer.admin_email,
            phone=customer.admin_phone,
            display_name=customer.admin_display_name,
        )
        call = commit_attempt(customer, request, by=by, retrying=retrying)
        return send(customer, call, request, on_ok=_registered, refused_status=failed_status)


def order_place(
    *, order: Order, by: User | AnonymousUser | None = None, attempt: int | None = None
) -> Order:
    """Place a first order on OneOffice (`createFirstOrder`); its term starts the day it lands.

    Needs a registered customer. Draft or failed orders are validated and sent; a pending one is
    re-sent unchanged. Success makes it `active` with its term; a refusal leaves it `failed`.
    """
    if not order.is_first_order:
        raise NotAllowed(f"{order} is a renewal; only first orders are placed.")
    if attempt is None and order.is_editable and order.unsaved_fields():
        # Invalid values the caller holds are refused, not quietly replaced by the stored row;
        # what is stored is checked under the lease.
        validate(order)
    with leased(order):
        retrying = reload_and_check_state(order, attempt, action=Order.Action.PLACE)
        if not retrying:
            validate(order)
            if order.customer.status != Customer.Status.REGISTERED:
                raise NotAllowed(
                    f"Customer {order.customer} is not registered on OneOffice yet "
                    f"(status: {order.customer.get_status_display()}); register it first."
                )
        request = api.create_first_order(
            customer_id=order.customer.code,
            order_id=order.number,
            product=order.product,
            licenses=order.licenses,
            duration=order.duration,
        )
        call = commit_attempt(
            order, request, by=by, retrying=retrying, pending_action=Order.Action.PLACE
        )
        return send(order, call, request, on_ok=_placed, refused_status=failed_status)


def order_renew(
    *, order: Order, by: User | AnonymousUser | None = None, attempt: int | None = None
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
    with leased(order):
        # The subscription and its pending renewal, if any, in one read.
        pending = reload(order, also=Q(parent_id=order.pk, status=Order.Status.PENDING))
        renewal = pending[0] if pending else None
        if renewal is not None:
            renewal.parent = order
            check_attempt(renewal, attempt)
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
                created_by=by if isinstance(by, User) and by.pk else None,
            )
            validate(renewal, built_from_stored=True)
        request = api.create_renewal_order(parent_id=order.number, order_id=renewal.number)
        try:
            call = commit_attempt(
                renewal,
                request,
                by=by,
                retrying=renewal.pk is not None,
                pending_action=Order.Action.RENEW,
            )
        except IntegrityError:
            raise Busy(f"A renewal of {order} is already in progress.") from None
        return send(renewal, call, request, on_ok=_renewed, refused_status=failed_status)


def order_cancel(
    *, order: Order, by: User | AnonymousUser | None = None, attempt: int | None = None
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
        build=api.cancel_order,
        done=Order.Status.CANCELLED,
    )


def order_suspend(
    *, order: Order, by: User | AnonymousUser | None = None, attempt: int | None = None
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
        build=api.suspend_order,
        done=Order.Status.SUSPENDED,
    )


def customer_retry(
    *, customer: Customer, by: User | AnonymousUser | None = None, attempt: int | None = None
) -> Customer:
    """Re-send the pending registration of a customer, with the same id."""
    if not customer.can_retry():
        raise NotAllowed(f"{customer} has nothing pending to retry.")
    return customer_register(customer=customer, by=by, attempt=attempt)


def order_retry(
    *, order: Order, by: User | AnonymousUser | None = None, attempt: int | None = None
) -> Order:
    """Re-send whatever is pending on this order (place, renew, cancel, suspend), same ids."""
    if not order.can_retry():
        raise NotAllowed(f"{order} has nothing pending to retry.")
    if not order.is_first_order:
        return order_renew(order=_subscription_of(order), by=by, attempt=attempt)
    operation = {
        Order.Action.PLACE: order_place,
        Order.Action.CANCEL: order_cancel,
        Order.Action.SUSPEND: order_suspend,
    }[Order.Action(order.pending_action)]
    return operation(order=order, by=by, attempt=attempt)


def order_needs_decision(order: Order) -> bool:
    """Whether `order` is a pending renewal whose latest call needs a person's decision."""
    if order.is_first_order or not order.can_retry():
        return False
    latest = calls_of(order).order_by("-started_at", "-id").values("outcome").first()
    return latest is not None and latest["outcome"] == Outcome.AMBIGUOUS


def order_resolve_renewal(
    *, renewal: Order, renewed: bool, by: User | AnonymousUser | None = None
) -> Order:
    """A person's decision on a renewal whose retry OneOffice answered ambiguously.

    `renewed=True` records it as done (as a renewal that landed with its first attempt: the
    subscription's term end moves on); `renewed=False` marks it `failed`, so the subscription
    can be renewed again. Sends nothing. Refused unless the renewal awaits a decision.
    """
    if renewal.is_first_order:
        raise NotAllowed(f"{renewal} is not a renewal.")
    with leased(_subscription_of(renewal)):
        reload(renewal)
        call = calls_of(renewal).order_by("-started_at", "-id").first()
        if not renewal.can_retry() or call is None or call.outcome != Outcome.AMBIGUOUS:
            raise NotAllowed(f"{renewal} has no renewal awaiting a decision.")
        who = by.get_username() if by is not None and by.pk else "the system"
        decided = "renewed" if renewed else "not renewed"
        with transaction.atomic(durable=True):
            call.error = f"{call.error} Resolved by {who}: {decided}.".strip()
            call.save(update_fields=["error"])
            if renewed:
                applied_at = renewal.first_sent_at or call.started_at
                fields = _renewed(
                    renewal,
                    None,
                    terms.vendor_date(applied_at),
                    call,
                    by=by if isinstance(by, User) else None,
                    note=f"Marked as renewed by {who}: OneOffice's answer did not say.",
                )
                fields += renewal.end_attempts()
            else:
                fields = renewal.end_attempts(
                    Order.Status.FAILED,
                    error=f"Marked as not renewed by {who}: {call.error}",
                )
            renewal.save(update_fields=fields)
    logger.info("createRenewalOrder %s: resolved as %s by %s", renewal, decided, who)
    return renewal


def order_bring_in_line(
    *,
    order: Order,
    status: str,
    by: User | AnonymousUser | None,
    call: ProvisioningCall | None = None,
    evidence: str = "",
) -> Order:
    """Record that OneOffice holds the subscription `order` as `status`, on proof: a call whose
    refusal proved it (`call`, as the service noted it on the subscription) or another record
    of what OneOffice holds (`evidence`, such as a line of its statement). Sends nothing.

    The status changes, and a change "brought in line with OneOffice" records the proof, who
    accepted it and when. Refused (`NotAllowed`) without a proof, when `call` is not the one
    the subscription's latest proof came from or proved another status, while an operation on
    it is unsettled, and when the record already agrees.
    """
    if not order.is_first_order:
        raise NotAllowed(f"{order} is a renewal; bring its first order {order.parent} in line.")
    if call is None and not evidence.strip():
        raise NotAllowed(f"{order}: say what shows that OneOffice holds it as {status}.")
    with leased(order):
        reload(order)
        refusal = order_bring_in_line_refusal(order, status=status, call=call)
        if refusal:
            raise NotAllowed(refusal)
        who = by.get_username() if by is not None and by.pk else "the system"
        if call is not None:
            grounds = (
                f"OneOffice answered {call.method} on {call.started_at:%d %b %Y %H:%M} UTC: "
                f'"{call.error}"'
            )
        else:
            grounds = evidence.strip()
        with transaction.atomic(durable=True):
            fields = order.move_to(
                status,
                kind=SubscriptionChange.Kind.ALIGNED,
                # It held by the time OneOffice said so; nothing tells how long before.
                effective_on=terms.vendor_date(call.started_at if call else None),
                call=call,
                by=by if isinstance(by, User) else None,
                note=f"{grounds}. Accepted by {who}; nothing was sent.",
            )
            save_outcome(order, fields)
    logger.info("%s brought in line with OneOffice: %s, by %s", order, status, who)
    return order


def order_bring_in_line_refusal(
    order: Order, *, status: str | None = None, call: ProvisioningCall | None = None
) -> str:
    """Why `order_bring_in_line` refuses to record `order` as `status` on the proof of `call`
    (by default, what the subscription's latest proof says); "" when it would."""
    if status is None:
        status, call = order.oneoffice_status, order.oneoffice_status_call
        if not status:
            return f"{order}: no answer from OneOffice proves another status."
    if call is not None and (
        order.oneoffice_status_call_id != call.pk or order.oneoffice_status != status
    ):
        return (
            f"{order}: OneOffice's latest answer does not prove it is {status}; nothing "
            "was changed. Open its page to see what OneOffice said last."
        )
    if order.status == status:
        return f"{order} is already {status}; nothing to bring in line."
    if not order.can(Order.Action.ALIGN):
        return f"{order} is {describe_state(order)}; settle that first, then bring it in line."
    if order.renewals.filter(status=Order.Status.PENDING).exists():
        return f"A renewal of {order} is not settled yet; settle it first."
    return ""


def order_permission_for(order: Order) -> str:
    """The permission codename a person needs to retry what is pending on `order`."""
    action = Order.Action.RENEW if not order.is_first_order else order.pending_action
    return f"{action}_order"


def _subscription_of(renewal: Order) -> Order:
    """The first order a renewal belongs to."""
    if renewal.parent is None:
        raise NotAllowed(f"{renewal} is not a renewal; it has no first order.")
    return renewal.parent


def _term_end_of(subscription: Order) -> date:
    """The current term end of an active or suspended subscription."""
    if subscription.current_term_end is None:
        raise NotAllowed(f"{subscription} has no term end; it has not been placed.")
    return subscription.current_term_end


def order_renew_refusal(order: Order, *, today: date | None = None) -> str:
    """Why the portal refuses to renew the subscription `order` now, sending nothing; "" when
    it would send the renewal. The check `order_renew` runs before sending, and what the
    screens ask before they offer Renew. `today` is OneOffice's (by default, now)."""
    if not order.is_first_order:
        return f"{order} is a renewal; renew its first order {order.parent}."
    if order.status == Order.Status.CANCELLED:
        return f"{order} is cancelled; cancelled subscriptions cannot be renewed."
    if not order.can(Order.Action.RENEW):
        return (
            f"{order} is {describe_state(order)}; only active or suspended subscriptions "
            "can be renewed."
        )
    if order.current_term_end is None:
        return f"{order} has no term end; it has not been placed."
    today, last = terms.renewal_window(today=today)
    term_end = order.current_term_end
    if term_end > last:
        window = (last - today).days
        left = terms.days_left(term_end, today)
        opens = terms.renewal_opens(term_end)
        return (
            f"{order} has {left} days left on its term (ends {term_end:%d %b %Y}); "
            f"OneOffice renews only in the last {window} days, from {opens:%d %b %Y}."
        )
    return ""


def _check_renewable(order: Order) -> None:
    refusal = order_renew_refusal(order)
    if refusal:
        raise NotAllowed(refusal)


def _change_subscription(
    *,
    order: Order,
    by: User | AnonymousUser | None,
    attempt: int | None,
    action: str,
    build: Callable[..., api.Request],
    done: str,
) -> Order:
    if not order.is_first_order:
        raise NotAllowed(f"{order} is a renewal; {action} its first order {order.parent}.")
    with leased(order):
        retrying = reload_and_check_state(order, attempt, action=action)
        if not retrying and order.renewals.filter(status=Order.Status.PENDING).exists():
            raise NotAllowed(
                f"A renewal of {order} is not settled yet; retry it before you {action}."
            )
        request = build(order_id=order.number)
        call = commit_attempt(order, request, by=by, retrying=retrying, pending_action=action)

        def on_ok(
            subject: Order, reply: api.Reply | None, applied_on: date, call: ProvisioningCall
        ) -> list[str]:
            return subject.move_to(
                done,
                kind=done,
                status_before=status_before(subject, call),
                effective_on=applied_on,
                call=call,
            )

        return send(order, call, request, on_ok=on_ok, refused_status=status_before)


# What each operation records on success or refusal --------------------------------------------


def _registered(
    customer: Customer, reply: api.Reply | None, applied_on: date, call: ProvisioningCall
) -> list[str]:
    if reply is None:
        return customer.mark_registered(None)
    remote = api.read_customer(reply.data)
    return customer.mark_registered(
        {
            "oneoffice_id": remote.vendor_id,
            "partner": remote.partner,
            "remote_created_at": remote.created_at,
            "is_active": remote.is_active,
            "onboarding_url": remote.onboarding_url,
        }
    )


def _placed(
    order: Order, reply: api.Reply | None, applied_on: date, call: ProvisioningCall
) -> list[str]:
    before = status_before(order, call)
    confirmed = order.confirm_term(applied_on)
    # Saved with the outcome, in the same UPDATE.
    priced = set_price(order, on=applied_on)
    moved = order.move_to(
        Order.Status.ACTIVE,
        kind=SubscriptionChange.Kind.PLACED,
        status_before=before,
        effective_on=applied_on,
        call=call,
    )
    return [*confirmed, *moved, *priced]


def _renewed(
    renewal: Order,
    reply: api.Reply | None,
    applied_on: date,
    call: ProvisioningCall,
    *,
    by: User | AnonymousUser | None = None,
    note: str = "",
) -> list[str]:
    # The subscription as read under the lease this process holds: nobody else changes its
    # term or status meanwhile, so its UPDATE, conditional on the lease, also frees it.
    subscription = renewal.parent
    if subscription is None:
        raise NotAllowed(f"{renewal} is not a renewal; it has no first order.")
    before = subscription.status
    fields, subscription_fields = _renew_onto(renewal, subscription, applied_on)
    held = subscription.lease_until is not None
    if not held or not save_releasing_lease(subscription, subscription_fields):
        # Not under this process's lease (it lapsed under a stalled call): read the row again,
        # locked, so what another process did meanwhile is built on, not overwritten.
        subscription = Order.objects.select_for_update().get(pk=subscription.pk)
        before = subscription.status
        fields, subscription_fields = _renew_onto(renewal, subscription, applied_on)
        subscription.save(update_fields=subscription_fields)
    subscription.record_change(
        SubscriptionChange.Kind.RENEWED,
        status_before=before,
        effective_on=applied_on,
        call=call,
        by=by,
        renewal=renewal,
        note=note,
    )
    return fields


def _renew_onto(
    renewal: Order, subscription: Order, applied_on: date
) -> tuple[list[str], list[str]]:
    """Set the renewed term, priced, on `renewal` and on its `subscription`; return the fields
    each must save."""
    start = terms.renewal_start(_term_end_of(subscription), applied_on)
    confirmed = renewal.confirm_term(start)
    renewed = subscription.extend_to(terms.term_end(start, renewal.duration))
    renewal.parent = subscription
    priced = set_price(renewal, on=start)
    return (
        [*confirmed, *priced],
        [*renewed, *current_value_of(renewal), "updated_at"],
    )


def register_operations() -> None:
    """Offer each operation here to the admin's buttons, small selections and batches alike
    (`batches.OPERATIONS`), with the word for it done and the OneOffice method it calls."""

    def customer(run: Callable[..., Customer]) -> Callable[..., Customer]:
        return lambda obj, by: run(customer=obj, by=by)

    def order(run: Callable[..., Order]) -> Callable[..., Order]:
        return lambda obj, by: run(order=obj, by=by)

    def resolve(renewed: bool) -> Callable[..., Order]:
        return lambda obj, by: order_resolve_renewal(renewal=obj, renewed=renewed, by=by)

    def align(obj: Order, by: User | AnonymousUser | None) -> Order:
        # What the subscription's latest proof says, as the confirmation showed it.
        return order_bring_in_line(
            order=obj, status=obj.oneoffice_status, by=by, call=obj.oneoffice_status_call
        )

    Method = api.Method
    table: dict[str, tuple[type[Customer] | type[Order], Callable[..., Provisioned], str, str]] = {
        "register": (Customer, customer(customer_register), "registered", Method.CREATE_CUSTOMER),
        "place": (Order, order(order_place), "placed", Method.CREATE_FIRST_ORDER),
        "renew": (Order, order(order_renew), "renewed", Method.CREATE_RENEWAL_ORDER),
        "suspend": (Order, order(order_suspend), "suspended", Method.SUSPEND_ORDER),
        "cancel": (Order, order(order_cancel), "cancelled", Method.CANCEL_ORDER),
        "mark_renewed": (Order, resolve(True), "renewed", ""),
        "mark_not_renewed": (Order, resolve(False), "failed", ""),
        "align": (Order, align, "brought in line with OneOffice", ""),
    }
    for action, (model, run, done, method) in table.items():
        batches.register(action, batches.Operation(model, run, done, method))
    batches.register("retry", batches.Operation(Customer, customer(customer_retry), "retried"))
    # A renewal's retry runs on its subscription, its parent.
    batches.register(
        "retry", batches.Operation(Order, order(order_retry), "retried", related=("parent",))
    )
