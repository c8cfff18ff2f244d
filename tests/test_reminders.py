"""Renewal reminders: digests per account manager, the managers' summary, and once per term."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders.models import Order, ReminderRun, RenewalReminder
from orders.renewals.reminders import (
    DIGEST_ROWS,
    SUMMARY_ROWS,
    ReminderError,
    reminder_resend,
    send_renewal_reminders,
)
from orders.tasks import renewal_reminders_task
from tests.factories import OrderFactory, UserFactory
from tests.test_races import at_once

S = Order.Status
TODAY = date(2027, 3, 10)
MANAGERS = "renewals-desk@reseller.example"


@pytest.fixture(autouse=True)
def reminder_settings(settings):
    settings.MANAGERS_EMAIL = MANAGERS
    settings.PORTAL_BASE_URL = "https://portal.reseller.example"
    settings.ONEOFFICE_RENEWAL_WINDOW_DAYS = 15


@pytest.fixture
def alice(db):
    return UserFactory(username="alice", first_name="Alice", last_name="Ames")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob")


def to(address: str) -> list:
    return [m for m in mail.outbox if address in m.to]


def admin_link(order: Order) -> str:
    return f"https://portal.reseller.example/admin/orders/order/{order.pk}/change/"


@pytest.mark.django_db
def test_send_renewal_reminders_sends_one_digest_per_account_manager(alice, bob):
    a1 = OrderFactory(
        active=True,
        today=TODAY,
        days_left=3,
        customer__name="Acme Ltd",
        customer__account_manager=alice,
    )
    a2 = OrderFactory(active=True, today=TODAY, days_left=15, customer__account_manager=alice)
    b1 = OrderFactory(active=True, today=TODAY, days_left=0, customer__account_manager=bob)

    run = send_renewal_reminders(today=TODAY)

    [digest] = to(alice.email)
    assert digest.to == [alice.email]
    assert "2 due" in digest.subject
    for order in (a1, a2):
        assert order.number in digest.body
        assert admin_link(order) in digest.body
    assert b1.number not in digest.body
    assert "https://portal.reseller.example/admin/orders/renewaldue/" in digest.body
    line = next(line for line in digest.body.splitlines() if a1.number in line)
    assert "Acme Ltd" in line
    assert "oo-std" in line
    assert "20 licenses" in line
    assert "term ends 2027-03-13" in line
    assert "3 days left" in line
    [bobs] = to(bob.email)
    assert b1.number in bobs.body and "ends today" in bobs.body
    assert a1.number not in bobs.body
    assert (run.due_count, run.lapsed_count, run.sent_count, run.emails_sent) == (3, 0, 3, 3)
    assert run.finished_at is not None and run.error == ""


@pytest.mark.django_db
def test_send_renewal_reminders_summary_lists_everything_and_customers_without_manager(alice):
    mine = OrderFactory(active=True, today=TODAY, days_left=2, customer__account_manager=alice)
    orphan = OrderFactory(active=True, today=TODAY, days_left=4, customer__name="Nobody's Customer")

    send_renewal_reminders(today=TODAY)

    [summary] = to(MANAGERS)
    assert summary.to == [MANAGERS]
    assert mine.number in summary.body and orphan.number in summary.body
    assert "Alice Ames <alice@reseller.example>" in summary.body
    assert "No account manager" in summary.body
    assert summary.body.index("No account manager") < summary.body.index(orphan.number)
    assert all(orphan.number not in m.body for m in mail.outbox if m is not summary)
    assert len(mail.outbox) == 2
    assert RenewalReminder.objects.get(subscription=orphan).recipients == MANAGERS
    assert RenewalReminder.objects.get(subscription=mine).recipients == (
        f"{alice.email}, {MANAGERS}"
    )


@pytest.mark.django_db
def test_send_renewal_reminders_sends_a_deactivated_managers_customers_to_the_summary_only():
    gone = UserFactory(username="gone", is_active=False)
    order = OrderFactory(active=True, today=TODAY, days_left=2, customer__account_manager=gone)

    send_renewal_reminders(today=TODAY)

    assert to(gone.email) == []
    [summary] = to(MANAGERS)
    assert order.number in summary.body and "No account manager" in summary.body


@pytest.mark.django_db
def test_send_renewal_reminders_includes_lapsed_and_leaves_out_cancelled_and_not_due(alice):
    lapsed = OrderFactory(
        suspended=True, today=TODAY, days_left=-3, customer__account_manager=alice
    )
    cancelled = OrderFactory(
        cancelled=True, today=TODAY, days_left=2, customer__account_manager=alice
    )
    later = OrderFactory(active=True, today=TODAY, days_left=16, customer__account_manager=alice)

    run = send_renewal_reminders(today=TODAY)

    [digest] = to(alice.email)
    assert lapsed.number in digest.body and "LAPSED 3 days ago" in digest.body
    assert "1 lapsed" in digest.subject
    assert cancelled.number not in digest.body
    assert later.number not in digest.body
    assert (run.due_count, run.lapsed_count, run.sent_count) == (0, 1, 1)


@pytest.mark.django_db
def test_send_renewal_reminders_twice_reminds_each_term_once(alice):
    orders = [
        OrderFactory(active=True, today=TODAY, days_left=d, customer__account_manager=alice)
        for d in (1, 7, -2)
    ]

    first = send_renewal_reminders(today=TODAY)
    sent = len(mail.outbox)
    second = send_renewal_reminders(today=TODAY + timedelta(1))

    assert sent == 2
    assert len(mail.outbox) == 2
    assert (first.sent_count, second.sent_count, second.emails_sent) == (3, 0, 0)
    assert (second.due_count, second.lapsed_count) == (2, 1)
    assert sorted(RenewalReminder.objects.values_list("subscription", flat=True)) == sorted(
        o.pk for o in orders
    )


@pytest.mark.django_db
def test_send_renewal_reminders_reminds_again_for_the_next_term(alice):
    order = OrderFactory(active=True, today=TODAY, days_left=2, customer__account_manager=alice)
    send_renewal_reminders(today=TODAY)
    order.current_term_end = terms_end = TODAY + timedelta(2 + 30)
    order.save(update_fields=["current_term_end"])

    send_renewal_reminders(today=terms_end - timedelta(10))

    assert [m.body.count(order.number) for m in to(alice.email)] == [1, 1]
    assert sorted(RenewalReminder.objects.values_list("term_end", flat=True)) == [
        TODAY + timedelta(2),
        terms_end,
    ]


@pytest.mark.django_db
def test_send_renewal_reminders_sends_nothing_when_nothing_is_due(alice):
    OrderFactory(active=True, today=TODAY, days_left=40, customer__account_manager=alice)

    run = send_renewal_reminders(today=TODAY)

    assert mail.outbox == []
    assert (run.due_count, run.sent_count, run.emails_sent) == (0, 0, 0)
    assert ReminderRun.objects.count() == 1


@pytest.mark.django_db
def test_send_renewal_reminders_counts_days_from_the_local_date(settings, alice):
    settings.TIME_ZONE = "Pacific/Auckland"
    order = OrderFactory(active=True, today=TODAY, days_left=0, customer__account_manager=alice)
    # 11:30 UTC on Mar 9 is 00:30 on Mar 10 in Auckland.
    with time_machine.travel(datetime(2027, 3, 9, 11, 30, tzinfo=ZoneInfo("UTC")), tick=False):
        send_renewal_reminders()

    [digest] = to(alice.email)
    assert order.number in digest.body and "ends today" in digest.body


@pytest.mark.django_db
def test_send_renewal_reminders_releases_reminders_whose_emails_failed(settings, alice):
    order = OrderFactory(active=True, today=TODAY, days_left=4, customer__account_manager=alice)
    # A real SMTP backend aimed at a closed loopback port: the connection is refused.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2

    failed = send_renewal_reminders(today=TODAY)

    assert (failed.sent_count, failed.emails_sent) == (0, 0)
    assert f"Email to {alice.email} not sent" in failed.error
    assert f"Email to {MANAGERS} not sent" in failed.error
    assert not RenewalReminder.objects.exists()

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    retried = send_renewal_reminders(today=TODAY)

    assert retried.sent_count == 1 and retried.error == ""
    assert order.number in to(alice.email)[0].body


@pytest.mark.django_db
def test_send_renewal_reminders_takes_over_a_claim_left_unsent_by_a_dead_run(alice):
    order = OrderFactory(active=True, today=TODAY, days_left=4, customer__account_manager=alice)
    dead = ReminderRun.objects.create(started_at=timezone.now() - timedelta(hours=3))
    RenewalReminder.objects.create(
        subscription=order,
        term_end=order.current_term_end,
        run=dead,
        created_at=timezone.now() - timedelta(hours=3),
    )

    run = send_renewal_reminders(today=TODAY)

    assert run.sent_count == 1
    assert order.number in to(alice.email)[0].body
    assert RenewalReminder.objects.get().run == run


@pytest.mark.django_db
def test_send_renewal_reminders_leaves_a_fresh_claim_to_its_run(alice):
    order = OrderFactory(active=True, today=TODAY, days_left=4, customer__account_manager=alice)
    busy = ReminderRun.objects.create()
    RenewalReminder.objects.create(subscription=order, term_end=order.current_term_end, run=busy)

    run = send_renewal_reminders(today=TODAY)

    assert run.sent_count == 0
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_send_renewal_reminders_in_two_runs_at_once_reminds_each_term_once(alice, bob):
    orders = [
        OrderFactory(
            active=True,
            today=TODAY,
            days_left=i % 16 - 1,
            customer__account_manager=(alice, bob, None)[i % 3],
        )
        for i in range(24)
    ]
    runs = at_once(*[lambda: send_renewal_reminders(today=TODAY)] * 2)
    failures = [run for run in runs if isinstance(run, Exception)]

    assert failures == []
    assert sum(r.sent_count for r in runs) == 24
    assert RenewalReminder.objects.filter(forced=False).count() == 24
    summaries = "".join(m.body for m in to(MANAGERS))
    digests = "".join(m.body for m in mail.outbox if MANAGERS not in m.to)
    for i, order in enumerate(orders):
        assert summaries.count(order.number) == 1
        assert digests.count(order.number) == (0 if i % 3 == 2 else 1)


@pytest.mark.django_db(transaction=True)
def test_send_renewal_reminders_in_three_runs_at_once_sends_each_manager_one_digest(alice, bob):
    orders = [
        OrderFactory(
            active=True,
            today=TODAY,
            days_left=i % 16 - 1,
            customer__account_manager=(alice, bob, None)[i % 3],
        )
        for i in range(60)
    ]
    runs = at_once(*[lambda: send_renewal_reminders(today=TODAY)] * 3)
    failures = [run for run in runs if isinstance(run, Exception)]

    assert failures == [] and len(runs) == 3
    assert len(to(alice.email)) == 1 and len(to(bob.email)) == 1 and len(to(MANAGERS)) == 1
    assert sorted(r.sent_count for r in runs) == [0, 0, 60]
    assert RenewalReminder.objects.filter(forced=False, sent_at__isnull=False).count() == 60
    [summary] = to(MANAGERS)
    assert all(summary.body.count(o.number) <= 1 for o in orders)


def _job_queries(today) -> int:
    with CaptureQueriesContext(connection) as queries:
        send_renewal_reminders(today=today)
    return len(queries)


@pytest.mark.django_db
def test_send_renewal_reminders_makes_as_many_queries_for_50_due_as_for_5(
    alice, bob, django_assert_max_num_queries
):
    for i in range(5):
        OrderFactory(
            active=True,
            today=TODAY,
            days_left=i % 16 - 1,
            customer__account_manager=(alice, bob, None)[i % 3],
        )
    few = _job_queries(TODAY)
    RenewalReminder.objects.all().delete()
    for i in range(45):
        OrderFactory(
            active=True,
            today=TODAY,
            days_left=i % 16 - 1,
            customer__account_manager=(alice, bob, None)[i % 3],
        )

    with django_assert_max_num_queries(10):
        many = _job_queries(TODAY)

    assert RenewalReminder.objects.filter(sent_at__isnull=False).count() == 50
    # run, stale claims, counts, claim, read back, one UPDATE per email, release, run again.
    assert many == few <= 10


@pytest.mark.django_db
def test_send_renewal_reminders_caps_a_digest_and_links_to_the_rest(alice):
    orders = [
        OrderFactory(
            active=True, today=TODAY, days_left=i % 19 - 3, customer__account_manager=alice
        )
        for i in range(DIGEST_ROWS + 7)
    ]
    soonest = sorted(orders, key=lambda o: (o.current_term_end, o.number))

    run = send_renewal_reminders(today=TODAY)

    [digest] = to(alice.email)
    shown = [o for o in orders if o.number in digest.body]
    assert shown == [o for o in orders if o in soonest[:DIGEST_ROWS]]
    more = f"https://portal.reseller.example/admin/orders/renewaldue/?manager={alice.pk}"
    assert f"... and 7 more: {more}" in digest.body
    [summary] = to(MANAGERS)
    assert sum(o.number in summary.body for o in orders) == SUMMARY_ROWS
    assert f"... and {DIGEST_ROWS + 7 - SUMMARY_ROWS} more: {more}" in summary.body
    # Every subscription counts as reminded, listed in full or not.
    assert run.sent_count == DIGEST_ROWS + 7
    assert set(RenewalReminder.objects.values_list("recipients", flat=True)) == {
        f"{alice.email}, {MANAGERS}"
    }


@pytest.mark.django_db
def test_reminder_resend_sends_again_and_records_a_forced_reminder(alice, manager_user):
    order = OrderFactory(active=True, today=TODAY, days_left=6, customer__account_manager=alice)
    send_renewal_reminders(today=TODAY)
    mail.outbox.clear()

    with time_machine.travel(datetime(2027, 3, 11, 9, 0, tzinfo=timezone.get_current_timezone())):
        reminder = reminder_resend(subscription=order, by=manager_user)

    [message] = mail.outbox
    assert message.to == [alice.email] and message.cc == [MANAGERS]
    assert order.number in message.body and "5 days left" in message.body
    assert reminder.forced and reminder.requested_by == manager_user
    assert reminder.sent_at is not None
    assert reminder.recipients == f"{alice.email}, {MANAGERS}"
    assert RenewalReminder.objects.filter(subscription=order).count() == 2


@pytest.mark.django_db
def test_reminder_resend_without_account_manager_goes_to_managers():
    order = OrderFactory(active=True, today=TODAY, days_left=1)

    with time_machine.travel(datetime(2027, 3, 10, 9, 0, tzinfo=timezone.get_current_timezone())):
        reminder_resend(subscription=order)

    [message] = mail.outbox
    assert message.to == [MANAGERS] and message.cc == []


@pytest.mark.django_db
def test_reminder_resend_refuses_a_subscription_that_is_not_due(alice):
    order = OrderFactory(active=True, today=TODAY, days_left=30, customer__account_manager=alice)

    with (
        time_machine.travel(datetime(2027, 3, 10, 9, 0, tzinfo=timezone.get_current_timezone())),
        pytest.raises(ReminderError, match="not due for renewal"),
    ):
        reminder_resend(subscription=order)

    assert mail.outbox == []
    assert not RenewalReminder.objects.exists()


@pytest.mark.django_db
def test_renewal_reminders_task_returns_a_short_summary(alice):
    OrderFactory(active=True, today=TODAY, days_left=2, customer__account_manager=alice)
    OrderFactory(active=True, today=TODAY, days_left=-1)

    with time_machine.travel(datetime(2027, 3, 10, 7, 0, tzinfo=timezone.get_current_timezone())):
        result = renewal_reminders_task()

    assert result == "1 due, 1 lapsed: 2 reminded in 2 emails"
