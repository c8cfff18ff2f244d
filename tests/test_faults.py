"""The fault matrix: every vendor method through every fault, settled by retries.

After the retries settle, the portal must hold exactly what the sandbox holds: the same
statuses and terms, no second remote customer/order/renewal, every attempt in the call log.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import Schedule

from customers.models import Customer
from orders.models import Order
from portal import provisioning, tasks
from portal.models import ProvisioningCall
from portal.oneoffice import sandbox as sandbox_module
from portal.provisioning import retries
from tests.factories import CustomerFactory, OrderFactory

Outcome = ProvisioningCall.Outcome

# Every way the vendor can fail, plus a refused connection; "redirect" (a configuration error)
# and "respond" (a canned reply) are covered by the client's tests.
FAULTS = ["refuse", *(f for f in sandbox_module.FAULTS if f not in {"redirect", "respond"})]
# Faults after which the vendor holds the change although the portal could not tell.
APPLIED = {"500-after", "hang-after", "drop-after", "garbage-200", "slow", "503-retry-after"}
# Faults after which the vendor holds nothing, and says so or never heard of the call.
NOT_APPLIED = {"refuse", "429", "408"}
FIRST_OUTCOME = {fault: Outcome.UNKNOWN for fault in FAULTS} | {
    "refuse": Outcome.NOT_SENT,
    "slow": Outcome.OK,
    "429": Outcome.NOT_NOW,
    "408": Outcome.NOT_NOW,
}
FIRST_HTTP_STATUS = {
    "500-before": 500,
    "500-after": 500,
    "html-502": 502,
    "garbage-200": 200,
    "429": 429,
    "408": 408,
    "503-retry-after": 503,
}
METHODS = [
    "createCustomer",
    "createFirstOrder",
    "createRenewalOrder",
    "cancelOrder",
    "suspendOrder",
]


@dataclass
class Case:
    """One method, set up up to the moment of its call."""

    method: str
    run: object  # () -> the service call under test
    subject: object  # () -> the object that goes pending: customer, order or renewal
    retry_task: object  # (pk, attempt) -> the automatic retry task


@pytest.fixture
def quick_vendor(settings, sandbox):
    """Timeouts and delays small enough that the hang cases cost a fraction of a second."""
    settings.ONEOFFICE_TIMEOUT = 0.3
    sandbox.hang_seconds = 1.0
    sandbox.slow_seconds = 0.05
    # A fresh monthly subscription is inside this window, so it can be renewed today.
    settings.ONEOFFICE_RENEWAL_WINDOW_DAYS = 40
    sandbox.renewal_window_days = 40
    return sandbox


def _case(method: str) -> Case:
    """Objects set up through the real service, so the sandbox holds what the portal holds."""
    if method == "createCustomer":
        customer = CustomerFactory()
        return Case(
            method,
            run=lambda: provisioning.customer_register(customer=customer),
            subject=lambda: Customer.objects.get(pk=customer.pk),
            retry_task=tasks.customer_retry_task,
        )
    customer = provisioning.customer_register(customer=CustomerFactory())
    order = OrderFactory(customer=customer)
    if method == "createFirstOrder":
        return Case(
            method,
            run=lambda: provisioning.order_place(order=order),
            subject=lambda: Order.objects.get(pk=order.pk),
            retry_task=tasks.order_retry_task,
        )
    subscription = provisioning.order_place(order=order)
    run = {
        "createRenewalOrder": provisioning.order_renew,
        "cancelOrder": provisioning.order_cancel,
        "suspendOrder": provisioning.order_suspend,
    }[method]
    if method == "createRenewalOrder":
        subject = lambda: Order.objects.get(parent=subscription)  # noqa: E731
    else:
        subject = lambda: Order.objects.get(pk=subscription.pk)  # noqa: E731
    return Case(
        method,
        run=lambda: run(order=Order.objects.get(pk=subscription.pk)),
        subject=subject,
        retry_task=tasks.order_retry_task,
    )


def _inject(sandbox, method: str, fault: str, times: int = 1) -> None:
    if fault == "refuse":
        sandbox.refuse_connections()
    else:
        sandbox.inject(method, fault, times=times)


def _requests_for(sandbox, method: str) -> int:
    return sum(1 for r in sandbox.requests if r["rpc_method"] == method)


def _calls(method: str) -> list[ProvisioningCall]:
    return list(ProvisioningCall.objects.filter(method=method).order_by("attempt", "id"))


def _settle(case: Case, max_rounds: int = 5) -> int:
    """Run the retry task, as the cluster would, until nothing is pending; return the rounds."""
    for rounds in range(max_rounds):
        subject = case.subject()
        if subject.status != subject.Status.PENDING:
            return rounds
        case.retry_task(subject.pk, subject.attempts)
    raise AssertionError(f"{case.method} still pending after {max_rounds} retries")


def assert_mirrors_sandbox(sandbox) -> None:
    """Local state equals the sandbox's: same ids, statuses and terms; nothing pending."""
    remote = sandbox.snapshot()
    assert not Customer.objects.filter(status=Customer.Status.PENDING).exists()
    assert not Order.objects.filter(status=Order.Status.PENDING).exists()
    assert not ProvisioningCall.objects.filter(outcome=Outcome.IN_FLIGHT).exists()
    registered = Customer.objects.filter(status=Customer.Status.REGISTERED)
    assert {c.code for c in registered} == set(remote["customers"])
    for customer in registered:
        vendor_id = str(remote["customers"][customer.code]["vendor_id"])
        # Settled by "duplicate id", a registration never saw the reply; there is no read call.
        assert customer.oneoffice_id in ("", vendor_id)
    live = Order.objects.exclude(status__in=[Order.Status.DRAFT, Order.Status.FAILED])
    assert {o.number for o in live} == set(remote["orders"])
    for order in live:
        theirs = remote["orders"][order.number]
        assert order.status == theirs["status"], order
        assert order.term_start.isoformat() == theirs["term_start"], order
        assert order.term_end.isoformat() == theirs["term_end"], order
        assert (order.parent.number if order.parent else None) == theirs["parent"]
        if order.is_first_order:
            assert order.current_term_end.isoformat() == theirs["current_term_end"], order
    assert not Customer.objects.exclude(lease_until=None).exists()
    assert not Order.objects.exclude(lease_until=None).exists()


