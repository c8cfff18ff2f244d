"""The provisioning service over real HTTP against the sandbox: every action's success and
refusal paths, local validation, terms, outcome classes and the call log."""

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.conf import settings as django_settings
from django.utils import timezone
from django_q.models import Schedule

from customers.models import Customer
from orders.models import Order
from portal import provisioning, tasks
from portal.models import ProvisioningCall
from portal.oneoffice import api
from portal.provisioning import retries
from tests import service
from tests.conftest import API_KEY
from tests.factories import CustomerFactory, OrderFactory, UserFactory

pytestmark = pytest.mark.django_db

Outcome = ProvisioningCall.Outcome


def at(year: int, month: int, day: int, hour: int = 12) -> datetime:
    """A moment on a business date in DJANGO_TIME_ZONE."""
    return datetime(year, month, day, hour, tzinfo=ZoneInfo(django_settings.TIME_ZONE))


def travel(year: int, month: int, day: int, hour: int = 12):
    return time_machine.travel(at(year, month, day, hour), tick=False)


def _vendor(sandbox, order: Order) -> dict:
    return sandbox.snapshot()["orders"][order.number]


def _assert_mirrored(sandbox, order: Order) -> None:
    """The sandbox holds the order as the portal does."""
    order.refresh_from_db()
    held = _vendor(sandbox, order)
    assert held["customer"] == order.customer.code
    assert held["parent"] == (order.parent.number if order.parent_id else None)
    assert (held["product"], held["licenses"], held["duration"]) == (
        order.product,
        order.licenses,
        order.duration,
    )
    assert date.fromisoformat(held["term_start"]) == order.term_start
    assert date.fromisoformat(held["term_end"]) == order.term_end
    if order.is_first_order:
        assert held["status"] == order.status
        assert date.fromisoformat(held["current_term_end"]) == order.current_term_end


def _assert_no_key(call: ProvisioningCall) -> None:
    for field in ProvisioningCall._meta.concrete_fields:
        assert API_KEY not in json.dumps(getattr(call, field.attname), default=str)


def _calls(subject) -> list[ProvisioningCall]:
    if isinstance(subject, Customer):
        return list(subject.calls.filter(order__isnull=True).order_by("id"))
    return list(subject.calls.order_by("id"))


def _sent_since(sandbox, count: int) -> list[dict]:
    return sandbox.requests[count:]


# customer_register ----------------------------------------------------------------------------


def test_customer_register_registers_and_mirrors_the_old_response(sandbox, sales_user):
    customer = CustomerFactory(code="ACME", name="ACME Ltd")

    with travel(2027, 3, 4):
        provisioning.customer_register(customer=customer, by=sales_user)

    customer.refresh_from_db()
    held = sandbox.snapshot()["customers"]["ACME"]
    assert customer.status == Customer.Status.REGISTERED
    assert customer.oneoffice_id == str(held["vendor_id"]) == "1"
    assert customer.partner == "0"
    assert customer.remote_created_at == at(2027, 3, 4)
    assert customer.is_active is True
    assert customer.onboarding_url == ""
    assert customer.last_error == ""
    assert (customer.attempts, customer.first_sent_at, customer.lease_until) == (1, None, None)
    assert held["name"] == "ACME Ltd"
    assert held["admin"] == {
        "email": customer.admin_email,
        "phone": customer.admin_phone,
        "displayName": customer.admin_display_name,
    }


def test_customer_register_mirrors_the_new_response_with_string_ids(sandbox):
    sandbox.response_style = "new"

    customer = service.registered(code="ACME")

    held = sandbox.snapshot()["customers"]["ACME"]
    assert customer.oneoffice_id == held["vendor_id"]
    assert customer.partner == held["partner"]
    assert customer.onboarding_url == f"https://onboarding.oneoffice.invalid/{held['vendor_id']}"


def test_customer_register_records_the_call(sandbox, sales_user):
    customer = CustomerFactory(code="ACME")

    provisioning.customer_register(customer=customer, by=sales_user)

    [call] = _calls(customer)
    [request] = sandbox.requests
    assert call.method == ProvisioningCall.Method.CREATE_CUSTOMER
    assert call.params == request["json"]["params"]
    assert call.params == {
        "id": "ACME",
        "name": customer.name,
        "admin": {
            "email": customer.admin_email,
            "phone": customer.admin_phone,
            "displayName": customer.admin_display_name,
        },
    }
    assert (call.http_status, call.outcome, call.attempt) == (200, Outcome.OK, 1)
    assert call.status_before == "draft"
    assert call.triggered_by == sales_user
    assert call.duration_ms is not None
    assert call.finished_at >= call.started_at
    assert json.loads(call.response_body)["remoteId"] == "ACME"
    assert call.order is None
    assert not call.settled_earlier
    _assert_no_key(call)


def test_customer_register_sends_a_generated_code_when_left_blank(sandbox):
    customer = service.registered(code="")

    assert customer.code.startswith("C-")
    assert sandbox.requests[0]["json"]["params"]["id"] == customer.code
    assert customer.code in sandbox.snapshot()["customers"]


def test_customer_register_without_a_user_is_recorded_as_the_scheduler(sandbox):
    customer = service.registered()

    [call] = _calls(customer)
    assert call.triggered_by is None
    assert call.triggered_by_label == "scheduler"


def test_customer_register_refused_by_the_vendor_fails_with_its_words(sandbox):
    # Another system already registered this id on OneOffice.
    api.OneOfficeClient(url=sandbox.url, api_key=API_KEY).send(
        api.create_customer(
            customer_id="ACME", name="Other", email="o@o.example", phone="123456", display_name="O"
        )
    )
    customer = CustomerFactory(code="ACME")

    with pytest.raises(provisioning.VendorRefused, match="duplicate key value") as caught:
        provisioning.customer_register(customer=customer)

    customer.refresh_from_db()
    words = 'duplicate key value violates unique constraint "customers_remote_id_key"'
    assert words in str(caught.value)
    assert customer.status == Customer.Status.FAILED
    assert customer.last_error == words
    assert customer.first_sent_at is None
    assert customer.oneoffice_id == ""
    [call] = _calls(customer)
    assert (call.outcome, call.http_status, call.error) == (Outcome.REFUSED, 400, words)
    assert sandbox.snapshot()["customers"]["ACME"]["name"] == "Other"


