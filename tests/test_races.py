"""Double clicks and races: requests about one object that overlap send one vendor call.

These run with real transactions and real threads, each on its own database connection, on
SQLite (file, WAL, IMMEDIATE) and on PostgreSQL. The sandbox answers slowly so that the calls
really overlap: the first one is still on the wire when the others arrive.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from customers.models import Customer
from orders.models import Order
from portal import provisioning, tasks
from portal.models import ProvisioningCall
from tests import service
from tests.admin_urls import change_url
from tests.factories import CustomerFactory, OrderFactory, UserFactory
from tests.test_faults import assert_mirrors_sandbox

pytestmark = pytest.mark.django_db(transaction=True)

SLOW = 0.3


@pytest.fixture
def slow_vendor(settings, sandbox):
    sandbox.slow_seconds = SLOW
    # A fresh monthly subscription is inside this window, so it can be renewed today.
    settings.ONEOFFICE_RENEWAL_WINDOW_DAYS = 40
    sandbox.renewal_window_days = 40
    return sandbox


def at_once(*calls: Callable[[], object]) -> list[object]:
    """Run the calls in threads released together; each result or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    return results


def requests_for(sandbox, method: str) -> int:
    return sum(1 for r in sandbox.requests if r["rpc_method"] == method)


def _setup(method: str) -> tuple[Callable[[], object], Callable[[], object]]:
    """(the service call, reading its object afresh), each usable from any thread."""
    if method == "createCustomer":
        pk = CustomerFactory().pk
        return (
            lambda: provisioning.customer_register(customer=Customer.objects.get(pk=pk)),
            lambda: Customer.objects.get(pk=pk),
        )
    if method == "createFirstOrder":
        customer = provisioning.customer_register(customer=CustomerFactory())
        pk = OrderFactory(customer=customer).pk
        return (
            lambda: provisioning.order_place(order=Order.objects.get(pk=pk)),
            lambda: Order.objects.get(pk=pk),
        )
    pk = service.placed().pk
    operation = {
        "createRenewalOrder": provisioning.order_renew,
        "cancelOrder": provisioning.order_cancel,
        "suspendOrder": provisioning.order_suspend,
    }[method]
    return (lambda: operation(order=Order.objects.get(pk=pk)), lambda: Order.objects.get(pk=pk))


def _one_done_rest_busy(results: list[object]) -> None:
    done = [r for r in results if not isinstance(r, Exception)]
    busy = [r for r in results if isinstance(r, provisioning.Busy)]
    assert len(done) == 1, results
    assert len(busy) == len(results) - 1, results


METHODS = [
    "createCustomer",
    "createFirstOrder",
    "createRenewalOrder",
    "cancelOrder",
    "suspendOrder",
]


@pytest.mark.parametrize("method", METHODS)
def test_double_click_sends_one_request(slow_vendor, method):
    run, _ = _setup(method)
    slow_vendor.requests.clear()
    slow_vendor.inject(method, "slow")

    results = at_once(run, run)

    _one_done_rest_busy(results)
    assert requests_for(slow_vendor, method) == 1
    assert ProvisioningCall.objects.filter(method=method).count() == 1
    assert_mirrors_sandbox(slow_vendor)


def test_four_clicks_on_renew_make_one_renewal(slow_vendor):
    run, subscription = _setup("createRenewalOrder")
    slow_vendor.inject("createRenewalOrder", "slow")

    results = at_once(run, run, run, run)

    _one_done_rest_busy(results)
    assert requests_for(slow_vendor, "createRenewalOrder") == 1
    assert Order.objects.filter(parent=subscription()).count() == 1
    assert_mirrors_sandbox(slow_vendor)


def test_cancel_while_renewal_on_the_wire_is_busy(slow_vendor):
    renew, subscription = _setup("createRenewalOrder")
    pk = subscription().pk
    slow_vendor.requests.clear()
    slow_vendor.inject("createRenewalOrder", "slow")
    slow_vendor.inject("cancelOrder", "slow")

    results = at_once(renew, lambda: provisioning.order_cancel(order=Order.objects.get(pk=pk)))

    _one_done_rest_busy(results)
    assert len(slow_vendor.requests) == 1
    assert_mirrors_sandbox(slow_vendor)


