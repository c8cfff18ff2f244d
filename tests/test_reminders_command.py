"""`manage.py send_renewal_reminders`: the reminder job run by hand."""

import io
from datetime import datetime, timedelta

import time_machine
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from orders.models import ReminderRun
from tests.factories import CustomerFactory, OrderFactory, UserFactory


def _run() -> str:
    out = io.StringIO()
    call_command("send_renewal_reminders", stdout=out)
    return out.getvalue()


def test_send_renewal_reminders_twice_reminds_each_due_order_once(db, settings):
    settings.MANAGERS_EMAIL = "managers@reseller.example"
    now = datetime(2027, 3, 10, 9, 0, tzinfo=timezone.get_current_timezone())
    with time_machine.travel(now):
        amy = UserFactory(username="amy", email="amy@reseller.example")
        due = OrderFactory(
            active=True,
            customer=CustomerFactory(account_manager=amy),
            current_term_end=timezone.localdate() + timedelta(days=5),
        )
        OrderFactory(active=True, current_term_end=now.date() + timedelta(days=40))

        first = _run()
        sent = [(m.to, m.body) for m in mail.outbox]
        second = _run()

    assert "1 due, 0 lapsed: 1 reminded" in first
    assert "0 reminded" in second
    assert sorted(to for to, _ in sent) == [["amy@reseller.example"], ["managers@reseller.example"]]
    assert all(due.number in body for _, body in sent)
    assert len(mail.outbox) == 2
    assert ReminderRun.objects.count() == 2