# The matrix ------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("method", METHODS)
def test_fault_matrix_settles_to_the_vendors_state(quick_vendor, method, fault):
    sandbox = quick_vendor
    case = _case(method)
    sandbox.requests.clear()
    _inject(sandbox, method, fault)

    if fault == "slow":
        case.run()
    else:
        expected = (
            provisioning.StillPending if fault in NOT_APPLIED else provisioning.OutcomeUnknown
        )
        with pytest.raises(expected) as raised:
            case.run()
        assert type(raised.value) is expected
        pending = case.subject()
        assert pending.status == pending.Status.PENDING
        assert pending.last_error
        assert (pending.first_sent_at is not None) == (fault not in NOT_APPLIED)
    sandbox.accept_connections()
    rounds = _settle(case)

    assert rounds == (0 if fault == "slow" else 1)
    assert_mirrors_sandbox(sandbox)
    calls = _calls(method)
    assert [c.attempt for c in calls] == list(range(1, len(calls) + 1))
    assert [c.outcome for c in calls] == [FIRST_OUTCOME[fault]] + [Outcome.OK] * rounds
    assert calls[0].http_status == FIRST_HTTP_STATUS.get(fault, 200 if fault == "slow" else None)
    # One id per operation, whatever the number of attempts.
    assert all(c.params == calls[0].params for c in calls)
    # Each attempt that left the portal reached the vendor once; a refused connection never did.
    assert _requests_for(sandbox, method) == len(calls) - (fault == "refuse")
    if rounds:
        assert calls[-1].settled_earlier == (fault in APPLIED)
        assert calls[0].error
    subject = case.subject()
    assert subject.status != subject.Status.PENDING
    assert subject.last_error == ""
    assert subject.first_sent_at is None