RETRY_CASES = [
    ("createCustomer", "customer"),
    ("createFirstOrder", "order"),
    ("createRenewalOrder", "order"),
    ("cancelOrder", "order"),
    ("suspendOrder", "order"),
]


def _leave_pending(sandbox, method: str):
    """Run `method` into an unknown outcome; return a reader for the object left pending."""
    run, subject = _setup(method)
    sandbox.inject(method, "500-before")
    with pytest.raises(provisioning.OutcomeUnknown):
        run()
    if method == "createRenewalOrder":
        parent = subject().pk
        return lambda: Order.objects.get(parent_id=parent)
    return subject


@pytest.mark.parametrize(("method", "kind"), RETRY_CASES)
def test_retry_task_delivered_twice_sends_one_request(slow_vendor, method, kind):
    subject = _leave_pending(slow_vendor, method)
    pending = subject()
    task = getattr(tasks, f"{kind}_retry_task")
    slow_vendor.requests.clear()
    slow_vendor.inject(method, "slow")

    results = at_once(lambda: task(pending.pk, 1), lambda: task(pending.pk, 1))

    assert requests_for(slow_vendor, method) == 1
    assert all(isinstance(r, str) for r in results), results
    assert sum("another request" in r or "already retried" in r for r in results) == 1, results
    assert subject().attempts == 2
    assert_mirrors_sandbox(slow_vendor)


@pytest.mark.parametrize(("method", "kind"), RETRY_CASES)
def test_retry_click_while_scheduled_retry_runs_sends_one_request(slow_vendor, method, kind):
    subject = _leave_pending(slow_vendor, method)
    pending = subject()
    user = UserFactory(username="clicker")
    task = getattr(tasks, f"{kind}_retry_task")
    service = getattr(provisioning, f"{kind}_retry")
    slow_vendor.requests.clear()
    slow_vendor.inject(method, "slow")

    def click():
        return service(**{kind: type(pending).objects.get(pk=pending.pk)}, by=user)

    results = at_once(lambda: task(pending.pk, 1), click)

    assert requests_for(slow_vendor, method) == 1
    assert sum(isinstance(r, provisioning.ProvisioningError) for r in results) <= 1, results
    assert_mirrors_sandbox(slow_vendor)
    calls = ProvisioningCall.objects.filter(method=method).order_by("attempt")
    assert [c.outcome for c in calls] == [ProvisioningCall.Outcome.UNKNOWN, "ok"]


def test_two_pending_renewals_are_refused_by_the_database():
    subscription = OrderFactory(status=Order.Status.ACTIVE)
    renewal = {
        "customer": subscription.customer,
        "parent": subscription,
        "status": Order.Status.PENDING,
        "pending_action": Order.Action.RENEW,
    }
    OrderFactory(**renewal)

    with pytest.raises(IntegrityError), transaction.atomic():
        OrderFactory(**renewal)

    # Settled renewals do not count: the constraint is on pending ones only.
    OrderFactory(**{**renewal, "status": Order.Status.ACTIVE, "pending_action": ""})
    OrderFactory(**{**renewal, "status": Order.Status.FAILED, "pending_action": ""})
    assert Order.objects.filter(parent=subscription).count() == 3


def test_lease_of_a_crashed_worker_expires_and_the_retry_settles(sandbox):
    customer = CustomerFactory()
    sandbox.inject("createCustomer", "500-after")
    with pytest.raises(provisioning.OutcomeUnknown):
        provisioning.customer_register(customer=customer)
    # A worker died mid-call on attempt 2: its call stays in flight and its lease lapsed.
    ProvisioningCall.objects.create(
        method="createCustomer",
        params=ProvisioningCall.objects.get().params,
        customer=customer,
        attempt=2,
    )
    Customer.objects.filter(pk=customer.pk).update(
        attempts=2, lease_until=timezone.now() - timedelta(seconds=1)
    )

    provisioning.customer_retry(customer=Customer.objects.get(pk=customer.pk))

    assert_mirrors_sandbox(sandbox)
    outcomes = list(
        ProvisioningCall.objects.order_by("attempt").values_list("outcome", "settled_earlier")
    )
    assert outcomes == [("unknown", False), ("unknown", False), ("ok", True)]


