"""Transient answers: 429 and 408 are "not now", a 5xx with Retry-After stays unknown; both are
retried no earlier than OneOffice asked, over real HTTP against the sandbox."""

import ast
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from orders.models import Order
from portal import provisioning, tasks
from portal.models import ProvisioningCall
from portal.oneoffice import api
from tests.factories import OrderFactory

Outcome = ProvisioningCall.Outcome
NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", NOW + timedelta(seconds=120)),
        (" 0 ", NOW),
        ("Mon, 01 Mar 2027 12:05:00 GMT", NOW + timedelta(minutes=5)),
        ("Mon, 01 Mar 2027 11:00:00 GMT", NOW),  # in the past: now
        ("99999999999", NOW + api.RETRY_AFTER_CAP),
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after_reads_seconds_and_http_dates(value, expected):
    assert api.parse_retry_after(value, now=NOW) == expected


@pytest.mark.parametrize(("fault", "status"), [("429", 429), ("408", 408)])
def test_client_reads_429_and_408_as_not_now_with_retry_after(sandbox, fault, status):
    client = api.OneOfficeClient(url=sandbox.url, api_key=sandbox.api_key)
    sandbox.inject("createCustomer", fault, retry_after="30")
    request = api.create_customer(
        customer_id="C1", name="n", email="a@b.example", phone="+3021055501", display_name="d"
    )
    before = datetime.now(UTC)

    with pytest.raises(api.VendorNotNowError) as caught:
        client.send(request)

    assert caught.value.status == status
    assert before + timedelta(seconds=29) < caught.value.retry_after
    assert sandbox.snapshot()["customers"] == {}


def test_client_keeps_a_5xx_with_retry_after_unknown(sandbox):
    client = api.OneOfficeClient(url=sandbox.url, api_key=sandbox.api_key)
    sandbox.inject("createCustomer", "503-retry-after", retry_after="30")
    request = api.create_customer(
        customer_id="C1", name="n", email="a@b.example", phone="+3021055501", display_name="d"
    )

    with pytest.raises(api.VendorOutcomeUnknownError) as caught:
        client.send(request)

    assert caught.value.retry_after is not None
    assert list(sandbox.snapshot()["customers"]) == ["C1"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fault", "error", "outcome"),
    [
        ("429", provisioning.StillPending, Outcome.NOT_NOW),
        ("503-retry-after", provisioning.OutcomeUnknown, Outcome.UNKNOWN),
    ],
)
def test_retry_is_scheduled_no_earlier_than_retry_after(
    sandbox, registered_customer, django_capture_on_commit_callbacks, fault, error, outcome
):
    order = OrderFactory(customer=registered_customer)
    sandbox.inject("createFirstOrder", fault, retry_after="900")  # back-off would be 60 s
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(error) as caught:
        provisioning.order_place(order=order)

    assert type(caught.value) is error
    assert ProvisioningCall.objects.get(order=order).outcome == outcome
    schedule = Schedule.objects.get()
    assert schedule.next_run >= timezone.now() + timedelta(seconds=890)
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING

    tasks.order_retry_task(*ast.literal_eval(schedule.args))
    order.refresh_from_db()
    assert order.status == Order.Status.ACTIVE
    assert list(sandbox.snapshot()["orders"]) == [order.number]


@pytest.mark.django_db
@pytest.mark.parametrize("fault", ["429", "408"])
def test_not_now_on_a_retry_after_an_unknown_outcome_is_never_final(
    sandbox, registered_customer, fault
):
    order = OrderFactory(customer=registered_customer)
    sandbox.inject("createFirstOrder", "500-after")
    with pytest.raises(provisioning.OutcomeUnknown):
        provisioning.order_place(order=order)
    sandbox.inject("createFirstOrder", fault)

    with pytest.raises(provisioning.OutcomeUnknown):
        provisioning.order_retry(order=order)

    order.refresh_from_db()
    assert order.status == Order.Status.PENDING
    assert order.first_sent_at is not None
    provisioning.order_retry(order=order)
    order.refresh_from_db()
    assert order.status == Order.Status.ACTIVE
    assert list(sandbox.snapshot()["orders"]) == [order.number]


@pytest.mark.django_db
def test_not_now_on_a_cancel_retry_leaves_it_pending_then_settles(sandbox, active_order):
    sandbox.inject("cancelOrder", "500-after")
    with pytest.raises(provisioning.OutcomeUnknown):
        provisioning.order_cancel(order=active_order)
    sandbox.inject("cancelOrder", "429")
    with pytest.raises(provisioning.OutcomeUnknown):
        provisioning.order_retry(order=active_order)
    active_order.refresh_from_db()
    assert (active_order.status, active_order.pending_action) == ("pending", "cancel")

    provisioning.order_retry(order=active_order)

    active_order.refresh_from_db()
    assert active_order.status == Order.Status.CANCELLED
    assert sandbox.snapshot()["orders"][active_order.number]["status"] == "cancelled"
