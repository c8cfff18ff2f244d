"""Renewal reminders by email: a daily digest per account manager and a summary to managers.

These are emails, not vendor calls, so nothing here goes through `portal.provisioning`.

A reminder is claimed before it is sent: one INSERT ... SELECT writes a row for every due
subscription not yet reminded for its term, keyed on the run, and a unique constraint allows
one regular reminder per subscription and term. A second run, even on another cluster at the
same moment, inserts nothing for those subscriptions and leaves them alone. The run then reads
back what it claimed, so the number of queries does not grow with the number due.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMessage
from django.db import connections
from django.db.models import Case, Count, Exists, F, OuterRef, Q, QuerySet, TextField, Value, When
from django.db.models.functions import Coalesce, Concat
from django.urls import reverse
from django.utils import timezone

from orders.models import Order, ReminderRun, RenewalReminder
from orders.money.pricing import format_money
from orders.renewals import terms
from orders.renewals.selectors import order_list_due_for_renewal, term_end_of
from portal.core.inputs import one_line
from portal.core.people import display_name, display_name_of, inbox, inbox_of
from portal.core.sql import insert_select

logger = logging.getLogger(__name__)

# A claim still unsent after this long belongs to a run that died between claiming and
# sending (the cluster's task timeout is far shorter); the next run may take it over.
STALE_CLAIM = timedelta(hours=1)
# Rows listed in one account manager's digest, and per account manager in the summary; the
# rest are a link away (a 57,000-row digest is 10 MB nobody reads).
DIGEST_ROWS = 50
SUMMARY_ROWS = 10
NO_MANAGER = "none"
UPDATE_BATCH = 20_000
# What sending can raise: the server refusing or unreachable (OSError, smtplib's errors
# included), or a header or address Python's email package will not write (ValueError, which
# BadHeaderError is).
SEND_ERRORS = (OSError, ValueError)


class ReminderError(Exception):
    """The reminder was not sent; the message is written for a sales person."""


@dataclass
class _Item:
    reminder_id: int | None
    order_id: int
    number: str
    customer_name: str
    customer_code: str
    product: str
    licenses: int
    term_end: date
    days_left: int
    manager_id: int | None
    # Where the account manager reads reminders; empty when nobody would (see below).
    manager_email: str
    manager_name: str
    value: Decimal | None
    currency: str

    @classmethod
    def from_order(cls, order: Order, today: date) -> _Item:
        manager = order.customer.account_manager
        term_end = term_end_of(order)
        return cls(
            reminder_id=None,
            order_id=order.pk,
            number=order.number,
            customer_name=order.customer.name,
            customer_code=order.customer.code,
            product=order.product,
            licenses=order.licenses,
            term_end=term_end,
            days_left=terms.days_left(term_end, today),
            manager_id=manager.pk if manager else None,
            manager_email=inbox(manager),
            manager_name=display_name(manager),
            value=order.current_value,
            currency=order.current_currency,
        )


def send_renewal_reminders(*, today: date | None = None) -> ReminderRun:
    """Remind account managers of their customers' due and lapsed subscriptions, once per term.

    Claims every due or lapsed subscription not yet reminded for its current term, sends one
    digest to each account manager and one summary of everything claimed to MANAGERS_EMAIL
    (customers without an account manager appear only there), and records the run. A reminder
    whose every email failed is released, so the next run tries it again; the run's `error`
    says what failed. The queries it makes do not depend on the number due, only on the
    number of emails.
    """
    # Days left count from OneOffice's today, as the renewal window does.
    today = today or terms.vendor_date()
    run = ReminderRun.objects.create()
    errors: list[str] = []
    try:
        _release_stale_claims()
        due = order_list_due_for_renewal(today=today)
        counts = due.order_by().aggregate(
            total=Count("pk"), lapsed=Count("pk", filter=Q(current_term_end__lt=today))
        )
        run.lapsed_count = counts["lapsed"]
        run.due_count = counts["total"] - counts["lapsed"]
        _claim(due, run)
        items = _claimed(run, today)
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
    today = terms.vendor_date()
    manager_email = inbox(order.customer.account_manager)
    to = [manager_email] if manager_email else [settings.MANAGERS_EMAIL]
    cc = [settings.MANAGERS_EMAIL] if manager_email else []
    reminder = RenewalReminder.objects.create(
        subscription=order,
        term_end=term_end_of(order),
        forced=True,
        requested_by_id=by.pk if by is not None and by.pk else None,
    )
    item = _Item.from_order(order, today)
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


def _claim(due: QuerySet[Order], run: ReminderRun) -> None:
    """Claim, for this run, every due subscription no run has claimed for its current term.

    One statement whatever the number due. Subscriptions another run holds are skipped by the
    unique constraint (ON CONFLICT DO NOTHING) instead of failing the statement; rows go in
    by id, so runs racing on PostgreSQL wait for each other instead of deadlocking.
    """
    reminded = RenewalReminder.objects.filter(
        subscription=OuterRef("pk"), term_end=OuterRef("current_term_end"), forced=False
    )
    source = (
        due.filter(~Exists(reminded))
        .order_by()
        .values(claim_order=F("pk"), claim_term_end=F("current_term_end"))
    )
    connection = connections[RenewalReminder.objects.db]
    created_at = connection.ops.adapt_datetimefield_value(timezone.now())
    # WHERE 1 = 1: SQLite needs a WHERE before ON CONFLICT in an INSERT ... SELECT.
    insert_select(
        RenewalReminder,
        ["subscription", "term_end", "run", "forced", "recipients", "created_at"],
        source,
        "src.claim_order, src.claim_term_end, %s, %s, %s, %s",
        [run.pk, False, "", created_at],
        suffix="WHERE 1 = 1 ORDER BY src.claim_order ON CONFLICT DO NOTHING",
    )


def _claimed(run: ReminderRun, today: date) -> list[_Item]:
    """What this run claimed, soonest first, in one query."""
    manager = "subscription__customer__account_manager__"
    rows = (
        RenewalReminder.objects.filter(run=run, forced=False)
        .order_by("term_end", "subscription__number")
        .values_list(
            "pk",
            "subscription_id",
            "subscription__number",
            "subscription__customer__name",
            "subscription__customer__code",
            "subscription__product",
            "subscription__licenses",
            "term_end",
            "subscription__customer__account_manager_id",
            manager + "email",
            manager + "is_active",
            manager + "first_name",
            manager + "last_name",
            manager + "username",
            "subscription__current_value",
            "subscription__current_currency",
        )
    )
    items = []
    for row in rows.iterator(chunk_size=5000):
        (reminder_id, pk, number, name, code, product, licenses, term_end, manager_id) = row[:9]
        email, active, first, last, username, value, currency = row[9:]
        items.append(
            _Item(
                reminder_id=reminder_id,
                order_id=pk,
                number=number,
                customer_name=name,
                customer_code=code,
                product=product,
                licenses=licenses,
                term_end=term_end,
                days_left=terms.days_left(term_end, today),
                manager_id=manager_id,
                manager_email=inbox_of(email, active),
                manager_name=display_name_of(first, last, username),
                value=value,
                currency=currency,
            )
        )
    return items


def _deliver(run: ReminderRun, items: list[_Item], today: date, errors: list[str]) -> None:
    """Send the digests and the summary; mark sent with one UPDATE per email that went out,
    and release, with one DELETE, what no email carried."""
    by_email: dict[str, list[_Item]] = defaultdict(list)
    for item in items:
        if item.manager_email:
            by_email[item.manager_email].append(item)

    claimed = RenewalReminder.objects.filter(run=run, forced=False)
    for email, mine in sorted(by_email.items()):
        managers = sorted({item.manager_id for item in mine if item.manager_id is not None})
        message = EmailMessage(
            subject=f"OneOffice renewals for your customers: {_counts(mine)}",
            body=_body(
                "Your customers' subscriptions due for renewal:",
                mine,
                today,
                limit=DIGEST_ROWS,
                more_url=_renewals_page(manager=managers[0] if len(managers) == 1 else None),
            ),
            to=[email],
        )
        if _send(run, message, errors):
            ids = [item.reminder_id for item in mine]
            # By id (the claims just read back): a join through customers to find one
            # manager's reminders scanned every order. Batches keep under SQLite's limit
            # of parameters; one account manager rarely has more than one.
            for start in range(0, len(ids), UPDATE_BATCH):
                claimed.filter(pk__in=ids[start : start + UPDATE_BATCH]).update(
                    sent_at=timezone.now(), recipients=email
                )

    summary = EmailMessage(
        subject=f"OneOffice renewals summary: {_counts(items)}",
        body=_summary_body(run, items, today),
        to=[settings.MANAGERS_EMAIL],
    )
    if _send(run, summary, errors):
        claimed.update(
            sent_at=Coalesce(F("sent_at"), Value(timezone.now())),
            recipients=Case(
                When(recipients="", then=Value(settings.MANAGERS_EMAIL)),
                default=Concat(F("recipients"), Value(", " + settings.MANAGERS_EMAIL)),
                output_field=TextField(),
            ),
        )
    # Released, so the next run claims them again.
    released, _ = claimed.filter(sent_at__isnull=True).delete()
    run.sent_count = len(items) - released


def _send(run: ReminderRun, message: EmailMessage, errors: list[str]) -> bool:
    try:
        message.send()
    except SEND_ERRORS as exc:
        errors.append(f"Email to {', '.join(message.to)} not sent: {exc}")
        logger.warning("renewal reminder email to %s not sent: %s", message.to, exc)
        return False
    run.emails_sent += 1
    return True


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
    path = reverse("admin:orders_order_change", args=[item.order_id])
    return (
        f"- {item.number}  {one_line(item.customer_name)} ({item.customer_code})  "
        f"{item.product}  {item.licenses} licenses  {format_money(item.value, item.currency)}  "
        f"term ends {item.term_end:%Y-%m-%d}  {_when(item.days_left)}\n"
        f"  {settings.PORTAL_BASE_URL}{path}"
    )


def _renewals_page(*, manager: int | str | None = None) -> str:
    """The Renewals due page, filtered to one account manager's customers when given."""
    url = settings.PORTAL_BASE_URL + reverse("admin:orders_renewaldue_changelist")
    return url if manager is None else f"{url}?manager={manager}"