def test_customer_register_of_a_failed_customer_sends_again(sandbox):
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "respond", status=400, body='"try later"')
    with pytest.raises(provisioning.VendorRefused):
        provisioning.customer_register(customer=customer)

    provisioning.customer_register(customer=customer)

    assert customer.status == Customer.Status.REGISTERED
    assert customer.last_error == ""
    assert [c.outcome for c in _calls(customer)] == [Outcome.REFUSED, Outcome.OK]
    assert customer.code in sandbox.snapshot()["customers"]


@pytest.mark.parametrize(
    ("fields", "field", "label"),
    [
        ({"admin_email": "not-an-email"}, "admin_email", "Admin email"),
        ({"admin_phone": "call me"}, "admin_phone", "Admin phone"),
        ({"name": ""}, "name", "Name"),
        ({"admin_display_name": ""}, "admin_display_name", "Admin display name"),
        ({"code": "AC ME"}, "code", "Customer id"),
        ({"code": "ÄCME"}, "code", "Customer id"),
        ({"code": "AC'ME"}, "code", "Customer id"),
    ],
)
def test_customer_register_refuses_invalid_fields_locally(sandbox, fields, field, label):
    customer = CustomerFactory(**fields)

    with pytest.raises(provisioning.InvalidInput) as caught:
        provisioning.customer_register(customer=customer)

    assert field in caught.value.errors
    assert f"{label}:" in str(caught.value)
    customer.refresh_from_db()
    assert customer.status == Customer.Status.DRAFT
    assert customer.lease_until is None
    assert _calls(customer) == []
    assert sandbox.requests == []


def test_customer_register_refuses_a_non_staff_account_manager(sandbox):
    customer = CustomerFactory(account_manager=UserFactory(is_staff=False))

    with pytest.raises(provisioning.InvalidInput) as caught:
        provisioning.customer_register(customer=customer)

    assert list(caught.value.errors) == ["account_manager"]
    assert sandbox.requests == []


def test_customer_register_refuses_a_registered_customer(sandbox, registered_customer):
    sent = len(sandbox.requests)

    with pytest.raises(provisioning.NotAllowed, match="registered"):
        provisioning.customer_register(customer=registered_customer)

    assert _sent_since(sandbox, sent) == []
    assert len(_calls(registered_customer)) == 1


def test_customer_register_refuses_while_another_request_holds_the_lease(sandbox):
    customer = CustomerFactory()
    Customer.objects.filter(pk=customer.pk).update(
        lease_until=timezone.now() + timedelta(minutes=1)
    )

    with pytest.raises(provisioning.Busy):
        provisioning.customer_register(customer=customer)

    assert sandbox.requests == []
    customer.refresh_from_db()
    assert customer.status == Customer.Status.DRAFT


def test_customer_register_takes_over_an_expired_lease(sandbox):
    customer = CustomerFactory()
    Customer.objects.filter(pk=customer.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )

    provisioning.customer_register(customer=customer)

    customer.refresh_from_db()
    assert customer.status == Customer.Status.REGISTERED
    assert customer.lease_until is None


# Outcome classes, retries and settling --------------------------------------------------------


def test_customer_register_unknown_outcome_stays_pending_and_schedules_a_retry(
    sandbox, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "500-after")

    with (
        travel(2027, 3, 4),
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(provisioning.OutcomeUnknown, match="retried automatically"),
    ):
        provisioning.customer_register(customer=customer)

    customer.refresh_from_db()
    [call] = _calls(customer)
    assert customer.status == Customer.Status.PENDING
    assert customer.attempts == 1
    assert customer.first_sent_at == call.started_at
    assert "HTTP 500" in customer.last_error
    assert (call.outcome, call.http_status) == (Outcome.UNKNOWN, 500)
    schedule = Schedule.objects.get()
    assert schedule.func == "portal.tasks.customer_retry_task"
    assert schedule.args == f"({customer.pk}, 1)"
    assert schedule.schedule_type == Schedule.ONCE
    assert schedule.next_run == at(2027, 3, 4) + timedelta(
        seconds=django_settings.ONEOFFICE_RETRY_BACKOFF_SECONDS
    )


def test_customer_retry_after_an_unknown_outcome_resends_the_same_id_and_settles(sandbox):
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "500-after")
    with pytest.raises(provisioning.OutcomeUnknown):
        provisioning.customer_register(customer=customer)

    provisioning.customer_retry(customer=customer)

    customer.refresh_from_db()
    first, second = _calls(customer)
    assert customer.status == Customer.Status.REGISTERED
    assert second.params == first.params
    assert [r["json"] for r in sandbox.requests][0] == [r["json"] for r in sandbox.requests][1]
    assert (second.outcome, second.http_status, second.attempt) == (Outcome.OK, 400, 2)
    assert second.settled_earlier is True
    assert "duplicate key" in second.error
    assert second.status_before == "draft"
    assert customer.last_error == ""
    assert customer.first_sent_at is None
    assert list(sandbox.snapshot()["customers"]) == [customer.code]


def test_customer_retry_after_a_500_before_lands_the_registration(sandbox):
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "500-before")
    with pytest.raises(provisioning.OutcomeUnknown):
        provisioning.customer_register(customer=customer)
    assert sandbox.snapshot()["customers"] == {}

    provisioning.customer_retry(customer=customer)

    customer.refresh_from_db()
    assert customer.status == Customer.Status.REGISTERED
    assert customer.oneoffice_id == "1"
    assert not _calls(customer)[1].settled_earlier


@pytest.mark.parametrize("fault", ["hang-after", "drop-after", "garbage-200", "html-502"])
def test_customer_register_settles_every_unknown_fault_on_retry(sandbox, settings, fault):
    settings.ONEOFFICE_TIMEOUT = 0.3
    sandbox.hang_seconds = 1.0
    customer = CustomerFactory()
    sandbox.inject("createCustomer", fault)
    with pytest.raises(provisioning.OutcomeUnknown):
        provisioning.customer_register(customer=customer)
    customer.refresh_from_db()
    assert customer.status == Customer.Status.PENDING
    assert _calls(customer)[0].outcome == Outcome.UNKNOWN

    provisioning.customer_retry(customer=customer)

    assert customer.status == Customer.Status.REGISTERED
    assert list(sandbox.snapshot()["customers"]) == [customer.code]