@pytest.mark.django_db
@pytest.mark.parametrize("method", METHODS)
def test_fault_matrix_manual_retry_settles_like_the_task(quick_vendor, method, sales_user):
    sandbox = quick_vendor
    case = _case(method)
    sandbox.inject(method, "500-after")
    with pytest.raises(provisioning.OutcomeUnknown):
        case.run()

    pending = case.subject()
    if isinstance(pending, Customer):
        provisioning.customer_retry(customer=pending, by=sales_user)
    else:
        provisioning.order_retry(order=pending, by=sales_user)

    assert_mirrors_sandbox(sandbox)
    last = _calls(method)[-1]
    assert (last.outcome, last.settled_earlier, last.triggered_by) == (Outcome.OK, True, sales_user)


@pytest.mark.django_db
@pytest.mark.parametrize("method", METHODS)
def test_fault_twice_in_a_row_needs_two_retries_and_keeps_the_ids(quick_vendor, method):
    sandbox = quick_vendor
    case = _case(method)
    sandbox.inject(method, "drop-after")
    sandbox.inject(method, "html-502")
    with pytest.raises(provisioning.OutcomeUnknown):
        case.run()

    assert _settle(case) == 2

    assert_mirrors_sandbox(sandbox)
    calls = _calls(method)
    assert [c.outcome for c in calls] == [Outcome.UNKNOWN, Outcome.UNKNOWN, Outcome.OK]
    assert [c.settled_earlier for c in calls] == [False, False, True]
    assert len({str(c.params) for c in calls}) == 1


@pytest.mark.django_db
def test_refused_connection_then_vendor_down_again_never_claims_done(quick_vendor):
    sandbox = quick_vendor
    case = _case("createCustomer")
    sandbox.refuse_connections()
    with pytest.raises(provisioning.StillPending):
        case.run()
    assert "could not be reached" in case.retry_task(case.subject().pk, 1)
    with pytest.raises(provisioning.StillPending):
        provisioning.customer_retry(customer=case.subject())

    customer = case.subject()
    assert customer.status == Customer.Status.PENDING
    assert sandbox.snapshot()["customers"] == {}
    assert [c.outcome for c in _calls("createCustomer")] == [Outcome.NOT_SENT] * 3


# Automatic retries -----------------------------------------------------------------------------


def _schedule_after(attempt: int) -> Schedule:
    """The retry scheduled after attempt `attempt` (its stored args are (pk, attempt))."""
    (schedule,) = [s for s in Schedule.objects.all() if ast.literal_eval(s.args)[1] == attempt]
    return schedule


def _run_schedule(schedule: Schedule) -> str:
    """What the cluster does with a due ONCE schedule: call its function with its stored args."""
    return import_string(schedule.func)(*ast.literal_eval(schedule.args))


@pytest.mark.django_db
@pytest.mark.parametrize("method", METHODS)
def test_auto_retry_scheduled_after_commit_with_backoff_and_settles(
    quick_vendor, method, settings, django_capture_on_commit_callbacks
):
    settings.ONEOFFICE_RETRY_BACKOFF_SECONDS = 90
    case = _case(method)
    quick_vendor.inject(method, "500-after")

    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(provisioning.OutcomeUnknown):
            case.run()
        assert not Schedule.objects.exists()
    after = timezone.now()

    subject = case.subject()
    # One retry, planned once the outcome committed.
    schedule = Schedule.objects.get()
    kind = "customer" if method == "createCustomer" else "order"
    assert schedule.name == f"retry {kind} {subject.pk} after call {_calls(method)[0].pk}"
    assert schedule.func == f"portal.tasks.{kind}_retry_task"
    assert ast.literal_eval(schedule.args) == (subject.pk, 1)
    assert schedule.schedule_type == Schedule.ONCE
    assert before + timedelta(seconds=90) <= schedule.next_run <= after + timedelta(seconds=90)

    with django_capture_on_commit_callbacks(execute=True):
        _run_schedule(schedule)

    assert Schedule.objects.count() == 1
    assert_mirrors_sandbox(quick_vendor)
    assert [c.outcome for c in _calls(method)] == [Outcome.UNKNOWN, Outcome.OK]
    assert mail.outbox == []