def _listed(items: list[_Item], limit: int, more_url: str) -> list[str]:
    lines = [_line(item) for item in sorted(items, key=_soonest)[:limit]]
    if len(items) > limit:
        lines.append(f"... and {len(items) - limit:,} more: {more_url}")
    return lines


def _body(
    intro: str,
    items: list[_Item],
    today: date,
    *,
    limit: int = DIGEST_ROWS,
    more_url: str | None = None,
) -> str:
    lines = [intro, ""]
    lines += _listed(items, limit, more_url or _renewals_page())
    lines += [
        "",
        f"Days are counted from {today:%Y-%m-%d} ({settings.TIME_ZONE}). OneOffice accepts a "
        f"renewal in the last {settings.ONEOFFICE_RENEWAL_WINDOW_DAYS} days of a term; a lapsed "
        "subscription renewed late starts again on the day it is renewed.",
        f"Everything due, with the Renew button: {more_url or _renewals_page()}",
    ]
    return "\n".join(lines) + "\n"


def _summary_body(run: ReminderRun, items: list[_Item], today: date) -> str:
    groups: dict[tuple[bool, str], list[_Item]] = defaultdict(list)
    for item in items:
        if item.manager_email:
            groups[(False, f"{item.manager_name} <{item.manager_email}>")].append(item)
        else:
            groups[(True, "No account manager (reminded only here)")].append(item)
    lines = [
        f"Reminded today: {_counts(items)}. Due or lapsed in all: "
        f"{run.due_count} due, {run.lapsed_count} lapsed.",
        "",
    ]
    for key in sorted(groups):
        orphans, label = key
        mine = groups[key]
        managers = {item.manager_id for item in mine}
        if orphans:
            url = _renewals_page(manager=NO_MANAGER)
        else:
            url = _renewals_page(manager=managers.pop() if len(managers) == 1 else None)
        lines.append(f"{label}: {_counts(mine)}")
        lines += _listed(mine, SUMMARY_ROWS, url)
        lines.append("")
    lines.append(f"Days are counted from {today:%Y-%m-%d} ({settings.TIME_ZONE}).")
    lines.append(f"Everything due or lapsed: {_renewals_page()}")
    return "\n".join(lines) + "\n"


def _soonest(item: _Item) -> tuple:
    return (item.term_end, item.number)