def test_customer_register_not_sent_stays_pending_and_lands_on_retry(sandbox):
    customer = CustomerFactory()
    sandbox.refuse_connections()

    with pytest.raises(provisioning.StillPending) as caught:
        provisioning.customer_register(customer=customer)

    assert not isinstance(caught.value, provisioning.OutcomeUnknown)
    customer.refresh_from_db()
    assert customer.status == Customer.Status.PENDING
    assert customer.first_sent_at is None
    assert _calls(customer)[0].outcome == Outcome.NOT_SENT

    sandbox.accept_connections()
    provisioning.customer_retry(customer=customer)

    assert customer.status == Customer.Status.REGISTERED
    assert customer.oneoffice_id == "1"


def test_customer_register_with_a_refused_key_is_a_configuration_problem(sandbox, settings):
    settings.ONEOFFICE_API_KEY = "wrong-key-123"
    customer = CustomerFactory()

    with pytest.raises(provisioning.ConfigurationProblem, match="ONEOFFICE_API_KEY"):
        provisioning.customer_register(customer=customer)

    customer.refresh_from_db()
    [call] = _calls(customer)
    assert customer.status == Customer.Status.DRAFT
    assert (call.outcome, call.http_status) == (Outcome.CONFIG_ERROR, 401)
    for field in ProvisioningCall._meta.concrete_fields:
        assert "wrong-key-123" not in json.dumps(getattr(call, field.attname), default=str)
    assert not Schedule.objects.exists()


def test_customer_retry_with_a_bad_key_after_an_unknown_outcome_stays_pending(sandbox, settings):
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "500-after")
    with pytest.raises(provisioning.OutcomeUnknown):
        provisioning.customer_register(customer=customer)
    settings.ONEOFFICE_API_KEY = "wrong-key-123"

    with pytest.raises(provisioning.ConfigurationProblem, match="still unsettled"):
        provisioning.customer_retry(customer=customer)

    customer.refresh_from_db()
    assert customer.status == Customer.Status.PENDING
    settings.ONEOFFICE_API_KEY = API_KEY
    provisioning.customer_retry(customer=customer)
    assert customer.status == Customer.Status.REGISTERED


def test_customer_register_emails_managers_once_when_retries_are_used_up(
    sandbox, settings, mailoutbox, django_capture_on_commit_callbacks
):
    settings.ONEOFFICE_RETRY_MAX_ATTEMPTS = 2
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "500-before", times=3)

    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(provisioning.OutcomeUnknown):
            provisioning.customer_register(customer=customer)
        with pytest.raises(provisioning.OutcomeUnknown, match="used up"):
            provisioning.customer_retry(customer=customer)
        with pytest.raises(provisioning.OutcomeUnknown):
            provisioning.customer_retry(customer=customer)

    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == [settings.MANAGERS_EMAIL]
    assert customer.code in mailoutbox[0].subject
    assert Schedule.objects.count() == 1


def test_customer_retry_after_a_worker_died_mid_call_settles_the_stale_call(sandbox):
    customer = CustomerFactory()
    request = api.create_customer(
        customer_id=customer.code,
        name=customer.name,
        email=customer.admin_email,
        phone=customer.admin_phone,
        display_name=customer.admin_display_name,
    )
    # A worker committed the pending state and the call row, OneOffice applied the call, and
    # the worker died before recording the outcome.
    Customer.objects.filter(pk=customer.pk).update(status="pending", attempts=1)
    stale = ProvisioningCall.objects.create(
        method=request.method, params=request.params, customer=customer, status_before="draft"
    )
    api.OneOfficeClient(url=sandbox.url, api_key=API_KEY).send(request)
    customer.refresh_from_db()

    provisioning.customer_retry(customer=customer)

    stale.refresh_from_db()
    assert stale.outcome == Outcome.UNKNOWN
    assert "worker stopped" in stale.error
    customer.refresh_from_db()
    assert customer.status == Customer.Status.REGISTERED
    retry = _calls(customer)[-1]
    assert (retry.attempt, retry.settled_earlier, retry.params) == (2, True, stale.params)


def test_customer_retry_refuses_a_customer_with_nothing_pending(sandbox, registered_customer):
    with pytest.raises(provisioning.NotAllowed, match="nothing pending"):
        provisioning.customer_retry(customer=registered_customer)


def test_customer_retry_task_settles_once_and_ignores_a_stale_delivery(sandbox):
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "500-after")
    with pytest.raises(provisioning.OutcomeUnknown):
        provisioning.customer_register(customer=customer)

    assert tasks.customer_retry_task(customer.pk, 1) == f"{customer}: registered"
    sent = len(sandbox.requests)
    assert "nothing pending" in tasks.customer_retry_task(customer.pk, 1)
    assert _sent_since(sandbox, sent) == []


def test_customer_retry_task_overtaken_by_a_manual_retry_sends_nothing(sandbox):
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "500-before", times=2)
    with pytest.raises(provisioning.OutcomeUnknown):
        provisioning.customer_register(customer=customer)
    with pytest.raises(provisioning.OutcomeUnknown):
        provisioning.customer_retry(customer=customer)
    sent = len(sandbox.requests)

    assert "already retried" in tasks.customer_retry_task(customer.pk, 1)

    assert _sent_since(sandbox, sent) == []
    customer.refresh_from_db()
    assert customer.attempts == 2


# order_place ----------------------------------------------------------------------------------


def test_order_place_activates_the_order_with_its_first_term(sandbox, sales_user):
    with travel(2027, 1, 31):
        customer = service.registered()
        order = OrderFactory(customer=customer, product="oo-std", licenses=20)
        provisioning.order_place(order=order, by=sales_user)

    order.refresh_from_db()
    assert order.status == Order.Status.ACTIVE
    assert (order.term_start, order.term_end) == (date(2027, 1, 31), date(2027, 2, 28))
    assert order.current_term_end == date(2027, 2, 28)
    assert order.pending_action == ""
    _assert_mirrored(sandbox, order)
    [call] = _calls(order)
    assert call.method == ProvisioningCall.Method.CREATE_FIRST_ORDER
    assert call.params == sandbox.requests[-1]["json"]["params"]
    assert call.params == {
        "customer": customer.code,
        "id": order.number,
        "product": "oo-std",
        "licenses": 20,
        "duration": "monthly",
    }
    assert (call.outcome, call.http_status, call.response_body) == (Outcome.OK, 200, "true")
    assert call.customer == customer
    assert call.triggered_by == sales_user
    _assert_no_key(call)


