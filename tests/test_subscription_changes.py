"""Every change of a subscription is recorded once, with who, when it took effect and on what
grounds; refusals and unknown outcomes record nothing."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings as django_settings

from orders.models import Order, SubscriptionChange
from portal import provisioning
from tests import service
from tests.factories import UserFactory

Kind = SubscriptionChange.Kind


def travel(year: int, month: int, day: int, hour: int = 12):
    moment = datetime(year, month, day, hour, tzinfo=ZoneInfo(django_settings.TIME_ZONE))
    return time_machine.travel(moment, tick=False)


def _history(subscription: Order) -> list[tuple[str, str, str, date]]:
    return [
        (c.kind, c.status_before, c.status_after, c.effective_on)
        for c in subscription.changes.order_by("recorded_at", "id")
    ]


@pytest.fixture
def seller(db):
    return UserFactory(username="selma")


@pytest.fixture
def subscription(seller):
    return service.placed(date(2027, 1, 31), by=seller)


def test_placing_records_the_subscription_placed_by_whom_on_its_first_day(subscription, seller):
    change = subscription.changes.get()
    assert (change.kind, change.status_before, change.status_after) == (
        Kind.PLACED,
        "draft",
        "active",
    )
    assert change.effective_on == subscription.term_start == date(2027, 1, 31)
    assert change.by == seller
    assert change.call.method == "createFirstOrder"


def test_suspend_renew_cancel_are_recorded_in_order(subscription, seller):
    with travel(2027, 2, 10):
        provisioning.order_suspend(order=subscription, by=seller)
    with travel(2027, 2, 20):
        renewal = provisioning.order_renew(order=subscription)
    with travel(2027, 3, 1):
        provisioning.order_cancel(order=subscription)

    assert _history(subscription) == [
        (Kind.PLACED, "draft", "active", date(2027, 1, 31)),
        (Kind.SUSPENDED, "active", "suspended", date(2027, 2, 10)),
        # A renewal reactivates a suspended subscription.
        (Kind.RENEWED, "suspended", "active", date(2027, 2, 20)),
        (Kind.CANCELLED, "active", "cancelled", date(2027, 3, 1)),
    ]
    renewed = subscription.changes.get(kind=Kind.RENEWED)
    assert renewed.renewal == renewal
    assert renewed.by is None  # nobody clicked: `by` was not given


def test_refused_and_unknown_outcomes_record_nothing_and_a_settling_retry_records_once(
    sandbox, subscription
):
    sandbox.inject("suspendOrder", "respond", status=400, body='"not today"')
    with travel(2027, 2, 10), pytest.raises(provisioning.VendorRefused):
        provisioning.order_suspend(order=subscription)
    sandbox.inject("suspendOrder", "500-after")
    with travel(2027, 2, 11), pytest.raises(provisioning.OutcomeUnknown):
        provisioning.order_suspend(order=subscription)
    assert [kind for kind, *_ in _history(subscription)] == [Kind.PLACED]

    # The retry is answered "already suspended": the first attempt landed, on the 11th.
    with travel(2027, 2, 12):
        provisioning.order_retry(order=subscription)

    assert _history(subscription)[1:] == [
        (Kind.SUSPENDED, "active", "suspended", date(2027, 2, 11)),
    ]


def test_a_renewal_marked_as_renewed_records_who_decided(sandbox, subscription, seller):
    sandbox.inject("createRenewalOrder", "500-after")
    too_early = '"cannot renew: more than 15 days left on current term"'
    sandbox.inject("createRenewalOrder", "respond", status=400, body=too_early)
    with travel(2027, 2, 20), pytest.raises(provisioning.OutcomeUnknown):
        provisioning.order_renew(order=subscription)
    with travel(2027, 2, 21), pytest.raises(provisioning.NeedsDecisionError):
        provisioning.order_renew(order=subscription)
    renewal = subscription.renewals.get()

    with travel(2027, 2, 22):
        provisioning.order_resolve_renewal(renewal=renewal, renewed=True, by=seller)

    change = subscription.changes.get(kind=Kind.RENEWED)
    assert (change.by, change.renewal, change.effective_on) == (seller, renewal, date(2027, 2, 20))
    assert "Marked as renewed by selma" in change.note


@pytest.mark.django_db(transaction=True)
def test_the_migration_records_what_existing_rows_show():
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("orders", "0002_initial")], [("orders", "0003_subscription_change")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    Customer = apps.get_model("customers", "Customer")
    OldOrder = apps.get_model("orders", "Order")
    Call = apps.get_model("portal", "ProvisioningCall")
    customer = Customer.objects.create(
        code="C-OLD",
        name="Old Ltd",
        admin_email="a@old.example",
        admin_phone="+30 210 5550100",
        admin_display_name="Old",
        status="registered",
    )
    first = OldOrder.objects.create(
        number="O-OLD1",
        customer=customer,
        product="oo-std",
        licenses=3,
        duration="monthly",
        status="cancelled",
        term_start=date(2026, 1, 5),
        term_end=date(2026, 2, 5),
        current_term_end=date(2026, 3, 5),
    )
    OldOrder.objects.create(
        number="O-OLD2",
        customer=customer,
        parent=first,
        product="oo-std",
        licenses=3,
        duration="monthly",
        status="active",
        term_start=date(2026, 2, 5),
        term_end=date(2026, 3, 5),
    )
    OldOrder.objects.create(
        number="O-DRAFT",
        customer=customer,
        product="oo-std",
        licenses=1,
        duration="monthly",
    )
    ended = datetime(2026, 2, 20, 9, tzinfo=ZoneInfo("UTC"))
    Call.objects.create(
        method="cancelOrder",
        params={"id": "O-OLD1"},
        order=first,
        outcome="ok",
        status_before="active",
        started_at=ended,
        finished_at=ended,
    )

    executor = MigrationExecutor(connection)
    executor.migrate(after)

    history = list(
        SubscriptionChange.objects.filter(subscription__number="O-OLD1")
        .order_by("effective_on")
        .values_list("kind", "effective_on", "renewal__number")
    )
    assert history == [
        (Kind.PLACED, date(2026, 1, 5), None),
        (Kind.RENEWED, date(2026, 2, 5), "O-OLD2"),
        (Kind.CANCELLED, date(2026, 2, 20), None),
    ]
    assert not SubscriptionChange.objects.filter(subscription__number="O-DRAFT").exists()
