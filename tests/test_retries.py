"""Automatic retries across operations, the sweep for stranded calls, and what settles a retry."""

import ast
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.models import Schedule

from customers.models import Customer
from orders.models import Order
from portal import provisioning, tasks
from portal.models import ProvisioningCall
from portal.provisioning import retries
from tests.admin_urls import change_url
from tests.factories import CustomerFactory, UserFactory

Outcome = ProvisioningCall.Outcome
pytestmark = pytest.mark.django_db


def _retry_args() -> list[tuple]:
    return sorted(ast.literal_eval(s.args) for s in Schedule.objects.all())


def test_every_unsettled_operation_on_one_order_gets_its_own_retry(
    sandbox, active_order, django_capture_on_commit_callbacks
):
    sandbox.inject("suspendOrder", "500-after")
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(provisioning.OutcomeUnknown):
            provisioning.order_suspend(order=active_order)
        tasks.order_retry_task(active_order.pk, 1)
    active_order.refresh_from_db()
    assert active_order.status == Order.Status.SUSPENDED

    sandbox.inject("cancelOrder", "500-before")
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(provisioning.OutcomeUnknown),
    ):
        provisioning.order_cancel(order=active_order)

    cancel_call = ProvisioningCall.objects.filter(method="cancelOrder").get()
    names = set(Schedule.objects.values_list("name", flat=True))
    assert f"retry order {active_order.pk} after call {cancel_call.pk}" in names
    assert len(names) == 2


def test_retry_stranded_schedules_a_call_left_in_flight_by_a_dead_process(sandbox):
    customer = CustomerFactory(status=Customer.Status.PENDING, attempts=1)
    call = ProvisioningCall.objects.create(
        method="createCustomer", params={"id": customer.code}, customer=customer
    )

    assert retries.retry_stranded() == 1
    assert retries.retry_stranded() == 0

    schedule = Schedule.objects.get()
    assert schedule.name == f"retry customer {customer.pk} after call {call.pk}"
    assert ast.literal_eval(schedule.args) == (customer.pk, 1)
    assert schedule.next_run <= timezone.now()

    tasks.customer_retry_task(*ast.literal_eval(schedule.args))
    customer.refresh_from_db()
    call.refresh_from_db()
    assert customer.status == Customer.Status.REGISTERED
    assert call.outcome == Outcome.UNKNOWN
    assert list(sandbox.snapshot()["customers"]) == [customer.code]


@pytest.mark.parametrize(
    ("lease", "outcome", "attempts"),
    [
        (timedelta(minutes=1), Outcome.IN_FLIGHT, 1),  # a live call is working on it
        (None, Outcome.CONFIG_ERROR, 1),  # a person must fix the settings first
        (None, Outcome.UNKNOWN, 5),  # automatic attempts used up: it needs attention
    ],
)
def test_retry_stranded_leaves_what_is_not_stranded(sandbox, settings, lease, outcome, attempts):
    settings.ONEOFFICE_RETRY_MAX_ATTEMPTS = 5
    customer = CustomerFactory(
        status=Customer.Status.PENDING,
        attempts=attempts,
        lease_until=timezone.now() + lease if lease else None,
    )
    ProvisioningCall.objects.create(
        method="createCustomer", params={}, customer=customer, outcome=outcome
    )

    assert retries.retry_stranded() == 0
    assert not Schedule.objects.exists()


def test_retry_stranded_skips_a_call_whose_retry_is_already_scheduled(
    sandbox, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "500-after")
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(provisioning.OutcomeUnknown),
    ):
        provisioning.customer_register(customer=customer)

    assert retries.retry_stranded() == 0
    assert _retry_args() == [(customer.pk, 1)]


def test_setup_schedules_registers_the_stranded_call_sweep(db):
    from django.core.management import call_command

    call_command("setup_schedules", verbosity=0, stdout=None)
    sweep = Schedule.objects.get(func="portal.tasks.retry_stranded_task")
    assert sweep.schedule_type == Schedule.MINUTES
    assert sweep.next_run > timezone.now()

    call_command("setup_schedules", verbosity=0, stdout=None)
    assert Schedule.objects.filter(func="portal.tasks.retry_stranded_task").count() == 1