@pytest.mark.parametrize(
    ("day", "duration", "end"),
    [
        (date(2028, 1, 31), "monthly", date(2028, 2, 29)),
        (date(2027, 12, 31), "monthly", date(2028, 1, 31)),
        (date(2028, 2, 29), "yearly", date(2029, 2, 28)),
        (date(2027, 6, 1), "yearly", date(2028, 6, 1)),
    ],
)
def test_order_place_term_follows_calendar_months_and_years(sandbox, day, duration, end):
    order = service.placed(day, duration=duration)

    assert (order.term_start, order.term_end, order.current_term_end) == (day, end, end)
    _assert_mirrored(sandbox, order)


def test_order_place_dates_the_term_in_the_portal_time_zone(sandbox, settings):
    settings.TIME_ZONE = "Pacific/Auckland"
    sandbox.tz = ZoneInfo("Pacific/Auckland")
    # 20:00 UTC on Jan 31 is already Feb 1 in Auckland.
    with time_machine.travel(datetime(2027, 1, 31, 20, tzinfo=UTC), tick=False):
        order = provisioning.order_place(order=OrderFactory(customer=service.registered()))

    assert (order.term_start, order.term_end) == (date(2027, 2, 1), date(2027, 3, 1))
    _assert_mirrored(sandbox, order)


@pytest.mark.parametrize("portal_zone", ["UTC", "America/New_York"])
def test_terms_follow_the_vendors_calendar_in_oneoffice_time_zone(sandbox, settings, portal_zone):
    settings.TIME_ZONE = portal_zone
    settings.ONEOFFICE_TIME_ZONE = "Asia/Tokyo"
    sandbox.tz = ZoneInfo("Asia/Tokyo")
    # 20:00 UTC on Jan 31 is already Feb 1 at the vendor (UTC+9), still Jan 31 for the portal.
    with time_machine.travel(datetime(2027, 1, 31, 20, tzinfo=UTC), tick=False):
        order = provisioning.order_place(order=OrderFactory(customer=service.registered()))
    with time_machine.travel(datetime(2027, 2, 13, 20, tzinfo=UTC), tick=False):
        # 15 days left at the vendor (Feb 14 -> Mar 1), 16 by the portal's calendar.
        renewal = provisioning.order_renew(order=order)

    assert (order.term_start, order.term_end) == (date(2027, 2, 1), date(2027, 3, 1))
    assert renewal.term_start == date(2027, 3, 1)
    _assert_mirrored(sandbox, order)


def test_order_place_uses_the_day_of_the_first_attempt_when_a_retry_settles_it(sandbox):
    with travel(2027, 1, 31, hour=23):
        order = OrderFactory(customer=service.registered())
        sandbox.inject("createFirstOrder", "500-after")
        with pytest.raises(provisioning.OutcomeUnknown):
            provisioning.order_place(order=order)
    order.refresh_from_db()
    assert (order.status, order.pending_action) == (Order.Status.PENDING, "place")

    with travel(2027, 2, 2):
        provisioning.order_retry(order=order)

    order.refresh_from_db()
    first, second = _calls(order)
    assert second.params == first.params
    assert second.settled_earlier is True
    assert (order.status, order.pending_action) == (Order.Status.ACTIVE, "")
    assert (order.term_start, order.term_end) == (date(2027, 1, 31), date(2027, 2, 28))
    _assert_mirrored(sandbox, order)


def test_order_place_refuses_when_the_customer_is_not_registered(sandbox):
    order = OrderFactory()

    with pytest.raises(provisioning.NotAllowed, match="not registered on OneOffice yet"):
        provisioning.order_place(order=order)

    order.refresh_from_db()
    assert order.status == Order.Status.DRAFT
    assert sandbox.requests == []
    assert _calls(order) == []


def test_order_place_refuses_when_the_customer_registration_is_pending(sandbox):
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "500-after")
    with pytest.raises(provisioning.OutcomeUnknown):
        provisioning.customer_register(customer=customer)
    sent = len(sandbox.requests)

    with pytest.raises(provisioning.NotAllowed, match="pending"):
        provisioning.order_place(order=OrderFactory(customer=customer))

    assert _sent_since(sandbox, sent) == []


@pytest.mark.parametrize("number", ["ORD 1", "ORD/1", "ÖRD-1", 'ORD"1'])
def test_order_place_refuses_an_invalid_order_id_locally(sandbox, registered_customer, number):
    order = OrderFactory(customer=registered_customer, number=number)
    sent = len(sandbox.requests)

    with pytest.raises(provisioning.InvalidInput, match="Order id:") as caught:
        provisioning.order_place(order=order)

    assert list(caught.value.errors) == ["number"]
    assert _sent_since(sandbox, sent) == []
    order.refresh_from_db()
    assert order.status == Order.Status.DRAFT


@pytest.mark.parametrize("state", ["active", "suspended", "cancelled"])
def test_order_place_refuses_a_placed_order(sandbox, order_in, state):
    order = order_in(state)
    sent, calls = len(sandbox.requests), len(_calls(order))

    with pytest.raises(provisioning.NotAllowed, match=state):
        provisioning.order_place(order=order)

    order.refresh_from_db()
    assert order.status == state
    assert _sent_since(sandbox, sent) == []
    assert len(_calls(order)) == calls


def test_order_place_refuses_a_renewal(sandbox):
    subscription = service.placed(date(2027, 1, 31))
    with travel(2027, 2, 20):
        renewal = provisioning.order_renew(order=subscription)

    with pytest.raises(provisioning.NotAllowed, match="is a renewal"):
        provisioning.order_place(order=renewal)


def test_order_place_refused_by_the_vendor_fails_with_its_words(sandbox, registered_customer):
    # Another customer already holds this order id on OneOffice.
    other = service.registered()
    provisioning.order_place(order=OrderFactory(customer=other, number="ORD-TAKEN"))
    Order.objects.filter(number="ORD-TAKEN").update(number="ORD-RENAMED")
    order = OrderFactory(customer=registered_customer, number="ORD-TAKEN")

    with pytest.raises(provisioning.VendorRefused) as caught:
        provisioning.order_place(order=order)

    words = 'duplicate key value violates unique constraint "orders_remote_id_key"'
    assert words in str(caught.value)
    order.refresh_from_db()
    assert (order.status, order.pending_action, order.last_error) == ("failed", "", words)
    assert order.term_start is None
    assert _calls(order)[-1].outcome == Outcome.REFUSED
    assert _vendor(sandbox, order)["customer"] == other.code


def test_order_place_of_a_failed_order_sends_again(sandbox, order_in):
    order = order_in("failed")

    provisioning.order_place(order=order)

    assert order.status == Order.Status.ACTIVE
    assert order.last_error == ""
    _assert_mirrored(sandbox, order)


