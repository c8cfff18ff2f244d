"""Renewal reminders by email: a daily digest per account manager and a summary to managers.

These are emails, not vendor calls, so nothing here goes through `portal.provisioning`.

A reminder is claimed before it is sent: its row is inserted first, and a unique constraint
allows one regular reminder per subscription and term. A run claims everything it will remind
in one statement, so of runs started at the same moment (even on two clusters) one claims every
due subscription and sends the digests, and the others claim nothing and send nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.urls import reverse
from django.utils import timezone

from orders import terms
from orders.models import Order, ReminderRun, RenewalReminder
from orders.pricing import format_money
from orders.selectors import LAPSED, order_list_due_for_renewal
from portal.inputs import one_line
from portal.notifications import admin_url

logger = logging.getLogger(__name__)

# A claim still unsent after this long belongs to a run that died between claiming and
# sending (the cluster's task timeout is far shorter); the next run may take it over.
STALE_CLAIM = timedelta(hours=1)
# What sending can raise: the server refusing or unreachable (OSError, smtplib's errors
# included), or a header or address Python's email package will not write (ValueError, which
# BadHeaderError is).
SEND_ERRORS = (OSError, ValueError)


class ReminderError(Exception):
    """The reminder was not sent; the message is written for a sales person."""


@dataclass
class _Item:
    order: Order
    reminder: RenewalReminder
    days_left: int
    recipients: list[str]


def send_renewal_reminders(*, today: date | None = None) -> ReminderRun:
    """Remind account managers of their customers' due and lapsed subscriptions, once per term.

    Claims every due or lapsed subscription not yet reminded for its current term, sends one
    digest to each account manager and one summary of everything claimed to MANAGERS_EMAIL
    (customers without an account manager appear only there), and records the run. A reminder
    whose every email failed is released, so the next run tries it again; the run's `error`
    says what failed.
    """
    today = today or timezone.localdate()
    run = ReminderRun.objects.create()
    errors: list[str] = []
    try:
        _release_stale_claims()
        listed = list(
            order_list_due_for_renewal(today=today).annotate(
                reminded=Exists(
                    RenewalReminder.objects.filter(
                        subscription=OuterRef("pk"),
                        term_end=OuterRef("current_term_end"),
                        forced=False,
                    )
                )
            )
        )
        run.lapsed_count = sum(order.renewal_state == LAPSED for order in listed)
        run.due_count = len(listed) - run.lapsed_count
        claimed = _claim([order for order in listed if not order.reminded], run)
        items = [
            _Item(order, claimed[order.pk], terms.days_left(order.current_term_end, today), [])
            for order in listed
            if order.pk in claimed
        ]
        if items:
            _deliver(run, items, today, errors)
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        run.error = "\n".join(errors)
        run.finished_at = timezone.now()
        run.save(
            update_fields=[
                "due_count",
                "lapsed_count",
                "sent_count",
                "emails_sent",
                "error",
                "finished_at",
            ]
        )
    return run


def reminder_resend(*, subscription: Order, by: AbstractBaseUser | None = None) -> RenewalReminder:
    """Send the reminder for a due or lapsed subscription again, now, whatever was sent before.

    Goes to the customer's account manager with MANAGERS_EMAIL in copy (to managers alone when
    there is no account manager) and is recorded as a forced reminder. Refused for
    subscriptions that are not due or lapsed; when the email fails nothing is recorded.
    """
    order = order_list_due_for_renewal().filter(pk=subscription.pk).first()
    if order is None:
        raise ReminderError(f"{subscription} is not due for renewal; no reminder was sent.")
    today = timezone.localdate()
    manager_email = _account_manager_email(order)
    to = [manager_email] if manager_email else [settings.MANAGERS_EMAIL]
    cc = [settings.MANAGERS_EMAIL] if manager_email else []
    reminder = RenewalReminder.objects.create(
        subscription=order,
        term_end=order.current_term_end,
        forced=True,
        requested_by=by if by is not None and by.pk else None,
    )
    item = _Item(order, reminder, terms.days_left(order.current_term_end, today), [])
    message = EmailMessage(
        subject=one_line(f"OneOffice renewal reminder: {order.number} for {order.customer.name}"),
        body=_body(
            "A reminder, sent again from the portal: this subscription is due for renewal.",
            [item],
            today,
        ),
        to=to,
        cc=cc,
    )
    try:
        message.send()
    except SEND_ERRORS as exc:
        reminder.delete()
        logger.warning("renewal reminder for %s not sent: %s", order.number, exc)
        raise ReminderError(f"The reminder for {order} was not sent: {exc}") from None
    reminder.sent_at = timezone.now()
    reminder.recipients = ", ".join([*to, *cc])
    reminder.save(update_fields=["sent_at", "recipients"])
    return reminder


def _release_stale_claims() -> None:
    RenewalReminder.objects.filter(
        forced=False, sent_at__isnull=True, created_at__lt=timezone.now() - STALE_CLAIM
    ).delete()


def _claim(orders: list[Order], run: ReminderRun) -> dict[int, RenewalReminder]:
    """The reminder rows this run won, by subscription id.

    One INSERT for them all, in id order, skipping rows that exist: a run inserting at the same
    moment waits on the first row until this one commits, then finds every row taken. Claiming
    one subscription at a time instead let simultaneous runs share them out, and each sent its
    own digest of its share.
    """
    rows = [
        RenewalReminder(subscription=order, term_end=order.current_term_end, run=run)
        for order in sorted(orders, key=lambda order: order.pk)
    ]
    with transaction.atomic():
        RenewalReminder.objects.bulk_create(rows, ignore_conflicts=True)
    won = RenewalReminder.objects.filter(run=run, forced=False)
    return {reminder.subscription_id: reminder for reminder in won}


def _account_manager_email(order: Order) -> str:
    """Where the customer's account manager gets reminders; empty when nobody would read them
    (no manager, no address, or a deactivated account), so they go to managers only."""
    manager = order.customer.account_manager
    if manager is None or not manager.is_active or not manager.email:
        return ""
    return manager.email


def _deliver(run: ReminderRun, items: list[_Item], today: date, errors: list[str]) -> None:
    by_manager: dict[str, list[_Item]] = defaultdict(list)
    for item in items:
        email = _account_manager_email(item.order)
        if email:
            by_manager[email].append(item)

    for email, mine in sorted(by_manager.items()):
        message = EmailMessage(
            subject=f"OneOffice renewals for your customers: {_counts(mine)}",
            body=_body("Your customers' subscriptions due for renewal:", mine, today),
            to=[email],
        )
        _send(run, message, mine, errors)

    summary = EmailMessage(
        subject=f"OneOffice renewals summary: {_counts(items)}",
        body=_summary_body(run, items, today),
        to=[settings.MANAGERS_EMAIL],
    )
    _send(run, summary, items, errors)

    now = timezone.now()
    sent, unsent = [], []
    for item in items:
        if item.recipients:
            item.reminder.sent_at = now
            item.reminder.recipients = ", ".join(item.recipients)
            sent.append(item.reminder)
        else:
            unsent.append(item.reminder.pk)
    RenewalReminder.objects.bulk_update(sent, ["sent_at", "recipients"])
    # Released, so the next run claims them again.
    RenewalReminder.objects.filter(pk__in=unsent).delete()
    run.sent_count = len(sent)


def _send(run: ReminderRun, message: EmailMessage, items: list[_Item], errors: list[str]) -> None:
    try:
        message.send()
    except SEND_ERRORS as exc:
        errors.append(f"Email to {', '.join(message.to)} not sent: {exc}")
        logger.warning("renewal reminder email to %s not sent: %s", message.to, exc)
        return
    run.emails_sent += 1
    for item in items:
        item.recipients.extend(message.to)


def _counts(items: list[_Item]) -> str:
    lapsed = sum(item.days_left < 0 for item in items)
    due = len(items) - lapsed
    parts = [f"{due} due"] if due else []
    if lapsed:
        parts.append(f"{lapsed} lapsed")
    return ", ".join(parts)


def _when(days_left: int) -> str:
    if days_left > 1:
        return f"{days_left} days left"
    if days_left == 1:
        return "1 day left"
    if days_left == 0:
        return "ends today"
    if days_left == -1:
        return "LAPSED 1 day ago"
    return f"LAPSED {-days_left} days ago"


def _line(item: _Item) -> str:
    order = item.order
    return (
        f"- {order.number}  {one_line(order.customer.name)} ({order.customer.code})  "
        f"{order.product}  {order.licenses} licenses  "
        f"{format_money(order.current_value, order.current_currency)}  "
        f"term ends {order.current_term_end:%Y-%m-%d}  {_when(item.days_left)}\n"
        f"  {admin_url(order)}"
    )


def _renewals_page() -> str:
    return settings.PORTAL_BASE_URL + reverse("admin:orders_renewaldue_changelist")


def _body(intro: str, items: list[_Item], today: date) -> str:
    lines = [intro, ""]
    lines += [_line(item) for item in sorted(items, key=_soonest)]
    lines += [
        "",
        f"Days are counted from {today:%Y-%m-%d} ({settings.TIME_ZONE}). OneOffice accepts a "
        f"renewal in the last {settings.ONEOFFICE_RENEWAL_WINDOW_DAYS} days of a term; a lapsed "
        "subscription renewed late starts again on the day it is renewed.",
        f"Everything due, with the Renew button: {_renewals_page()}",
    ]
    return "\n".join(lines) + "\n"


def _summary_body(run: ReminderRun, items: list[_Item], today: date) -> str:
    groups: dict[str, list[_Item]] = defaultdict(list)
    for item in items:
        manager = item.order.customer.account_manager
        label = (
            one_line(f"{manager.get_full_name() or manager.get_username()} <{manager.email}>")
            if _account_manager_email(item.order)
            else "No account manager (reminded only here)"
        )
        groups[label].append(item)
    lines = [
        f"Reminded today: {_counts(items)}. Due or lapsed in all: "
        f"{run.due_count} due, {run.lapsed_count} lapsed.",
        "",
    ]
    for label in sorted(groups, key=lambda name: (name.startswith("No account"), name)):
        lines.append(f"{label}:")
        lines += [_line(item) for item in sorted(groups[label], key=_soonest)]
        lines.append("")
    lines.append(f"Days are counted from {today:%Y-%m-%d} ({settings.TIME_ZONE}).")
    lines.append(f"Everything due or lapsed: {_renewals_page()}")
    return "\n".join(lines) + "\n"


def _soonest(item: _Item) -> tuple:
    return (item.order.current_term_end, item.order.number)
