"""Who receives an account manager's email: their address while their account is active, and
nobody but managers when there is no such address. Every email about a customer's
subscriptions follows that one rule, and so does the Renewals due page's "managers only"."""

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse

from orders.renewals.autorenew import auto_renew_report
from orders.renewals.reminders import reminder_resend, send_renewal_reminders
from portal.models import BatchItem
from tests.factories import BatchFactory, BatchItemFactory, OrderFactory, UserFactory

pytestmark = pytest.mark.django_db

AMY = "amy@reseller.example"
# (account manager, whether their email reaches them)
MANAGERS = {
    "active": ({"email": AMY, "is_active": True}, True),
    "deactivated": ({"email": AMY, "is_active": False}, False),
    "without an address": ({"email": "", "is_active": True}, False),
    "none": (None, False),
}


@pytest.fixture(params=list(MANAGERS))
def due(request):
    """A subscription due for renewal, and whether its account manager's email reaches them."""
    fields, reached = MANAGERS[request.param]
    manager = UserFactory(username="amy", **fields) if fields is not None else None
    return OrderFactory(active=True, days_left=3, customer__account_manager=manager), reached


def _to(address: str) -> list:
    return [message for message in mail.outbox if address in [*message.to, *message.cc]]


def test_the_reminder_digest_goes_to_the_manager_only_when_it_reaches_them(due):
    order, reached = due

    send_renewal_reminders()

    assert len(_to(AMY)) == (1 if reached else 0)
    [summary] = _to(settings.MANAGERS_EMAIL)
    assert order.number in summary.body
    assert ("No account manager (reminded only here)" in summary.body) is not reached


def test_a_resent_reminder_goes_to_the_manager_or_else_to_managers(due):
    order, reached = due

    reminder_resend(subscription=order)

    [message] = mail.outbox
    if reached:
        assert (message.to, message.cc) == ([AMY], [settings.MANAGERS_EMAIL])
    else:
        assert (message.to, message.cc) == ([settings.MANAGERS_EMAIL], [])


def test_the_auto_renewal_report_goes_to_the_manager_only_when_it_reaches_them(due):
    order, reached = due
    batch = BatchFactory(job="auto-renew", finished_at=order.created_at)
    BatchItemFactory(batch=batch, subject=order, state=BatchItem.State.REFUSED, message="no")

    sent = auto_renew_report(batch=batch)

    assert sent == len(mail.outbox) == (2 if reached else 1)
    assert len(_to(AMY)) == (1 if reached else 0)
    assert order.number in _to(settings.MANAGERS_EMAIL)[0].body


def test_renewals_due_lists_under_managers_only_those_whose_manager_it_does_not_reach(
    due, client, manager_user
):
    order, reached = due
    client.force_login(manager_user)

    listed = client.get(reverse("admin:orders_renewaldue_changelist"), {"manager": "none"})
    everything = client.get(reverse("admin:orders_renewaldue_changelist"))

    assert order in everything.context["page"]
    assert (order in listed.context["page"]) is not reached