def test_order_place_of_a_pending_order_resends_the_same_ids(sandbox, order_in):
    order = order_in("pending")

    provisioning.order_place(order=order)

    first, second = _calls(order)
    assert (first.params, second.settled_earlier) == (second.params, True)
    assert order.status == Order.Status.ACTIVE


def test_order_place_refuses_while_another_request_holds_the_lease(sandbox, registered_customer):
    order = OrderFactory(customer=registered_customer)
    Order.objects.filter(pk=order.pk).update(lease_until=timezone.now() + timedelta(minutes=1))
    sent = len(sandbox.requests)

    with pytest.raises(provisioning.Busy):
        provisioning.order_place(order=order)

    assert _sent_since(sandbox, sent) == []


# order_renew ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("placed", "renewed", "start", "end"),
    [
        # Ends Feb 28; exactly 15 days left on Feb 13.
        (date(2027, 1, 31), date(2027, 2, 13), date(2027, 2, 28), date(2027, 3, 28)),
        # Leap year: ends Feb 29; exactly 15 days left on Feb 14.
        (date(2028, 1, 31), date(2028, 2, 14), date(2028, 2, 29), date(2028, 3, 29)),
        # The last day of the term.
        (date(2027, 6, 1), date(2027, 7, 1), date(2027, 7, 1), date(2027, 8, 1)),
    ],
)
def test_order_renew_continues_the_term_inside_the_window(
    sandbox, sales_user, placed, renewed, start, end
):
    subscription = service.placed(placed)

    with travel(renewed.year, renewed.month, renewed.day):
        renewal = provisioning.order_renew(order=subscription, by=sales_user)

    subscription.refresh_from_db()
    assert renewal.parent == subscription
    assert renewal.number != subscription.number
    assert renewal.status == Order.Status.ACTIVE
    assert (renewal.term_start, renewal.term_end) == (start, end)
    assert renewal.current_term_end is None
    assert renewal.created_by == sales_user
    assert subscription.current_term_end == end
    assert subscription.status == Order.Status.ACTIVE
    _assert_mirrored(sandbox, subscription)
    _assert_mirrored(sandbox, renewal)
    [call] = _calls(renewal)
    assert call.method == ProvisioningCall.Method.CREATE_RENEWAL_ORDER
    assert call.params == {"parent": subscription.number, "id": renewal.number}
    assert sandbox.requests[-1]["json"]["params"] == call.params
    assert call.triggered_by == sales_user
    _assert_no_key(call)


def test_order_renew_yearly_from_a_leap_day(sandbox):
    subscription = service.placed(date(2028, 2, 29), duration="yearly")
    assert subscription.current_term_end == date(2029, 2, 28)

    with travel(2029, 2, 13):
        renewal = provisioning.order_renew(order=subscription)

    assert (renewal.term_start, renewal.term_end) == (date(2029, 2, 28), date(2030, 2, 28))
    _assert_mirrored(sandbox, subscription)


@pytest.mark.parametrize(
    ("placed", "asked", "end"),
    [
        (date(2027, 1, 31), date(2027, 2, 12), date(2027, 2, 28)),
        (date(2028, 1, 31), date(2028, 2, 13), date(2028, 2, 29)),
    ],
)
def test_order_renew_refuses_16_days_before_the_end_without_calling(sandbox, placed, asked, end):
    subscription = service.placed(placed)
    sent = len(sandbox.requests)

    with (
        travel(asked.year, asked.month, asked.day),
        pytest.raises(provisioning.NotAllowed, match="16 days left") as caught,
    ):
        provisioning.order_renew(order=subscription)

    assert "last 15 days" in str(caught.value)
    assert _sent_since(sandbox, sent) == []
    assert not subscription.renewals.exists()
    assert ProvisioningCall.objects.filter(method="createRenewalOrder").count() == 0
    subscription.refresh_from_db()
    assert subscription.current_term_end == end
    assert subscription.lease_until is None


def test_order_renew_right_after_placing_is_refused_locally(sandbox, active_order):
    sent = len(sandbox.requests)

    with pytest.raises(provisioning.NotAllowed, match="days left"):
        provisioning.order_renew(order=active_order)

    assert _sent_since(sandbox, sent) == []


def test_order_renew_a_second_time_in_the_same_window_is_refused_locally(sandbox):
    subscription = service.placed(date(2027, 1, 31))
    with travel(2027, 2, 20):
        provisioning.order_renew(order=subscription)
        sent = len(sandbox.requests)

        with pytest.raises(provisioning.NotAllowed, match="36 days left"):
            provisioning.order_renew(order=subscription)

    assert _sent_since(sandbox, sent) == []
    assert subscription.renewals.count() == 1


def test_order_renew_window_follows_the_setting(sandbox, settings):
    settings.ONEOFFICE_RENEWAL_WINDOW_DAYS = 20
    sandbox.renewal_window_days = 20
    subscription = service.placed(date(2027, 1, 31))

    with travel(2027, 2, 8):  # exactly 20 days left
        provisioning.order_renew(order=subscription)
        subscription.refresh_from_db()
        assert subscription.current_term_end == date(2027, 3, 28)

    with travel(2027, 3, 7), pytest.raises(provisioning.NotAllowed, match="21 days left"):
        provisioning.order_renew(order=subscription)


@pytest.mark.parametrize(
    ("asked", "end"),
    [(date(2027, 3, 10), date(2027, 4, 10)), (date(2027, 3, 31), date(2027, 4, 30))],
)
def test_order_renew_of_an_expired_subscription_starts_today(sandbox, asked, end):
    subscription = service.placed(date(2027, 1, 31))

    with travel(asked.year, asked.month, asked.day):
        renewal = provisioning.order_renew(order=subscription)

    assert (renewal.term_start, renewal.term_end) == (asked, end)
    subscription.refresh_from_db()
    assert subscription.current_term_end == end
    _assert_mirrored(sandbox, subscription)
    _assert_mirrored(sandbox, renewal)


def test_order_renew_keeps_product_licenses_and_duration(sandbox):
    subscription = service.placed(
        date(2027, 6, 1), duration="yearly", product="erp-admin", licenses=137
    )

    with travel(2028, 5, 25):
        renewal = provisioning.order_renew(order=subscription)

    assert (renewal.product, renewal.licenses, renewal.duration) == ("erp-admin", 137, "yearly")
    assert renewal.customer == subscription.customer
    assert set(_calls(renewal)[0].params) == {"parent", "id"}
    _assert_mirrored(sandbox, renewal)