def test_race_database_lets_threads_write_side_by_side():
    # What the races above rely on: threads on their own connections to one shared database.
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
        assert connection.settings_dict["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
        assert not connection.is_in_memory_db()
    else:
        assert connection.vendor == "postgresql"


def _in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    result: list[object] = []

    def run() -> None:
        try:
            result.append(call())
        except Exception as exc:
            result.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def _wait_for_request(sandbox, method: str) -> None:
    deadline = time.monotonic() + 10
    while requests_for(sandbox, method) == 0:
        assert time.monotonic() < deadline, f"{method} never reached the sandbox"
        time.sleep(0.01)


def _form_data(client, url: str) -> dict:
    context = client.get(url).context
    form = context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    for inline in context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update(
            {management[name].html_name: management[name].value() for name in management.fields}
        )
    return data


@pytest.mark.parametrize(("field", "value"), [("number", "RENAMED-1"), ("licenses", 77)])
def test_edit_form_opened_while_draft_cannot_change_an_order_being_placed(
    client, superuser, slow_vendor, field, value
):
    slow_vendor.slow_seconds = 1.0
    customer = provisioning.customer_register(customer=CustomerFactory())
    order = OrderFactory(customer=customer)
    client.force_login(superuser)
    url = change_url(order)
    data = _form_data(client, url)  # opened while the order is a draft
    data[field] = value

    thread, result = _in_thread(
        lambda: provisioning.order_place(order=Order.objects.get(pk=order.pk))
    )
    _wait_for_request(slow_vendor, "createFirstOrder")
    response = client.post(url, data, follow=True)
    thread.join(timeout=30)

    messages = [(m.level_tag, str(m)) for m in response.context["messages"]]
    assert messages[0][0] == "error"
    assert "nothing was saved" in messages[0][1]
    assert isinstance(result[0], Order) and result[0].status == Order.Status.ACTIVE
    saved = Order.objects.get(pk=order.pk)
    assert (saved.number, saved.licenses) == (order.number, order.licenses)
    assert list(slow_vendor.snapshot()["orders"]) == [order.number]
    assert slow_vendor.snapshot()["orders"][order.number]["licenses"] == order.licenses
    assert not LogEntry.objects.exists()


def test_edit_form_opened_while_draft_cannot_change_a_customer_being_registered(
    client, superuser, slow_vendor
):
    slow_vendor.slow_seconds = 1.0
    customer = CustomerFactory()
    client.force_login(superuser)
    url = change_url(customer)
    data = _form_data(client, url)
    data["code"] = "RENAMED-C"

    thread, result = _in_thread(
        lambda: provisioning.customer_register(customer=Customer.objects.get(pk=customer.pk))
    )
    _wait_for_request(slow_vendor, "createCustomer")
    response = client.post(url, data, follow=True)
    thread.join(timeout=30)

    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    assert Customer.objects.get(pk=customer.pk).code == customer.code
    assert list(slow_vendor.snapshot()["customers"]) == [customer.code]
    assert result[0].status == Customer.Status.REGISTERED


def test_edit_form_still_saves_a_field_that_is_not_sent_while_a_call_is_on_the_wire(
    client, superuser, slow_vendor
):
    slow_vendor.slow_seconds = 1.0
    customer = CustomerFactory()
    manager = UserFactory(username="amy")
    client.force_login(superuser)
    url = change_url(customer)
    data = _form_data(client, url)
    data["account_manager"] = manager.pk

    thread, _ = _in_thread(
        lambda: provisioning.customer_register(customer=Customer.objects.get(pk=customer.pk))
    )
    _wait_for_request(slow_vendor, "createCustomer")
    response = client.post(url, data, follow=True)
    thread.join(timeout=30)

    assert [m.level_tag for m in response.context["messages"]] == ["success"]
    saved = Customer.objects.get(pk=customer.pk)
    assert saved.account_manager == manager
    assert saved.status == Customer.Status.REGISTERED


def test_change_form_validated_while_draft_cannot_rename_an_order_being_placed(
    rf, superuser, slow_vendor
):
    from django.contrib import admin as django_admin

    slow_vendor.slow_seconds = 1.0
    customer = provisioning.customer_register(customer=CustomerFactory())
    order = OrderFactory(customer=customer)
    modeladmin = django_admin.site._registry[Order]
    request = rf.post("/")
    request.user = superuser
    opened = Order.objects.get(pk=order.pk)
    form_class = modeladmin.get_form(request, opened, change=True)
    data = {
        "customer": customer.pk,
        "number": "RENAMED-1",
        "product": order.product,
        "licenses": 77,
        "duration": order.duration,
    }
    form = form_class(data, instance=opened)
    assert form.is_valid(), form.errors  # validated while the order is a draft

    thread, result = _in_thread(
        lambda: provisioning.order_place(order=Order.objects.get(pk=order.pk))
    )
    _wait_for_request(slow_vendor, "createFirstOrder")
    modeladmin.save_model(request, form.save(commit=False), form, True)
    thread.join(timeout=30)

    assert request._edit_refused
    saved = Order.objects.get(pk=order.pk)
    assert (saved.number, saved.licenses, saved.status) == (order.number, 20, Order.Status.ACTIVE)
    assert slow_vendor.snapshot()["orders"][order.number]["licenses"] == 20
    assert result[0].number == order.number


def _lapse_and_take_lease(order_pk: int, **changes: object):
    """What another process does once this one's lease lapsed under a stalled call: it takes
    the lease itself and changes the row. Returns its lease."""
    theirs = (timezone.now() + timedelta(minutes=5)).replace(microsecond=0)
    Order.objects.filter(pk=order_pk).update(lease_until=theirs, **changes)
    return theirs


def test_renewal_answered_after_its_lease_lapsed_builds_on_the_row_and_keeps_the_new_lease(
    slow_vendor,
):
    slow_vendor.slow_seconds = 1.0
    pk = service.placed().pk
    slow_vendor.inject("createRenewalOrder", "slow")
    thread, result = _in_thread(lambda: provisioning.order_renew(order=Order.objects.get(pk=pk)))
    _wait_for_request(slow_vendor, "createRenewalOrder")
    moved_end = Order.objects.get(pk=pk).current_term_end + timedelta(days=31)
    theirs = _lapse_and_take_lease(pk, current_term_end=moved_end)
    thread.join(timeout=30)

    renewal = result[0]
    assert isinstance(renewal, Order), renewal
    subscription = Order.objects.get(pk=pk)
    # The term follows the row as it stands, not what this process read before its call.
    assert renewal.term_start == moved_end
    assert subscription.current_term_end == renewal.term_end
    # The other process's lease is its own to free.
    assert subscription.lease_until == theirs


def test_suspension_answered_after_its_lease_lapsed_keeps_the_new_lease(slow_vendor):
    slow_vendor.slow_seconds = 1.0
    pk = service.placed().pk
    slow_vendor.inject("suspendOrder", "slow")
    thread, result = _in_thread(lambda: provisioning.order_suspend(order=Order.objects.get(pk=pk)))
    _wait_for_request(slow_vendor, "suspendOrder")
    theirs = _lapse_and_take_lease(pk)
    thread.join(timeout=30)

    assert isinstance(result[0], Order), result[0]
    subscription = Order.objects.get(pk=pk)
    assert subscription.status == Order.Status.SUSPENDED
    assert subscription.lease_until == theirs


@pytest.mark.parametrize("method", ["createRenewalOrder", "suspendOrder", "cancelOrder"])
def test_an_outcome_frees_the_lease_it_held(slow_vendor, method):
    call, read = _setup(method)
    call()
    assert read().lease_until is None


def test_an_outcome_rolled_back_after_freeing_the_lease_still_frees_it_on_the_way_out(sandbox):
    from portal.provisioning.lease import leased, save_releasing_lease

    order = service.placed()
    with pytest.raises(RuntimeError), leased(order), transaction.atomic():
        assert save_releasing_lease(order, ["status"])
        raise RuntimeError("the rest of the outcome failed")
    assert Order.objects.get(pk=order.pk).lease_until is None
    assert order.lease_until is None