def test_email_duplicate_on_a_retry_does_not_pass_for_our_id(sandbox):
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "500-before")
    with pytest.raises(provisioning.OutcomeUnknown):
        provisioning.customer_register(customer=customer)
    sandbox.inject(
        "createCustomer",
        "respond",
        status=400,
        body='"duplicate key value violates unique constraint \\"users_email\\""',
    )

    with pytest.raises(provisioning.VendorRefused, match="users_email"):
        provisioning.customer_retry(customer=customer)

    customer.refresh_from_db()
    assert customer.status == Customer.Status.FAILED
    assert not ProvisioningCall.objects.filter(settled_earlier=True).exists()


@pytest.mark.django_db(transaction=True)
def test_admin_save_of_a_form_read_before_a_settle_keeps_the_settle(rf, superuser, sandbox):
    from django.contrib import admin as django_admin

    from tests.test_races import _in_thread, _wait_for_request

    sandbox.slow_seconds = 1.0
    sandbox.inject("createCustomer", "slow")
    customer = CustomerFactory()
    manager = UserFactory(username="amy")
    thread, _ = _in_thread(
        lambda: provisioning.customer_register(customer=Customer.objects.get(pk=customer.pk))
    )
    _wait_for_request(sandbox, "createCustomer")
    # The edit form is read while the registration is on the wire, and saved after it settled.
    modeladmin = django_admin.site._registry[Customer]
    request = rf.post("/")
    request.user = superuser
    read = Customer.objects.get(pk=customer.pk)
    assert read.status == Customer.Status.PENDING
    form = modeladmin.get_form(request, read, change=True)(
        {"account_manager": manager.pk}, instance=read
    )
    assert form.is_valid(), form.errors
    thread.join(timeout=30)
    modeladmin.save_model(request, form.save(commit=False), form, True)

    saved = Customer.objects.get(pk=customer.pk)
    assert saved.account_manager == manager
    assert saved.status == Customer.Status.REGISTERED
    assert saved.oneoffice_id == "1"


def test_customer_settled_by_duplicate_id_says_its_details_are_unknown(client, superuser, sandbox):
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "500-after")
    with pytest.raises(provisioning.OutcomeUnknown):
        provisioning.customer_register(customer=customer)

    provisioning.customer_retry(customer=customer)

    customer.refresh_from_db()
    assert customer.status == Customer.Status.REGISTERED
    assert customer.details_unknown is True
    assert customer.oneoffice_id == ""
    client.force_login(superuser)
    page = client.get(change_url(customer)).content.decode()
    assert "OneOffice details unknown" in page


def test_customer_registered_with_a_reply_has_its_details_known(sandbox):
    customer = provisioning.customer_register(customer=CustomerFactory())

    assert customer.details_unknown is False
    assert customer.oneoffice_id == "1"


def test_renewal_on_the_wire_neither_needs_attention_nor_gets_a_sweep_retry(sandbox, active_order):
    renewal = Order.objects.create(
        number="O-RENEWAL",
        customer=active_order.customer,
        parent=active_order,
        product=active_order.product,
        licenses=active_order.licenses,
        duration=active_order.duration,
        status=Order.Status.PENDING,
        pending_action=Order.Action.RENEW,
        attempts=1,
    )
    ProvisioningCall.objects.create(method="createRenewalOrder", params={}, order=renewal)
    # The renewal's call runs under its subscription's lease.
    Order.objects.filter(pk=active_order.pk).update(
        lease_until=timezone.now() + timedelta(minutes=1)
    )
    now = timezone.now()

    assert not Order.objects.filter(Order.needs_attention_q(now=now)).exists()
    assert retries.retry_stranded() == 0

    Order.objects.filter(pk=active_order.pk).update(lease_until=None)
    assert Order.objects.filter(Order.needs_attention_q(now=now)).get() == renewal
    assert retries.retry_stranded() == 1


def test_retry_stranded_makes_a_constant_number_of_queries(sandbox, django_assert_max_num_queries):
    for _ in range(12):
        customer = CustomerFactory(status=Customer.Status.PENDING, attempts=1)
        ProvisioningCall.objects.create(method="createCustomer", params={}, customer=customer)

    with django_assert_max_num_queries(5):
        assert retries.retry_stranded() == 12
    with django_assert_max_num_queries(5):
        assert retries.retry_stranded() == 0


def test_setup_schedules_runs_the_sweep_every_oneoffice_sweep_minutes(db, settings):
    from django.core.management import call_command

    settings.ONEOFFICE_SWEEP_MINUTES = 3
    call_command("setup_schedules", verbosity=0, stdout=None)

    assert Schedule.objects.get(func="portal.tasks.retry_stranded_task").minutes == 3