def test_order_renew_of_a_suspended_subscription_reactivates_it(sandbox):
    subscription = service.placed(date(2027, 1, 31))
    with travel(2027, 2, 5):
        provisioning.order_suspend(order=subscription)
    assert _vendor(sandbox, subscription)["status"] == "suspended"

    with travel(2027, 2, 20):
        renewal = provisioning.order_renew(order=subscription)

    subscription.refresh_from_db()
    assert subscription.status == Order.Status.ACTIVE
    assert renewal.status == Order.Status.ACTIVE
    _assert_mirrored(sandbox, subscription)


def test_order_renew_refuses_a_cancelled_subscription_without_calling(sandbox, order_in):
    subscription = order_in("cancelled")
    sent = len(sandbox.requests)

    with pytest.raises(provisioning.NotAllowed, match="cancelled subscriptions cannot be renewed"):
        provisioning.order_renew(order=subscription)

    assert _sent_since(sandbox, sent) == []
    assert not subscription.renewals.exists()


@pytest.mark.parametrize("state", ["draft", "failed", "pending"])
def test_order_renew_refuses_a_subscription_that_is_not_placed(sandbox, order_in, state):
    subscription = order_in(state)
    sent = len(sandbox.requests)

    with pytest.raises(provisioning.NotAllowed, match="only active or suspended"):
        provisioning.order_renew(order=subscription)

    assert _sent_since(sandbox, sent) == []
    assert not subscription.renewals.exists()


def test_order_renew_of_a_renewal_is_refused(sandbox):
    subscription = service.placed(date(2027, 1, 31))
    with travel(2027, 2, 20):
        renewal = provisioning.order_renew(order=subscription)
    sent = len(sandbox.requests)

    with travel(2027, 3, 20), pytest.raises(provisioning.NotAllowed, match="is a renewal"):
        provisioning.order_renew(order=renewal)

    assert _sent_since(sandbox, sent) == []


def test_order_renew_refused_by_the_vendor_fails_the_renewal_only(sandbox):
    subscription = service.placed(date(2027, 1, 31))
    sandbox.renewal_window_days = 10  # OneOffice changed its rule without telling us

    with travel(2027, 2, 14), pytest.raises(provisioning.VendorRefused) as caught:
        provisioning.order_renew(order=subscription)

    assert "cannot renew: more than 10 days left on current term" in str(caught.value)
    renewal = subscription.renewals.get()
    subscription.refresh_from_db()
    assert (renewal.status, renewal.pending_action) == (Order.Status.FAILED, "")
    assert renewal.last_error == "cannot renew: more than 10 days left on current term"
    assert renewal.term_start is None
    assert subscription.status == Order.Status.ACTIVE
    assert subscription.current_term_end == date(2027, 2, 28)
    _assert_mirrored(sandbox, subscription)
    assert renewal.number not in sandbox.snapshot()["orders"]


def test_order_renew_after_an_unknown_outcome_resends_the_same_renewal(sandbox):
    subscription = service.placed(date(2027, 1, 31))
    with travel(2027, 2, 20):
        sandbox.inject("createRenewalOrder", "500-after")
        with pytest.raises(provisioning.OutcomeUnknown):
            provisioning.order_renew(order=subscription)
        renewal = subscription.renewals.get()
        assert (renewal.status, renewal.pending_action) == (Order.Status.PENDING, "renew")
        subscription.refresh_from_db()
        assert subscription.current_term_end == date(2027, 2, 28)

        again = provisioning.order_renew(order=subscription)

    assert again.pk == renewal.pk
    first, second = _calls(renewal)
    assert second.params == first.params == {"parent": subscription.number, "id": renewal.number}
    assert second.settled_earlier is True
    assert second.attempt == 2
    subscription.refresh_from_db()
    # The term moved on once, not twice.
    assert subscription.current_term_end == date(2027, 3, 28)
    assert subscription.renewals.count() == 1
    _assert_mirrored(sandbox, subscription)
    _assert_mirrored(sandbox, again)


def _ambiguous_renewal(sandbox, subscription) -> Order:
    """A renewal whose first attempt has an unknown outcome and whose retry OneOffice answers
    "more than 15 days left"."""
    with travel(2027, 2, 20), pytest.raises(provisioning.OutcomeUnknown):
        provisioning.order_renew(order=subscription)
    renewal = subscription.renewals.get()
    with travel(2027, 2, 21), pytest.raises(provisioning.NeedsDecisionError, match="mark it"):
        provisioning.order_renew(order=subscription)
    renewal.refresh_from_db()
    return renewal


def test_order_renew_retry_refused_as_too_early_needs_a_decision_not_done(
    sandbox, django_capture_on_commit_callbacks
):
    subscription = service.placed(date(2027, 1, 31))
    sandbox.inject("createRenewalOrder", "500-after")
    # A vendor that checks the window before the id answers the retry with the window rule.
    too_early = '"cannot renew: more than 15 days left on current term"'
    sandbox.inject("createRenewalOrder", "respond", status=400, body=too_early, times=2)
    renewal = _ambiguous_renewal(sandbox, subscription)

    assert renewal.status == Order.Status.PENDING
    assert _calls(renewal)[-1].outcome == ProvisioningCall.Outcome.AMBIGUOUS
    assert provisioning.order_needs_decision(renewal)
    subscription.refresh_from_db()
    assert subscription.current_term_end == date(2027, 2, 28)
    assert Order.objects.filter(Order.needs_attention_q(now=timezone.now())).get() == renewal
    # Not retried automatically, by the sweep neither: a person decides.
    with django_capture_on_commit_callbacks(execute=True):
        assert retries.retry_stranded() == 0
    with pytest.raises(provisioning.NotAllowed, match="already retried"):
        provisioning.order_retry(order=renewal, attempt=1)

    provisioning.order_resolve_renewal(renewal=renewal, renewed=True)

    renewal.refresh_from_db()
    subscription.refresh_from_db()
    assert renewal.status == Order.Status.ACTIVE
    assert subscription.current_term_end == date(2027, 3, 28)
    assert not provisioning.order_needs_decision(renewal)
    _assert_mirrored(sandbox, subscription)


