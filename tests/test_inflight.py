"""The in-flight cap is for OneOffice: a place stays taken while OneOffice may still be working
on its call, after the portal stopped waiting for it too, so OneOffice never holds more than
ONEOFFICE_MAX_IN_FLIGHT calls of ours at once."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from orders.models import Order
from portal import provisioning
from portal.models import BatchItem, InFlightSlot, ProvisioningCall
from portal.oneoffice import api
from portal.provisioning import batches, inflight
from portal.provisioning.lease import leased
from tests import service
from tests.factories import CustomerFactory, OrderFactory
from tests.test_redis_cluster import BASE_DIR, cluster_env

AFTER = 60.0


@pytest.fixture
def one_place(settings, sandbox):
    """One place, a read timeout shorter than the sandbox's hang, and a short wait for a place."""
    settings.ONEOFFICE_MAX_IN_FLIGHT = 1
    settings.ONEOFFICE_IN_FLIGHT_WAIT_SECONDS = 0.3
    settings.ONEOFFICE_IN_FLIGHT_AFTER_TIMEOUT_SECONDS = AFTER
    settings.ONEOFFICE_TIMEOUT = 0.3
    sandbox.hang_seconds = 1.0
    return sandbox


def _places(request: dict) -> bool:
    return request["rpc_method"] == "createFirstOrder"


def _placed_ids(sandbox) -> list[str]:
    return [r["json"]["params"]["id"] for r in sandbox.requests if _places(r)]


def _first_call(order: Order, fault: dict | None, sandbox) -> None:
    if fault is not None:
        sandbox.inject("createFirstOrder", **fault)
    with contextlib.suppress(provisioning.ProvisioningError):
        provisioning.order_place(order=order)


ANSWERED = {
    "done": None,
    "refused": {"fault": "respond", "status": 400, "body": '"invalid product"'},
    "a 500": {"fault": "500-before"},
    "not now": {"fault": "429"},
}
ABANDONED = {
    "a timeout": {"fault": "hang-after"},
    "a dropped connection": {"fault": "drop-after"},
    "a gateway's timeout": {"fault": "respond", "status": 504, "body": '"gateway timeout"'},
}


@pytest.mark.django_db
@pytest.mark.parametrize("fault", ANSWERED.values(), ids=ANSWERED.keys())
def test_a_place_is_free_again_once_oneoffice_answered(one_place, fault):
    customer = service.registered()
    first, second = OrderFactory.create_batch(2, customer=customer)
    _first_call(first, fault, one_place)

    assert provisioning.order_place(order=second).status == Order.Status.ACTIVE
    assert _placed_ids(one_place) == [first.number, second.number]


@pytest.mark.django_db
def test_a_place_is_free_at_once_when_nothing_reached_oneoffice(one_place):
    customer = service.registered()
    first, second = OrderFactory.create_batch(2, customer=customer)
    one_place.refuse_connections()
    _first_call(first, None, one_place)
    one_place.accept_connections()

    assert provisioning.order_place(order=second).status == Order.Status.ACTIVE
    assert _placed_ids(one_place) == [second.number]


@pytest.mark.django_db
@pytest.mark.parametrize("fault", ABANDONED.values(), ids=ABANDONED.keys())
def test_a_place_stays_taken_while_oneoffice_may_still_work_on_a_call(one_place, fault):
    customer = service.registered()
    first, second = OrderFactory.create_batch(2, customer=customer)
    _first_call(first, fault, one_place)

    # The next call finds no place: it is left pending, not sent.
    with pytest.raises(provisioning.StillPending, match="in flight"):
        provisioning.order_place(order=second)
    assert _placed_ids(one_place) == [first.number]
    # Once OneOffice may be done with the abandoned call, the place is free again.
    with time_machine.travel(timezone.now() + timedelta(seconds=AFTER + 1)):
        assert provisioning.order_retry(order=second).status == Order.Status.ACTIVE
    assert _placed_ids(one_place) == [first.number, second.number]


@pytest.mark.parametrize(
    ("fault", "abandoned"),
    [*((f, False) for f in ANSWERED.values() if f), *((f, True) for f in ABANDONED.values())],
)
def test_client_says_which_failures_leave_oneoffice_working(sandbox, fault, abandoned):
    client = api.OneOfficeClient(
        url=sandbox.url, api_key=sandbox.api_key, connect_timeout=1.0, read_timeout=0.3
    )
    sandbox.hang_seconds = 1.0
    sandbox.inject("createCustomer", **fault)
    request = api.create_customer(
        customer_id="C1", name="n", email="a@b.example", phone="+3021055501", display_name="d"
    )
    with pytest.raises(api.VendorError) as caught:
        client.send(request)
    client.close()
    assert caught.value.abandoned is abandoned