@pytest.mark.django_db
@pytest.mark.parametrize("method", METHODS)
def test_auto_retry_stops_at_max_attempts_and_emails_managers_once(
    quick_vendor, method, settings, django_capture_on_commit_callbacks
):
    settings.ONEOFFICE_RETRY_MAX_ATTEMPTS = 3
    settings.ONEOFFICE_RETRY_BACKOFF_SECONDS = 60
    settings.MANAGERS_EMAIL = "ops@reseller.example"
    case = _case(method)
    quick_vendor.inject(method, "500-before", times=4)

    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(provisioning.OutcomeUnknown),
    ):
        case.run()
    delays = []
    for attempt in (1, 2):
        schedule = _schedule_after(attempt)
        delays.append(schedule.next_run)
        with django_capture_on_commit_callbacks(execute=True):
            result = _run_schedule(schedule)
        assert "OneOffice failed with HTTP 500" in result

    subject = case.subject()
    assert subject.status == subject.Status.PENDING
    assert subject.attempts == 3
    assert Schedule.objects.count() == 2
    # Each wait doubles: 60 s after the first attempt, 120 s after the second.
    assert abs((delays[1] - delays[0]).total_seconds() - 60) < 5
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == ["ops@reseller.example"]
    assert str(subject) in email.subject
    assert "HTTP 500" in email.body

    # A stale delivery of an old schedule sends nothing.
    sent = len(quick_vendor.requests)
    assert "already retried" in _run_schedule(_schedule_after(1))
    assert len(quick_vendor.requests) == sent

    # A person retries past the maximum: it still fails, but no second email, no new schedule.
    retry = provisioning.customer_retry if method == "createCustomer" else provisioning.order_retry
    kwarg = "customer" if method == "createCustomer" else "order"
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(provisioning.OutcomeUnknown, match="needs attention"),
    ):
        retry(**{kwarg: case.subject()})
    assert len(mail.outbox) == 1
    assert Schedule.objects.count() == 2

    with django_capture_on_commit_callbacks(execute=True):
        retry(**{kwarg: case.subject()})
    assert_mirrors_sandbox(quick_vendor)
    calls = _calls(method)
    assert [c.attempt for c in calls] == [1, 2, 3, 4, 5]
    assert len({str(c.params) for c in calls}) == 1
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_schedule_retry_twice_for_one_call_makes_one_schedule(registered_customer):
    at = timezone.now() + timedelta(minutes=1)

    retries.schedule_retry(registered_customer, attempt=1, call_id=7, at=at)
    retries.schedule_retry(registered_customer, attempt=1, call_id=7, at=at)

    assert Schedule.objects.count() == 1


@pytest.mark.django_db
def test_renewal_retry_never_mints_a_new_renewal(quick_vendor, django_capture_on_commit_callbacks):
    case = _case("createRenewalOrder")
    quick_vendor.inject("createRenewalOrder", "hang-after")
    with pytest.raises(provisioning.OutcomeUnknown):
        case.run()
    renewal = case.subject()

    # Renew pressed again instead of Retry: the pending renewal is re-sent, not a new one made.
    with django_capture_on_commit_callbacks(execute=True):
        again = case.run()

    assert again.pk == renewal.pk
    assert Order.objects.filter(parent=renewal.parent).count() == 1
    ids = {c.params["id"] for c in _calls("createRenewalOrder")}
    assert ids == {renewal.number}
    assert_mirrors_sandbox(quick_vendor)