def test_renewal_the_vendor_never_applied_is_resolved_as_not_renewed(sandbox, settings):
    # The vendor's "today" is in Tokyo while the portal dates terms in Los Angeles: placed at
    # 20:00 UTC on Jan 31, OneOffice's term ends Mar 1, the portal's Feb 28.
    settings.ONEOFFICE_TIME_ZONE = "America/Los_Angeles"
    sandbox.tz = ZoneInfo("Asia/Tokyo")
    with time_machine.travel(datetime(2027, 1, 31, 20, tzinfo=UTC), tick=False):
        subscription = provisioning.order_place(order=OrderFactory(customer=service.registered()))
    sandbox.inject("createRenewalOrder", "500-before")
    # Feb 13 on both calendars: 15 days left for the portal, 16 for OneOffice.
    with time_machine.travel(datetime(2027, 2, 13, 10, tzinfo=UTC), tick=False):
        with pytest.raises(provisioning.OutcomeUnknown):
            provisioning.order_renew(order=subscription)
        with pytest.raises(provisioning.NeedsDecisionError):
            provisioning.order_renew(order=subscription)
    renewal = subscription.renewals.get()
    assert renewal.status == Order.Status.PENDING

    provisioning.order_resolve_renewal(renewal=renewal, renewed=False)

    renewal.refresh_from_db()
    subscription.refresh_from_db()
    assert renewal.status == Order.Status.FAILED
    assert "not renewed" in renewal.last_error
    assert sandbox.snapshot()["orders"].keys() == {subscription.number}
    assert subscription.current_term_end == date(2027, 2, 28)
    with pytest.raises(provisioning.NotAllowed, match="awaiting a decision"):
        provisioning.order_resolve_renewal(renewal=renewal, renewed=True)


def test_order_renew_refused_as_too_early_after_an_unsent_attempt_fails(sandbox):
    subscription = service.placed(date(2027, 1, 31))
    sandbox.refuse_connections()
    with travel(2027, 2, 20), pytest.raises(provisioning.StillPending):
        provisioning.order_renew(order=subscription)
    sandbox.accept_connections()
    too_early = '"cannot renew: more than 15 days left on current term"'
    sandbox.inject("createRenewalOrder", "respond", status=400, body=too_early)

    with travel(2027, 2, 21), pytest.raises(provisioning.VendorRefused, match="more than 15"):
        provisioning.order_renew(order=subscription)

    renewal = subscription.renewals.get()
    assert renewal.status == Order.Status.FAILED
    assert not _calls(renewal)[-1].settled_earlier
    subscription.refresh_from_db()
    assert subscription.current_term_end == date(2027, 2, 28)
    _assert_mirrored(sandbox, subscription)


def test_order_retry_of_a_pending_renewal_settles_it(sandbox):
    subscription = service.placed(date(2027, 1, 31))
    sandbox.inject("createRenewalOrder", "drop-after")
    with travel(2027, 2, 20), pytest.raises(provisioning.OutcomeUnknown):
        provisioning.order_renew(order=subscription)
    renewal = subscription.renewals.get()

    with travel(2027, 2, 22):
        provisioning.order_retry(order=renewal)

    renewal.refresh_from_db()
    assert renewal.status == Order.Status.ACTIVE
    assert (renewal.term_start, renewal.term_end) == (date(2027, 2, 28), date(2027, 3, 28))
    _assert_mirrored(sandbox, renewal)


def test_order_renew_is_refused_while_a_renewal_of_it_is_leased(sandbox):
    subscription = service.placed(date(2027, 1, 31))
    Order.objects.filter(pk=subscription.pk).update(
        lease_until=timezone.now() + timedelta(days=400)
    )
    sent = len(sandbox.requests)

    with travel(2027, 2, 20), pytest.raises(provisioning.Busy):
        provisioning.order_renew(order=subscription)

    assert _sent_since(sandbox, sent) == []
    assert not subscription.renewals.exists()


# order_cancel and order_suspend ---------------------------------------------------------------


@pytest.mark.parametrize("state", ["active", "suspended"])
def test_order_cancel_cancels_the_subscription(sandbox, order_in, sales_user, state):
    subscription = order_in(state)

    provisioning.order_cancel(order=subscription, by=sales_user)

    subscription.refresh_from_db()
    assert (subscription.status, subscription.pending_action) == (Order.Status.CANCELLED, "")
    _assert_mirrored(sandbox, subscription)
    call = _calls(subscription)[-1]
    assert call.method == ProvisioningCall.Method.CANCEL_ORDER
    assert call.params == {"id": subscription.number}
    assert (call.outcome, call.status_before, call.triggered_by) == (Outcome.OK, state, sales_user)
    _assert_no_key(call)


def test_order_suspend_suspends_an_active_subscription(sandbox, active_order, sales_user):
    provisioning.order_suspend(order=active_order, by=sales_user)

    active_order.refresh_from_db()
    assert active_order.status == Order.Status.SUSPENDED
    _assert_mirrored(sandbox, active_order)
    call = _calls(active_order)[-1]
    assert (call.method, call.params) == ("suspendOrder", {"id": active_order.number})
    assert call.outcome == Outcome.OK


@pytest.mark.parametrize(
    ("operation", "method", "state"),
    [
        (provisioning.order_cancel, "cancelOrder", "active"),
        (provisioning.order_cancel, "cancelOrder", "suspended"),
        (provisioning.order_suspend, "suspendOrder", "active"),
    ],
)
def test_order_cancel_and_suspend_refused_by_the_vendor_restore_the_status(
    sandbox, order_in, operation, method, state
):
    subscription = order_in(state)
    sandbox.inject(method, "respond", status=409, body='{"message": "order is locked"}')

    with pytest.raises(provisioning.VendorRefused, match="order is locked"):
        operation(order=subscription)

    subscription.refresh_from_db()
    assert (subscription.status, subscription.pending_action) == (state, "")
    assert subscription.last_error == "order is locked"
    assert _calls(subscription)[-1].outcome == Outcome.REFUSED
    _assert_mirrored(sandbox, subscription)


@pytest.mark.parametrize(
    ("operation", "state"),
    [
        (provisioning.order_cancel, "draft"),
        (provisioning.order_cancel, "failed"),
        (provisioning.order_cancel, "pending"),
        (provisioning.order_cancel, "cancelled"),
        (provisioning.order_suspend, "draft"),
        (provisioning.order_suspend, "failed"),
        (provisioning.order_suspend, "pending"),
        (provisioning.order_suspend, "suspended"),
        (provisioning.order_suspend, "cancelled"),
    ],
)
def test_order_cancel_and_suspend_refuse_a_wrong_state_without_calling(
    sandbox, order_in, operation, state
):
    subscription = order_in(state)
    sent, calls = len(sandbox.requests), len(_calls(subscription))

    with pytest.raises(provisioning.NotAllowed, match="does not allow this action"):
        operation(order=subscription)

    subscription.refresh_from_db()
    assert subscription.status == state
    assert _sent_since(sandbox, sent) == []
    assert len(_calls(subscription)) == calls