@pytest.mark.django_db
def test_the_holds_of_one_call_are_one_length(settings, sandbox):
    settings.ONEOFFICE_CONNECT_TIMEOUT = 1
    settings.ONEOFFICE_TIMEOUT = 2
    settings.ONEOFFICE_IN_FLIGHT_WAIT_SECONDS = 4
    settings.ONEOFFICE_IN_FLIGHT_AFTER_TIMEOUT_SECONDS = 8
    call = timedelta(seconds=1 + 2 + 30)
    order = OrderFactory(customer=CustomerFactory())
    with time_machine.travel(timezone.now(), tick=False):
        now = timezone.now()
        # The object's lease: one call.
        with leased(order):
            assert Order.objects.get(pk=order.pk).lease_until == now + call
        # An in-flight place: one call, then as long as OneOffice may still work on it (a
        # process that dies holding it frees it no sooner).
        with inflight.slot():
            held = InFlightSlot.objects.exclude(holder="").get().held_until
            assert held == now + call + timedelta(seconds=8)
        # A batch item: the wait for a place, then one call (claimed for a whole slice).
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(batches, "enqueue", lambda batch_id: None)
            batch = batches.batch_start(kind="order", action="place", label="x", objects=[order])
        assert batches._claim(batch, 1)
        slice_ = timedelta(seconds=batches.BATCH_SLICE_SECONDS)
        item = BatchItem.objects.get(batch=batch)
        assert item.claimed_until == now + slice_ + timedelta(seconds=4) + call


# Under real concurrency -------------------------------------------------------------------------

CAP = 4
ORDERS = 24
# The portal gives up after 0.4 s; the vendor holds a slow call 1.2 s (0.1 s latency, then 1.1 s
# of work the portal does not wait for), so it is still working on it for 0.8 s after.
TIMEOUT = 0.4
SLOW = 1.1
AFTER_TIMEOUT = 2.0
SLOW_CALLS = 8


def _sender(sandbox, settings, ids: list[int], log) -> subprocess.Popen:
    env = cluster_env(
        sandbox,
        settings,
        ONEOFFICE_MAX_IN_FLIGHT=str(CAP),
        ONEOFFICE_TIMEOUT=str(TIMEOUT),
        ONEOFFICE_IN_FLIGHT_AFTER_TIMEOUT_SECONDS=str(AFTER_TIMEOUT),
        ONEOFFICE_IN_FLIGHT_WAIT_SECONDS="60",
        # Retried at once: the retry is sent while OneOffice may still work on the first call.
        ONEOFFICE_RETRY_BACKOFF_SECONDS="0",
        ONEOFFICE_RETRY_MAX_ATTEMPTS="8",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "tests.sender", ",".join(map(str, ids)), str(CAP), "90"],
        cwd=BASE_DIR,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )


@pytest.mark.django_db(transaction=True)
def test_the_vendor_never_holds_more_calls_than_the_cap(sandbox, settings, tmp_path):
    """Two processes, each sending from several threads with automatic retries, against a
    vendor that goes on working on calls after the portal stopped waiting for them. The
    sandbox counts every request it holds, those whose client gave up included."""
    customer = service.registered()
    orders = [OrderFactory(customer=customer) for _ in range(ORDERS)]
    ids = [order.pk for order in orders]
    sandbox.latency = 0.1
    sandbox.hang_seconds = SLOW
    sandbox.inject("createFirstOrder", "hang-after", times=SLOW_CALLS)
    log = (tmp_path / "senders.log").open("w")
    senders = [_sender(sandbox, settings, ids[half::2], log) for half in range(2)]
    try:
        for sender in senders:
            assert sender.stdout.readline().strip() == "ready"
        sandbox.max_in_flight = 0
        for sender in senders:
            sender.stdin.write("go\n")
            sender.stdin.flush()
        for sender in senders:
            sender.wait(timeout=120)
    finally:
        sandbox.latency = 0.0
        for sender in senders:
            if sender.poll() is None:
                sender.kill()
                sender.wait()
    log.close()
    output = (tmp_path / "senders.log").read_text()
    assert [sender.returncode for sender in senders] == [0, 0], output

    # The run was what it claims: the cap was reached, and the portal gave up on calls
    # OneOffice went on working on, and retried them.
    assert sandbox.max_in_flight == CAP
    timed_out = ProvisioningCall.objects.filter(outcome=ProvisioningCall.Outcome.UNKNOWN)
    assert timed_out.count() >= SLOW_CALLS
    assert len(_placed_ids(sandbox)) > ORDERS
    # Every order placed, once at OneOffice.
    assert set(Order.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        Order.Status.ACTIVE
    }
    assert sorted(sandbox.snapshot()["orders"]) == sorted(order.number for order in orders)
