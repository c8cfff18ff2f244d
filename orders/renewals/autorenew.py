"""Automatic renewal of the subscriptions sales marked auto-renew, by a daily job.

The job claims each due subscription's term once (an `AutoRenewal` row, unique per
subscription and term end, written with the batch in one transaction) and hands them all to
one batch, which renews each through `order_renew` as a click on Renew would. A suspended
subscription is skipped: suspended means someone stopped it, and a renewal would reactivate it
on OneOffice. When the batch ends, account managers and managers get one short email: what
was renewed, what was skipped, what was renewed by hand meanwhile, and what was not renewed
and why. A subscription that was not renewed stays due: people renew it by hand.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date

from django.conf import settings
from django.core.mail import EmailMessage
from django.db.models import Exists, OuterRef
from django.urls import reverse

from orders.models import AutoRenewal, Order
from orders.renewals.selectors import DUE, renewal_state_q, term_end_of
from portal import provisioning
from portal.core.people import inbox
from portal.models import Batch, BatchItem, ProvisioningCall
from portal.provisioning import batches
from portal.provisioning.notifications import admin_url

logger = logging.getLogger(__name__)

JOB = "auto-renewal"


def auto_renew_days() -> int:
    """AUTO_RENEW_DAYS_BEFORE_END, clamped to the renewal window: OneOffice refuses earlier."""
    return max(0, min(settings.AUTO_RENEW_DAYS_BEFORE_END, settings.ONEOFFICE_RENEWAL_WINDOW_DAYS))


def auto_renew_candidates(*, today: date | None = None):
    """Auto-renew subscriptions whose term ends within `auto_renew_days()` (today on
    OneOffice's calendar, as the renewal window counts) and that are not claimed for that term
    yet, nor waiting on a renewal already under way. Suspended ones are among them: the job
    claims their term to skip it, and says so once."""
    claimed = AutoRenewal.objects.filter(
        subscription=OuterRef("pk"), term_end=OuterRef("current_term_end")
    )
    pending = Order.objects.filter(parent=OuterRef("pk"), status=Order.Status.PENDING)
    return (
        Order.objects.filter(renewal_state_q(DUE, today=today, days=auto_renew_days()))
        .filter(auto_renew=True)
        .exclude(Exists(claimed))
        .exclude(Exists(pending))
        .select_related("customer")
        .order_by("current_term_end", "pk")
    )


def auto_renew_due(*, today: date | None = None) -> Batch | None:
    """Start one batch renewing every auto-renew subscription due for it; None when none is.

    Each term is claimed once, whatever happens (a second run, a second cluster, a crash):
    the claims and the batch commit together, and a term already claimed is left out. Does
    nothing when AUTO_RENEW_ENABLED is off.
    """
    if not settings.AUTO_RENEW_ENABLED:
        return None
    if settings.AUTO_RENEW_DAYS_BEFORE_END > settings.ONEOFFICE_RENEWAL_WINDOW_DAYS:
        logger.warning(
            "AUTO_RENEW_DAYS_BEFORE_END (%s) is more than the renewal window (%s days); "
            "renewing %s days before the end",
            settings.AUTO_RENEW_DAYS_BEFORE_END,
            settings.ONEOFFICE_RENEWAL_WINDOW_DAYS,
            auto_renew_days(),
        )
    candidates = list(auto_renew_candidates(today=today))
    if not candidates:
        return None

    skipped = {order.pk: _skip_reason(order) for order in candidates if _stopped(order)}

    def claim(batch: Batch, objects: list[Order]) -> list[Order]:
        AutoRenewal.objects.bulk_create(
            [
                AutoRenewal(subscription=order, term_end=term_end_of(order), batch=batch)
                for order in objects
            ],
            ignore_conflicts=True,
        )
        mine = set(AutoRenewal.objects.filter(batch=batch).values_list("subscription", flat=True))
        return [order for order in objects if order.pk in mine]

    return batches.batch_start(
        kind=Batch.Kind.ORDER,
        action="auto-renew",
        label="Auto-renewal",
        objects=candidates,
        job=JOB,
        rejected=skipped,
        claim=claim,
    )


def _stopped(order: Order) -> bool:
    # Suspended means someone stopped it: renewing would reactivate it on OneOffice.
    return order.status == Order.Status.SUSPENDED


def _skip_reason(order: Order) -> str:
    return (
        f"{order}: suspended, so not renewed automatically (someone stopped it; a renewal "
        "would reactivate it). Renew it by hand to bring it back."
    )


def auto_renew_one(*, subscription: Order) -> Order:
    """Renew `subscription` for the term its claim names (`order_renew`), and nothing else.

    Refused, with nothing sent, when the term moved on since the claim (someone renewed it
    by hand meanwhile): the job renews a term once, never the next one.
    """
    # The claim with the subscription's term end as stored now, not as the caller read it.
    claim = (
        subscription.auto_renewals.order_by("-created_at")
        .values("term_end", "subscription__current_term_end", "subscription__status")
        .first()
    )
    if claim is not None and claim["subscription__status"] == Order.Status.SUSPENDED:
        # Suspended since the claim: skipped all the same.
        raise provisioning.NotAllowed(_skip_reason(subscription))
    term_end = claim["subscription__current_term_end"] if claim else None
    if claim is None or claim["term_end"] != term_end:
        raise provisioning.NotAllowed(
            f"{subscription} was renewed meanwhile (term now ends "
            f"{term_end or subscription.current_term_end:%d %b %Y}); not renewed again."
        )
    return provisioning.order_renew(order=subscription, by=None)


def auto_renew_report(*, batch: Batch) -> int:
    """Email what an auto-renewal batch did: each account manager their customers', managers
    everything. Returns the number of emails sent.

    Each subscription is reported as it stands when the batch ends: renewed by the job,
    skipped (suspended), renewed meanwhile by someone else (its term moved on past the term
    the job claimed), or not renewed and still due."""
    items = list(batch.items.order_by("position"))
    orders = Order.objects.select_related("customer__account_manager").in_bulk(
        [item.object_id for item in items]
    )
    claimed = dict(
        AutoRenewal.objects.filter(batch=batch).values_list("subscription_id", "term_end")
    )
    rows = [(orders.get(item.object_id), item) for item in items]
    by_manager: dict[str, list[_Row]] = defaultdict(list)
    every: list[_Row] = []
    for order, item in rows:
        row = (order, item, _fate(order, item, claimed.get(item.object_id)))
        every.append(row)
        email = inbox(order.customer.account_manager) if order is not None else ""
        if email:
            by_manager[email].append(row)
    sent = 0
    messages = [(email, mine) for email, mine in sorted(by_manager.items())]
    messages.append((settings.MANAGERS_EMAIL, every))
    for email, mine in messages:
        message = EmailMessage(
            subject=f"OneOffice auto-renewal: {_counts(mine)}",
            body=_body(batch, mine),
            to=[email],
        )
        try:
            message.send()
        except OSError as exc:
            logger.warning("auto-renewal email to %s not sent: %s", email, exc)
            continue
        sent += 1
    return sent


RENEWED = "renewed"
SKIPPED = "skipped"
RENEWED_MEANWHILE = "renewed meanwhile"
MISSED = "NOT renewed"
_Row = tuple[Order | None, BatchItem, str]


def _fate(order: Order | None, item: BatchItem, claimed_end: date | None) -> str:
    if item.state == BatchItem.State.DONE:
        return RENEWED
    if order is None:
        return MISSED
    if claimed_end is not None and order.current_term_end and order.current_term_end > claimed_end:
        # Someone renewed it by hand (or a retry settled the job's own attempt): not due now.
        return RENEWED_MEANWHILE
    if _stopped(order) and item.state == BatchItem.State.REJECTED:
        return SKIPPED
    return MISSED


def _counts(rows: list[_Row]) -> str:
    parts = []
    for fate in (RENEWED, MISSED, SKIPPED, RENEWED_MEANWHILE):
        n = sum(row[2] == fate for row in rows)
        if n or fate == RENEWED:
            parts.append(f"{n} {fate}")
    return ", ".join(parts)


def _line(order: Order | None, item: BatchItem, fate: str) -> str:
    if order is None:
        return f"- {item.object_label}: {item.message}"
    line = f"- {order.number}  {order.customer.name} ({order.customer.code})"
    if fate in (RENEWED, RENEWED_MEANWHILE):
        return f"{line}  now ends {order.current_term_end:%Y-%m-%d}"
    if fate == SKIPPED:
        return f"{line}  suspended\n  {admin_url(order)}"
    return f"{line}  {item.get_state_display()}: {item.message}\n  {admin_url(order)}"


_SECTIONS = (
    (
        MISSED,
        "NOT renewed: these subscriptions are still due; renew them by hand "
        "(an unknown outcome is retried automatically, check it first):",
    ),
    (
        SKIPPED,
        "Skipped, suspended: someone stopped these, and a renewal would reactivate them on "
        "OneOffice. Renew one by hand to bring it back:",
    ),
    (RENEWED, "Renewed automatically:"),
    (RENEWED_MEANWHILE, "Renewed meanwhile, not by this job (nothing to do):"),
)


def _body(batch: Batch, rows: list[_Row]) -> str:
    lines = []
    for fate, heading in _SECTIONS:
        mine = [_line(order, item, fate) for order, item, row_fate in rows if row_fate == fate]
        if mine:
            lines += [heading, *mine, ""]
    batch_url = settings.PORTAL_BASE_URL + reverse("admin:portal_batch_change", args=[batch.pk])
    lines += [
        f"The batch: {batch_url}",
        "Everything due: "
        + settings.PORTAL_BASE_URL
        + reverse("admin:orders_renewaldue_changelist"),
    ]
    return "\n".join(lines) + "\n"


def register_auto_renewal() -> None:
    """Offer the job's renewal to batches, and have a finished auto-renewal batch reported."""
    batches.register(
        "auto-renew",
        batches.Operation(
            Order,
            lambda obj, by: auto_renew_one(subscription=obj),
            "renewed",
            ProvisioningCall.Method.CREATE_RENEWAL_ORDER,
        ),
    )
    batches.register_job(JOB, on_finished=lambda batch: auto_renew_report(batch=batch))