@pytest.mark.parametrize("operation", [provisioning.order_cancel, provisioning.order_suspend])
def test_order_cancel_and_suspend_refuse_a_renewal(sandbox, operation):
    subscription = service.placed(date(2027, 1, 31))
    with travel(2027, 2, 20):
        renewal = provisioning.order_renew(order=subscription)

    with pytest.raises(provisioning.NotAllowed, match="is a renewal"):
        operation(order=renewal)


@pytest.mark.parametrize("operation", [provisioning.order_cancel, provisioning.order_suspend])
def test_order_cancel_and_suspend_wait_for_an_unsettled_renewal(sandbox, operation):
    subscription = service.placed(date(2027, 1, 31))
    with travel(2027, 2, 20):
        sandbox.inject("createRenewalOrder", "500-after")
        with pytest.raises(provisioning.OutcomeUnknown):
            provisioning.order_renew(order=subscription)
        sent = len(sandbox.requests)

        with pytest.raises(provisioning.NotAllowed, match="not settled yet"):
            operation(order=subscription)

    assert _sent_since(sandbox, sent) == []
    subscription.refresh_from_db()
    assert subscription.status == Order.Status.ACTIVE


@pytest.mark.parametrize(
    ("operation", "method", "done"),
    [
        (provisioning.order_cancel, "cancelOrder", "cancelled"),
        (provisioning.order_suspend, "suspendOrder", "suspended"),
    ],
)
def test_order_retry_settles_an_unknown_cancel_or_suspend(
    sandbox, active_order, operation, method, done
):
    sandbox.inject(method, "500-after")
    with pytest.raises(provisioning.OutcomeUnknown):
        operation(order=active_order)
    active_order.refresh_from_db()
    assert (active_order.status, active_order.pending_action) == ("pending", method[:-5])

    provisioning.order_retry(order=active_order)

    active_order.refresh_from_db()
    assert (active_order.status, active_order.pending_action) == (done, "")
    last = _calls(active_order)[-1]
    assert last.settled_earlier is True
    assert f"already {done}" in last.error
    assert last.status_before == "active"
    _assert_mirrored(sandbox, active_order)


def test_order_suspend_not_applied_and_refused_on_retry_goes_back(sandbox, active_order):
    # A 500 before applying, then a plain refusal: nothing landed, so the status is restored.
    sandbox.inject("suspendOrder", "500-before")
    with pytest.raises(provisioning.OutcomeUnknown):
        provisioning.order_suspend(order=active_order)
    sandbox.inject("suspendOrder", "respond", status=400, body='"order is locked"')

    with pytest.raises(provisioning.VendorRefused):
        provisioning.order_retry(order=active_order)

    active_order.refresh_from_db()
    assert (active_order.status, active_order.pending_action) == ("active", "")
    _assert_mirrored(sandbox, active_order)


def test_order_retry_refuses_an_order_with_nothing_pending(sandbox, active_order):
    with pytest.raises(provisioning.NotAllowed, match="nothing pending"):
        provisioning.order_retry(order=active_order)


def test_order_retry_task_settles_a_pending_order(sandbox, order_in):
    order = order_in("pending")

    assert tasks.order_retry_task(order.pk, 1) == f"{order}: active"

    order.refresh_from_db()
    assert order.status == Order.Status.ACTIVE


# The call log over a whole life ---------------------------------------------------------------


def test_every_call_of_a_subscription_is_recorded_as_sent(sandbox, sales_user):
    with travel(2027, 1, 31):
        customer = provisioning.customer_register(customer=CustomerFactory(), by=sales_user)
        order = provisioning.order_place(order=OrderFactory(customer=customer), by=sales_user)
    with travel(2027, 2, 20):
        renewal = provisioning.order_renew(order=order, by=sales_user)
        provisioning.order_suspend(order=order, by=sales_user)
        provisioning.order_cancel(order=order, by=sales_user)

    calls = list(ProvisioningCall.objects.order_by("id"))
    assert [c.method for c in calls] == [
        "createCustomer",
        "createFirstOrder",
        "createRenewalOrder",
        "suspendOrder",
        "cancelOrder",
    ]
    assert [c.params for c in calls] == [r["json"]["params"] for r in sandbox.requests]
    assert [c.order for c in calls] == [None, order, renewal, order, order]
    assert {c.customer for c in calls} == {customer}
    for call in calls:
        assert (call.outcome, call.http_status, call.attempt) == (Outcome.OK, 200, 1)
        assert call.triggered_by == sales_user
        assert call.duration_ms is not None
        _assert_no_key(call)
    order.refresh_from_db()
    assert order.status == Order.Status.CANCELLED
    _assert_mirrored(sandbox, order)
    _assert_mirrored(sandbox, renewal)


@pytest.mark.parametrize(
    ("button", "status"), [("mark_renewed", "active"), ("mark_not_renewed", "failed")]
)
def test_admin_resolves_an_ambiguous_renewal_after_confirmation(
    client, sales_user, manager_user, sandbox, button, status
):
    from tests.admin_urls import button_url, change_url

    subscription = service.placed(date(2027, 1, 31))
    sandbox.inject("createRenewalOrder", "500-after")
    too_early = '"cannot renew: more than 15 days left on current term"'
    sandbox.inject("createRenewalOrder", "respond", status=400, body=too_early)
    renewal = _ambiguous_renewal(sandbox, subscription)
    url = button_url(renewal, button)

    client.force_login(manager_user)
    assert client.post(url).status_code == 403
    client.force_login(sales_user)
    assert url in client.get(change_url(renewal)).content.decode()
    assert "Check with OneOffice first" in client.get(url).content.decode()
    renewal.refresh_from_db()
    assert renewal.status == Order.Status.PENDING  # the confirmation page changes nothing

    response = client.post(url, follow=True)

    renewal.refresh_from_db()
    assert renewal.status == status
    assert [m.level_tag for m in response.context["messages"]] == ["success"]
    page = client.get(change_url(renewal)).content.decode()
    assert renewal.number in page
    assert url not in page
