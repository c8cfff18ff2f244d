"""Batches: bulk actions worked in the background, the in-flight cap, "not now" pauses, and
auto-renewal, against the sandbox over real HTTP. Tasks run inline (django-q2 `sync`); the
batch's threads use their own database connections, so these tests commit for real."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.management import call_command
from django.db import connection, connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from customers.models import Customer
from orders.models import AutoRenewal, Order
from orders.renewals import autorenew
from portal import provisioning
from portal.models import Batch, BatchItem, InFlightSlot, ProvisioningCall
from portal.oneoffice import sandbox as sandbox_module
from portal.provisioning import batches, inflight
from tests import service
from tests.factories import CustomerFactory, OrderFactory, UserFactory
from tests.test_races import at_once

pytestmark = pytest.mark.django_db(transaction=True)

State = BatchItem.State
ORDERS = reverse("admin:orders_order_changelist")


@pytest.fixture(autouse=True)
def roles(transactional_db):
    # A transactional test starts from an empty database: the roles' groups come back here.
    from django.contrib.auth.models import Group, Permission

    from portal.security.roles import ROLES

    for name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


@pytest.fixture(autouse=True)
def quick(settings, sandbox):
    settings.TIME_ZONE = "UTC"
    settings.ONEOFFICE_MAX_IN_FLIGHT = 4
    settings.BATCH_SYNC_MAX = 5
    settings.BATCH_NOT_NOW_PAUSE_SECONDS = 1
    sandbox.latency = 0.0
    yield
    sandbox.latency = 0.0


@pytest.fixture
def staff(client, sales_user):
    client.force_login(sales_user)
    return client


def _drafts(n: int) -> list[Order]:
    return OrderFactory.create_batch(n, customer=service.registered())


def _requests_per_id(sandbox, method: str) -> Counter:
    return Counter(r["json"]["params"]["id"] for r in sandbox.requests if r["rpc_method"] == method)


def _bulk(client, action: str, objects):
    data = {"action": action, ACTION_CHECKBOX_NAME: [o.pk for o in objects], "index": 0}
    return client.post(ORDERS, data)


def _start(objects, action: str = "place", **kwargs) -> Batch:
    """A batch recorded without its task, for tests that work it themselves."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batches, "enqueue", lambda batch_id: None)
        return batches.batch_start(
            kind="order", action=action, label=action, objects=objects, **kwargs
        )


# Starting from the admin ---------------------------------------------------------------------


def test_bulk_place_on_a_few_orders_stays_in_the_request(staff, sandbox):
    orders = _drafts(5)
    response = _bulk(staff, "place_selected", orders)
    assert response.status_code == 302
    assert response.url.startswith(ORDERS)
    assert not Batch.objects.exists()
    assert Order.objects.filter(status=Order.Status.ACTIVE).count() == 5


def test_bulk_place_on_many_orders_records_a_batch_and_shows_its_page(staff, sandbox, sales_user):
    orders = _drafts(7)
    response = _bulk(staff, "place_selected", orders)
    batch = Batch.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:portal_batch_change", args=[batch.pk])
    assert (batch.kind, batch.action, batch.total, batch.created_by) == (
        "order",
        "place",
        7,
        sales_user,
    )
    assert sorted(batch.items.values_list("object_id", flat=True)) == [o.pk for o in orders]
    # The cluster (inline here) worked it after the commit.
    batch.refresh_from_db()
    assert batch.finished_at is not None
    assert set(batch.items.values_list("state", flat=True)) == {State.DONE}
    assert Order.objects.filter(status=Order.Status.ACTIVE).count() == 7
    assert sorted(_requests_per_id(sandbox, "createFirstOrder").values()) == [1] * 7
    calls = ProvisioningCall.objects.filter(method="createFirstOrder")
    assert {call.triggered_by for call in calls} == {sales_user}

    page = staff.get(response.url)
    text = page.content.decode()
    assert "7 of 7" in text
    assert 'http-equiv="refresh"' not in text
    assert text.count('class="batch-item state-done"') == 7


def test_every_provisioning_action_the_admin_offers_runs_as_a_batch_too():
    from django.contrib import admin

    for model in (Customer, Order):
        for action in admin.site._registry[model].provisioning_actions:
            assert batches.operation(model, action.name).done, (model, action.name)


def test_bulk_mark_as_renewed_on_many_orders_is_a_batch_with_a_result_per_item(staff, sandbox):
    subs = service.placed_many(6)
    data = {
        "action": "mark_renewed_selected",
        ACTION_CHECKBOX_NAME: [o.pk for o in subs],
        "index": 0,
        "post": "yes",
    }
    response = staff.post(ORDERS, data)
    batch = Batch.objects.get()
    assert response.url == reverse("admin:portal_batch_change", args=[batch.pk])
    # First orders await no decision: each one is refused by the portal, nothing is sent.
    assert set(batch.items.values_list("state", flat=True)) == {State.REJECTED}
    assert all("not a renewal" in m for m in batch.items.values_list("message", flat=True))
    assert not any(r["rpc_method"] == "createRenewalOrder" for r in sandbox.requests)


def test_bulk_suspend_of_more_than_a_thousand_orders_confirms_and_starts_one_batch(staff):
    from tests.test_admin import confirmation_form

    OrderFactory.store(1010, customer=service.registered(), active=True, prefix="O-BULK")
    first = Order.objects.order_by("pk").first()
    # "Select all 1,010" on the list, then Suspend.
    data = {"action": "suspend_selected", ACTION_CHECKBOX_NAME: [first.pk], "select_across": 1}
    page = staff.post(ORDERS, {**data, "index": 0})
    html = page.content.decode()
    assert html.count("<li>Suspend subscription O-BULK") == 50
    assert "… and 960 more orders." in html
    form = confirmation_form(html)
    assert len(form["confirmed_ids"].split(",")) == 1010

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batches, "enqueue", lambda batch_id: None)
        response = staff.post(ORDERS, form)
    batch = Batch.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:portal_batch_change", args=[batch.pk])
    assert (batch.action, batch.total, batch.items.count()) == ("suspend", 1010, 1010)


def test_select_all_customers_then_register_queues_each_once_in_id_order(staff, sandbox):
    customers = CustomerFactory.create_batch(7)
    data = {
        "action": "register_selected",
        ACTION_CHECKBOX_NAME: [customers[0].pk],
        "select_across": 1,
        "index": 0,
    }
    response = staff.post(reverse("admin:customers_customer_changelist"), data)
    batch = Batch.objects.get()
    assert response.url == reverse("admin:portal_batch_change", args=[batch.pk])
    assert (batch.kind, batch.action, batch.total) == ("customer", "register", 7)
    items = list(
        batch.items.order_by("position").values_list("position", "object_id", "object_label")
    )
    ordered = sorted(customers, key=lambda c: c.pk)
    assert list(items) == [(i, c.pk, str(c)) for i, c in enumerate(ordered)]
    # The cluster (inline here) worked it after the commit: each registered, once.
    assert set(batch.items.values_list("state", flat=True)) == {State.DONE}
    assert _requests_per_id(sandbox, "createCustomer") == Counter(c.code for c in customers)


def test_bulk_action_refuses_objects_the_person_may_not_touch_per_item(client, sandbox):
    from django.contrib.auth.models import Permission

    user = UserFactory(username="placer")
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_order", "place_order", "view_batch"])
    )
    client.force_login(user)
    place = _drafts(3)
    retry = []
    for order in _drafts(3):
        sandbox.inject("createFirstOrder", "500-after")
        with pytest.raises(provisioning.OutcomeUnknown):
            provisioning.order_place(order=order)
        retry.append(order)
    # Retry needs the permission of what is pending (place): allowed. A person without
    # renew permission retrying a renewal would be refused per item, as in the request.
    response = _bulk(client, "retry_selected", place + retry)
    batch = Batch.objects.get()
    assert response.status_code == 302
    states = dict(batch.items.values_list("object_id", "state"))
    assert {states[o.pk] for o in retry} == {State.DONE}
    # Drafts have nothing pending: the portal refuses them, nothing sent.
    assert {states[o.pk] for o in place} == {State.REJECTED}
    assert not any(r["json"]["params"]["id"] == place[0].number for r in sandbox.requests)


# Working -------------------------------------------------------------------------------------


def test_a_batch_with_vendor_faults_settles_every_item(sandbox):
    good = _drafts(4)
    unregistered = OrderFactory(customer=CustomerFactory())
    refused, unknown = _drafts(2)
    sandbox.inject("createFirstOrder", "respond", status=400, body='"invalid product"')
    sandbox.inject("createFirstOrder", "500-after")
    batch = _start([refused, unknown, *good, unregistered])
    # One at a time, in order, so the two faults land on the first two items sent.
    with override_settings(ONEOFFICE_MAX_IN_FLIGHT=1), pytest.MonkeyPatch.context() as patch:
        patch.setattr(batches, "enqueue", lambda batch_id: None)
        batches.batch_work(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.finished_at is not None
    result = {i.object_id: (i.state, i.message) for i in batch.items.all()}
    assert result[refused.pk][0] == State.REFUSED
    assert "invalid product" in result[refused.pk][1]
    assert result[unknown.pk][0] == State.UNKNOWN
    assert result[unregistered.pk][0] == State.REJECTED
    assert "not registered" in result[unregistered.pk][1]
    assert {result[o.pk][0] for o in good} == {State.DONE}
    assert batches.counts(batch)[State.DONE] == 4
    # What the service left behind is what a click leaves: failed, pending with a retry.
    refused.refresh_from_db()
    unknown.refresh_from_db()
    assert refused.status == Order.Status.FAILED
    assert unknown.status == Order.Status.PENDING
    assert Schedule.objects.filter(func="portal.tasks.order_retry_task").count() == 1
    assert not any(r["json"]["params"].get("id") == unregistered.number for r in sandbox.requests)


def test_two_clusters_working_one_batch_never_take_the_same_item(sandbox, settings):
    sandbox.latency = 0.03
    orders = _drafts(24)
    batch = _start(orders)
    errors = []

    def cluster():
        try:
            batches.batch_work(batch_id=batch.pk)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=cluster) for _ in range(2)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batches, "enqueue", lambda batch_id: None)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not errors
    assert _requests_per_id(sandbox, "createFirstOrder") == Counter(o.number for o in orders)
    assert set(batch.items.values_list("state", flat=True)) == {State.DONE}
    assert sandbox.max_in_flight <= settings.ONEOFFICE_MAX_IN_FLIGHT


def test_in_flight_cap_holds_for_every_call_under_many_threads(sandbox, settings):
    settings.ONEOFFICE_MAX_IN_FLIGHT = 3
    sandbox.latency = 0.05
    orders = _drafts(12)
    errors = []

    def click(order):
        try:
            provisioning.order_place(order=Order.objects.get(pk=order.pk))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click, args=(order,)) for order in orders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sandbox.max_in_flight == 3
    assert Order.objects.filter(status=Order.Status.ACTIVE).count() == 12
    assert not InFlightSlot.objects.exclude(holder="").exists()


def test_a_call_that_finds_no_slot_in_time_is_left_pending_not_sent(sandbox, settings):
    settings.ONEOFFICE_MAX_IN_FLIGHT = 1
    settings.ONEOFFICE_IN_FLIGHT_WAIT_SECONDS = 0.2
    (order,) = _drafts(1)
    with inflight.slot(), pytest.raises(provisioning.StillPending, match="in flight"):
        provisioning.order_place(order=order)
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING
    assert ProvisioningCall.objects.get(order=order).outcome == ProvisioningCall.Outcome.NOT_SENT
    assert not sandbox.requests or all(
        r["rpc_method"] != "createFirstOrder" for r in sandbox.requests
    )


def test_an_expired_slot_of_a_dead_process_is_taken_over(sandbox, settings):
    settings.ONEOFFICE_MAX_IN_FLIGHT = 1
    InFlightSlot.objects.create(
        number=0, holder="dead", held_until=timezone.now() - timedelta(seconds=1)
    )
    (order,) = _drafts(1)
    assert provisioning.order_place(order=order).status == Order.Status.ACTIVE


def _not_now_batch(sandbox, settings, **fault):
    settings.ONEOFFICE_MAX_IN_FLIGHT = 1
    orders = _drafts(3)
    batch = _start(orders)
    sandbox.inject("createFirstOrder", **fault)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batches, "enqueue", lambda batch_id: None)
        batches.batch_work(batch_id=batch.pk)
    batch.refresh_from_db()
    sent = [r for r in sandbox.requests if r["rpc_method"] == "createFirstOrder"]
    return batch, sent


def test_a_429_pauses_the_whole_batch(sandbox, settings):
    batch, sent = _not_now_batch(sandbox, settings, fault="respond", status=429, body='"slow down"')
    assert batch.paused_until is not None
    assert batch.finished_at is not None
    # One item got the 429; the next went out only after the pause (1 s without Retry-After).
    assert len(sent) == 3
    assert sent[1]["at"] - sent[0]["at"] >= settings.BATCH_NOT_NOW_PAUSE_SECONDS - 0.05
    assert sent[2]["at"] - sent[1]["at"] < settings.BATCH_NOT_NOW_PAUSE_SECONDS


@pytest.mark.skipif("429" not in sandbox_module.FAULTS, reason="the sandbox sends no Retry-After")
def test_a_429_with_retry_after_pauses_the_batch_that_long(sandbox, settings):
    batch, sent = _not_now_batch(sandbox, settings, fault="429", retry_after="2")
    assert sent[1]["at"] - sent[0]["at"] >= 1.95
    assert batch.items.filter(state=State.NOT_NOW).count() == 1


def test_a_503_with_retry_after_pauses_the_batch_that_long(sandbox, settings):
    batch, sent = _not_now_batch(sandbox, settings, fault="503-retry-after", retry_after="2")
    assert sent[1]["at"] - sent[0]["at"] >= 1.95
    assert batch.items.filter(state=State.NOT_NOW).count() == 1
    # It may have been applied: it stays pending for its retry; the batch sent each one once.
    assert len(sent) == 3


def test_a_batch_pauses_as_long_as_the_service_error_says(settings):
    settings.BATCH_NOT_NOW_PAUSE_SECONDS = 30

    def error(*, not_now: bool, not_before=None) -> provisioning.ProvisioningError:
        exc = provisioning.StillPending("x")
        exc.not_now, exc.not_before = not_now, not_before
        return exc

    now = timezone.now()
    at = now + timedelta(seconds=7)
    assert batches.not_now_until(error(not_now=False, not_before=at)) is None
    assert batches.not_now_until(error(not_now=True, not_before=at)) == at
    default = batches.not_now_until(error(not_now=True))
    assert timedelta(seconds=29) < default - now <= timedelta(seconds=31)
    far = batches.not_now_until(error(not_now=True, not_before=now + timedelta(days=9)))
    assert far - now <= batches.LONGEST_PAUSE + timedelta(seconds=1)


def test_a_task_that_died_mid_item_is_settled_from_the_call_log_never_resent(sandbox):
    orders = _drafts(4)
    batch = _start(orders)
    items = list(batch.items.order_by("position"))
    past = timezone.now() - timedelta(minutes=10)
    # Item 0: its task died before sending anything. Item 1: after the call was answered.
    BatchItem.objects.filter(pk__in=[items[0].pk, items[1].pk]).update(
        state=State.RUNNING, claimed_until=past, started_at=past
    )
    provisioning.order_place(order=orders[1])
    # As if its task had died long ago: nobody works the batch any more.
    Batch.objects.filter(pk=batch.pk).update(worked_until=past)
    assert batches.batch_resume_stalled() == 1  # inline: the new task works the batch
    batch.refresh_from_db()
    assert batch.finished_at is not None
    assert set(batch.items.values_list("state", flat=True)) == {State.DONE}
    assert _requests_per_id(sandbox, "createFirstOrder") == Counter(o.number for o in orders)


def test_a_dead_claim_is_settled_from_its_first_item_and_the_batch_method_only(sandbox):
    subs = service.placed_many(3)
    batch = _start(subs, action="suspend")
    past = timezone.now() - timedelta(minutes=10)
    # One thread claimed all three and died; its items are left running, claim expired.
    batch.items.update(state=State.RUNNING, claimed_by="dead", claimed_until=past, started_at=past)
    outcome = ProvisioningCall.Outcome.OK
    # Calls since the claim that are not the batch's: a renewal's on the first item, and a
    # suspension on the second, which the dead thread cannot have started before the first.
    for sub, method in [(subs[0], "createRenewalOrder"), (subs[1], "suspendOrder")]:
        ProvisioningCall.objects.create(
            method=method, params={}, customer=sub.customer, order=sub, outcome=outcome
        )
    Batch.objects.filter(pk=batch.pk).update(worked_until=past)
    assert batches.batch_resume_stalled() == 1  # inline: the new task works the batch
    assert set(batch.items.values_list("state", flat=True)) == {State.DONE}
    # Nothing was taken for done that was not: each one was suspended, once.
    assert _requests_per_id(sandbox, "suspendOrder") == Counter(s.number for s in subs)
    statuses = Order.objects.filter(pk__in=[s.pk for s in subs]).values_list("status", flat=True)
    assert set(statuses) == {Order.Status.SUSPENDED}


def test_an_object_deleted_after_its_claim_is_refused_as_gone_not_busy(sandbox):
    (order,) = _drafts(1)
    claimed_copy = Order.objects.get(pk=order.pk)
    Order.objects.filter(pk=order.pk).delete()
    with pytest.raises(provisioning.NotAllowed, match="no longer exists"):
        provisioning.order_place(order=claimed_copy)


def test_a_customer_corrected_after_its_claim_is_sent_as_corrected(sandbox):
    customer = CustomerFactory()
    Customer.objects.filter(pk=customer.pk).update(admin_email="not an address")
    claimed_copy = Customer.objects.get(pk=customer.pk)
    Customer.objects.filter(pk=customer.pk).update(admin_email="it@corrected.example")
    assert provisioning.customer_register(customer=claimed_copy).status == "registered"
    sent = [r["json"]["params"] for r in sandbox.requests if r["rpc_method"] == "createCustomer"]
    assert [params["admin"]["email"] for params in sent] == ["it@corrected.example"]


def test_resume_leaves_batches_being_worked_alone(sandbox):
    batch = _start(_drafts(6))
    Batch.objects.filter(pk=batch.pk).update(worked_until=timezone.now() + timedelta(minutes=1))
    assert batches.batch_resume_stalled() == 0
    Batch.objects.filter(pk=batch.pk).update(worked_until=timezone.now() - timedelta(seconds=1))
    assert batches.batch_resume_stalled() == 1
    batch.refresh_from_db()
    assert batch.finished_at is not None


def test_setup_schedules_registers_the_resume_sweep_and_auto_renewal():
    call_command("setup_schedules", stdout=open("/dev/null", "w"))  # noqa: SIM115
    funcs = set(Schedule.objects.values_list("func", flat=True))
    assert "portal.tasks.batch_resume_stalled_task" in funcs
    assert "orders.tasks.auto_renew_task" in funcs


def test_batch_page_paginates_and_refreshes_until_finished(staff, sandbox, monkeypatch):
    monkeypatch.setattr("portal.admin.batches.ITEMS_PER_PAGE", 4)
    batch = _start(_drafts(9))
    url = reverse("admin:portal_batch_change", args=[batch.pk])
    text = staff.get(url).content.decode()
    assert 'http-equiv="refresh"' in text
    assert "0 of 9" in text
    assert text.count('class="batch-item') == 4
    assert "page 1 of 3" in text
    listing = staff.get(reverse("admin:portal_batch_changelist")).content.decode()
    assert str(batch) in listing
    assert "0 of 9 settled" in listing


def test_batch_list_says_how_each_finished_batch_went(staff, sandbox):
    sandbox.inject("createFirstOrder", "respond", status=400, body='"no"')
    _bulk(staff, "place_selected", _drafts(6))
    _bulk(staff, "place_selected", _drafts(7))
    listing = staff.get(reverse("admin:portal_batch_changelist")).content.decode()
    assert '5 of 6 done<small class="below">1 did not go through</small>' in listing
    assert "all 7 done" in listing


def test_a_manager_reads_what_did_not_go_through_without_buttons_to_send_it(
    client, staff, sandbox, manager_user
):
    orders = _drafts(6)
    sandbox.inject("createFirstOrder", "respond", status=400, body='"no"')
    sandbox.inject("createFirstOrder", "500-after")
    with override_settings(ONEOFFICE_MAX_IN_FLIGHT=1):
        _bulk(staff, "place_selected", orders)
    batch = Batch.objects.get()
    url = reverse("admin:portal_batch_change", args=[batch.pk])
    assert {"Retry them", "Send them again"} <= set(_buttons(staff.get(url)))

    client.force_login(manager_user)
    page = client.get(url)
    text = page.content.decode()
    assert "Not everything went through." in text
    assert _buttons(page) == []
    assert "sales staff can send them again once fixed" in text
    again = reverse("admin:portal_batch_again", args=[batch.pk, "same"])
    assert client.post(again).status_code == 403


def _buttons(response) -> list[str]:
    return re.findall(r'<input type="submit" value="([^"]+)">', response.content.decode())


def test_finished_batch_links_to_what_did_not_go_through_and_retries_it(staff, sandbox):
    orders = _drafts(6)
    sandbox.inject("createFirstOrder", "500-after", times=2)
    with override_settings(ONEOFFICE_MAX_IN_FLIGHT=1):
        _bulk(staff, "place_selected", orders)
    batch = Batch.objects.get()
    url = reverse("admin:portal_batch_change", args=[batch.pk])
    text = staff.get(url).content.decode()
    pending = list(
        batch.items.filter(state=State.UNKNOWN)
        .order_by("position")
        .values_list("object_id", flat=True)
    )
    assert len(pending) == 2
    link = f"{ORDERS}?id__in=" + "%2C".join(map(str, pending))
    assert link in text
    listed = staff.get(link)
    assert listed.status_code == 200
    assert sorted(o.pk for o in listed.context["cl"].result_list) == sorted(pending)
    assert "Retry them" in text
    response = staff.post(reverse("admin:portal_batch_again", args=[batch.pk, "retry"]))
    again = Batch.objects.exclude(pk=batch.pk).get()
    assert response.url == reverse("admin:portal_batch_change", args=[again.pk])
    assert again.action == "retry"
    assert set(again.items.values_list("object_id", flat=True)) == set(pending)
    assert set(again.items.values_list("state", flat=True)) == {State.DONE}


# Auto-renewal --------------------------------------------------------------------------------


def _auto_subscriptions(n: int, *, manager=None) -> list[Order]:
    customer = service.registered(account_manager=manager, auto_renew_default=True)
    return service.placed_many(n, customer=customer, auto_renew=True)


def _near_term_end(order: Order, days: int = 2):
    end = order.current_term_end - timedelta(days=days)
    return time_machine.travel(datetime(end.year, end.month, end.day, 9, tzinfo=UTC), tick=True)


def test_auto_renewal_renews_once_per_term_across_two_concurrent_runs(sandbox, settings):
    subs = _auto_subscriptions(3)
    service.placed()  # not auto-renew: left alone
    with _near_term_end(subs[0]):
        results = at_once(autorenew.auto_renew_due, autorenew.auto_renew_due)
        assert autorenew.auto_renew_due() is None  # a third run finds every term claimed
    started = [batch for batch in results if batch is not None]
    assert sum(batch.total for batch in started) == 3
    assert AutoRenewal.objects.count() == 3
    per_parent = Counter(
        r["json"]["params"]["parent"]
        for r in sandbox.requests
        if r["rpc_method"] == "createRenewalOrder"
    )
    assert per_parent == Counter(s.number for s in subs)
    for sub in subs:
        old_end = sub.current_term_end
        sub.refresh_from_db()
        assert sub.current_term_end > old_end


def test_auto_renewal_outside_its_days_or_switched_off_does_nothing(sandbox, settings):
    (sub,) = _auto_subscriptions(1)
    with _near_term_end(sub, days=5):
        assert autorenew.auto_renew_due() is None
    settings.AUTO_RENEW_ENABLED = False
    with _near_term_end(sub, days=1):
        assert autorenew.auto_renew_due() is None
    assert not AutoRenewal.objects.exists()


def test_auto_renew_days_are_clamped_to_the_renewal_window(settings):
    settings.AUTO_RENEW_DAYS_BEFORE_END = 40
    settings.ONEOFFICE_RENEWAL_WINDOW_DAYS = 15
    assert autorenew.auto_renew_days() == 15


def test_a_refused_auto_renewal_leaves_it_due_and_tells_manager_and_managers(
    sandbox, settings, mailoutbox
):
    manager = UserFactory(username="amy", email="amy@reseller.example")
    subs = _auto_subscriptions(2, manager=manager)
    mailoutbox.clear()
    with _near_term_end(subs[0]):
        sandbox.inject("createRenewalOrder", "respond", status=400, body='"payment overdue"')
        with pytest.MonkeyPatch.context() as patch:
            # One at a time, so the refusal lands on the first.
            patch.setattr(settings, "ONEOFFICE_MAX_IN_FLIGHT", 1)
            batch = autorenew.auto_renew_due()
    batch.refresh_from_db()
    assert batch.finished_at is not None
    refused = batch.items.get(state=State.REFUSED)
    refused_sub = Order.objects.get(pk=refused.object_id)
    assert refused_sub.current_term_end == next(
        s.current_term_end for s in subs if s.pk == refused_sub.pk
    )
    recipients = sorted(m.to[0] for m in mailoutbox)
    assert recipients == sorted(["amy@reseller.example", settings.MANAGERS_EMAIL])
    for message in mailoutbox:
        assert "1 renewed, 1 NOT renewed" in message.subject
        assert "payment overdue" in message.body
        assert refused_sub.number in message.body


def test_auto_renewal_does_not_renew_a_term_renewed_by_hand_meanwhile(sandbox):
    (sub,) = _auto_subscriptions(1)
    with _near_term_end(sub):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(batches, "enqueue", lambda batch_id: None)
            batch = autorenew.auto_renew_due()
        provisioning.order_renew(order=Order.objects.get(pk=sub.pk))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(batches, "enqueue", lambda batch_id: None)
            batches.batch_work(batch_id=batch.pk)
    item = batch.items.get()
    assert item.state == State.REJECTED
    assert "renewed meanwhile" in item.message
    assert _requests_per_id(sandbox, "createRenewalOrder").total() == 1


def test_auto_renewal_reads_the_term_as_stored_not_as_the_batch_loaded_it(sandbox):
    (sub,) = _auto_subscriptions(1)
    with _near_term_end(sub):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(batches, "enqueue", lambda batch_id: None)
            autorenew.auto_renew_due()
        loaded = Order.objects.get(pk=sub.pk)
        provisioning.order_renew(order=Order.objects.get(pk=sub.pk))
        with pytest.raises(provisioning.NotAllowed, match="renewed meanwhile"):
            autorenew.auto_renew_one(subscription=loaded)
    assert _requests_per_id(sandbox, "createRenewalOrder").total() == 1


def test_new_order_takes_the_customers_auto_renew_default(staff):
    customer = service.registered(auto_renew_default=True)
    staff.post(
        reverse("admin:orders_order_add"),
        {
            "customer": customer.pk,
            "number": "",
            "product": Order.Product.OO_STD,
            "licenses": 5,
            "duration": Order.Duration.MONTHLY,
            "renewals-TOTAL_FORMS": 0,
            "renewals-INITIAL_FORMS": 0,
        },
    )
    assert Order.objects.get(customer=customer).auto_renew is True


def test_sales_mark_an_active_subscription_auto_renew(staff):
    (sub,) = service.placed_many(1)
    url = reverse("admin:orders_order_change", args=[sub.pk])
    context = staff.get(url).context
    form = context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields}
    for inline in context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({management[n].html_name: management[n].value() for n in management.fields})
    data["auto_renew"] = "on"
    response = staff.post(url, data)
    assert response.status_code == 302
    sub.refresh_from_db()
    assert sub.auto_renew is True
    assert sub.status == Order.Status.ACTIVE


def _work(batch: Batch, *, claim_size: int, seconds: float = 60) -> None:
    """Work `batch` with one thread, this one, as a task's thread does."""
    work = batches._Slice(batch=batch, deadline=time.monotonic() + seconds, claim_size=claim_size)
    batches._worker(work)


def test_renewals_worked_as_batch_items_stay_within_their_query_budget(sandbox):
    subs = service.placed_many(8)
    with _near_term_end(subs[0]):
        batch = _start(subs, action="renew")
        with CaptureQueriesContext(connection) as queries:
            _work(batch, claim_size=4)
    statements = [query["sql"].split()[0] for query in queries.captured_queries]
    reads_and_writes = [word for word in statements if word not in ("BEGIN", "COMMIT")]
    # Per item: the lease and the re-read 2, the attempt 2 and the outcome 5 (a transaction
    # each; the outcome records the subscription's change), the in-flight slot 2, the result 1;
    # a claim (3) is shared by four items.
    assert len(reads_and_writes) <= 13 * 8, statements
    assert set(batch.items.values_list("state", flat=True)) == {State.DONE}
    renewals = Order.objects.filter(parent__in=subs, status=Order.Status.ACTIVE)
    assert renewals.count() == 8
    assert _requests_per_id(sandbox, "createRenewalOrder") == Counter(
        renewals.values_list("number", flat=True)
    )


def test_a_thread_gives_back_what_it_claimed_when_its_slice_ends(sandbox):
    sandbox.latency = 0.3
    orders = _drafts(4)
    batch = _start(orders)
    _work(batch, claim_size=4, seconds=0.1)
    # The first item went out before the slice ended; the other three were never started.
    assert batches.counts(batch)[State.DONE] == 1
    back = batch.items.filter(state=State.QUEUED)
    assert back.count() == 3
    assert set(back.values_list("claimed_by", "started_at", "claimed_until")) == {("", None, None)}
    sandbox.latency = 0.0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batches, "enqueue", lambda batch_id: None)
        batches.batch_work(batch_id=batch.pk)
    assert set(batch.items.values_list("state", flat=True)) == {State.DONE}
    assert _requests_per_id(sandbox, "createFirstOrder") == Counter(o.number for o in orders)


def test_a_429_stops_a_thread_sending_the_rest_of_its_claim_until_the_pause_ends(sandbox, settings):
    settings.ONEOFFICE_MAX_IN_FLIGHT = 1
    batch = _start(_drafts(3))
    sandbox.inject("createFirstOrder", "respond", status=429, body='"slow down"')
    _work(batch, claim_size=3)
    sent = [r for r in sandbox.requests if r["rpc_method"] == "createFirstOrder"]
    assert len(sent) == 3
    assert sent[1]["at"] - sent[0]["at"] >= settings.BATCH_NOT_NOW_PAUSE_SECONDS - 0.05
    assert batches.counts(batch)[State.NOT_NOW] == 1
    assert batches.counts(batch)[State.DONE] == 2


def test_a_pause_set_by_another_process_stops_a_thread_after_the_item_it_is_sending(
    sandbox, settings
):
    settings.ONEOFFICE_MAX_IN_FLIGHT = 1
    sandbox.slow_seconds = 0.5
    sandbox.inject("createFirstOrder", "slow")
    batch = _start(_drafts(3))
    worker = threading.Thread(target=_work, args=(batch,), kwargs={"claim_size": 3})
    worker.start()
    deadline = time.monotonic() + 10
    while not any(r["rpc_method"] == "createFirstOrder" for r in sandbox.requests):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # Another cluster heard "not now" while this thread's first item was on the wire.
    batches.pause(batch.pk, until=timezone.now() + timedelta(seconds=1))
    worker.join(timeout=30)
    sent = [r for r in sandbox.requests if r["rpc_method"] == "createFirstOrder"]
    assert len(sent) == 3
    assert sent[1]["at"] - sent[0]["at"] >= 1.0
    assert batches.counts(batch)[State.DONE] == 3


def test_auto_renewal_skips_a_suspended_subscription_and_says_so(sandbox, mailoutbox, settings):
    manager = UserFactory(username="sid", email="sid@reseller.example")
    active, stopped = _auto_subscriptions(2, manager=manager)
    provisioning.order_suspend(order=stopped)
    mailoutbox.clear()
    with _near_term_end(active):
        batch = autorenew.auto_renew_due()
        # Claimed once: a second run neither renews it nor reports it again.
        assert autorenew.auto_renew_due() is None
    stopped.refresh_from_db()
    assert stopped.status == Order.Status.SUSPENDED
    renewed = _requests_per_id(sandbox, "createRenewalOrder")
    assert [
        r for r in sandbox.requests if r["json"]["params"].get("parent") == stopped.number
    ] == []
    assert renewed.total() == 1
    assert batch.items.get(object_id=stopped.pk).state == State.REJECTED
    managers = next(m for m in mailoutbox if m.to == [settings.MANAGERS_EMAIL])
    assert managers.subject.endswith("1 renewed, 1 skipped")
    skipped = managers.body.split("Skipped, suspended")[1].split("Renewed automatically")[0]
    assert stopped.number in skipped and active.number not in skipped
    assert "NOT renewed" not in managers.body


def test_auto_renewal_suspended_after_the_claim_is_skipped_too(sandbox):
    (sub,) = _auto_subscriptions(1)
    with _near_term_end(sub):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(batches, "enqueue", lambda batch_id: None)
            batch = autorenew.auto_renew_due()
        provisioning.order_suspend(order=Order.objects.get(pk=sub.pk))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(batches, "enqueue", lambda batch_id: None)
            batches.batch_work(batch_id=batch.pk)
    assert batch.items.get().state == State.REJECTED
    assert _requests_per_id(sandbox, "createRenewalOrder").total() == 0
    sub.refresh_from_db()
    assert sub.status == Order.Status.SUSPENDED


def test_auto_renewal_report_does_not_list_one_renewed_by_hand_as_not_renewed(
    sandbox, mailoutbox, settings
):
    by_hand, by_job = _auto_subscriptions(2)
    with _near_term_end(by_hand):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(batches, "enqueue", lambda batch_id: None)
            batch = autorenew.auto_renew_due()
        provisioning.order_renew(order=Order.objects.get(pk=by_hand.pk))
        mailoutbox.clear()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(batches, "enqueue", lambda batch_id: None)
            batches.batch_work(batch_id=batch.pk)
    [report] = [m for m in mailoutbox if m.to == [settings.MANAGERS_EMAIL]]
    assert report.subject.endswith("1 renewed, 1 renewed meanwhile")
    assert "NOT renewed" not in report.body
    meanwhile = report.body.split("Renewed meanwhile")[1]
    assert by_hand.number in meanwhile and by_job.number not in meanwhile


def test_auto_renewal_leaves_a_renewal_under_way_to_its_retry(sandbox, settings):
    under_way, due = _auto_subscriptions(2)
    with _near_term_end(under_way):
        sandbox.inject("createRenewalOrder", "500-after")
        with pytest.raises(provisioning.OutcomeUnknown):
            provisioning.order_renew(order=Order.objects.get(pk=under_way.pk))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(batches, "enqueue", lambda batch_id: None)
            batch = autorenew.auto_renew_due()
    # Only the other one is claimed and put in the batch: the pending renewal's retry settles
    # the first, with the same ids, and the job neither claims nor reports it.
    assert list(batch.items.values_list("object_id", flat=True)) == [due.pk]
    assert set(AutoRenewal.objects.values_list("subscription_id", flat=True)) == {due.pk}


def test_auto_renewal_reports_as_skipped_only_what_it_skipped(sandbox, settings, mailoutbox):
    (sub,) = _auto_subscriptions(1)
    with _near_term_end(sub):
        sandbox.inject("createRenewalOrder", "respond", status=400, body='"payment overdue"')
        batch = autorenew.auto_renew_due()
        # Suspended after OneOffice refused the job's renewal, before the report is read.
        provisioning.order_suspend(order=Order.objects.get(pk=sub.pk))
    mailoutbox.clear()
    autorenew.auto_renew_report(batch=batch)
    [report] = [m for m in mailoutbox if m.to == [settings.MANAGERS_EMAIL]]
    assert report.subject.endswith("0 renewed, 1 NOT renewed")
    assert "payment overdue" in report.body.split("NOT renewed")[1]
    assert "Skipped, suspended" not in report.body


# A finished batch's page tells the truth later too ------------------------------------------


def test_a_batch_whose_failures_went_through_since_no_longer_offers_them(staff, sandbox):
    orders = _drafts(6)
    sandbox.inject("createFirstOrder", "respond", status=400, body='"no capacity"')
    sandbox.inject("createFirstOrder", "500-before")
    with override_settings(ONEOFFICE_MAX_IN_FLIGHT=1):
        _bulk(staff, "place_selected", orders)
    batch = Batch.objects.get()
    url = reverse("admin:portal_batch_change", args=[batch.pk])
    before = staff.get(url).content.decode()
    assert "Not everything went through." in before
    assert {"Retry them", "Send them again"} <= set(_buttons(staff.get(url)))

    # Fixed meanwhile: the refused one placed by hand, the unknown one settled by its retry.
    for item in batch.items.exclude(state=State.DONE):
        order = Order.objects.get(pk=item.object_id)
        if order.can_retry():
            provisioning.order_retry(order=order)
        else:
            provisioning.order_place(order=order)

    after = staff.get(url).content.decode()
    assert "Not everything went through." not in after
    assert _buttons(staff.get(url)) == []
    assert "2 that did not go through here went through since" in after
    assert after.count("went through since</small>") == 2
    again = reverse("admin:portal_batch_again", args=[batch.pk, "same"])
    staff.post(again)
    assert Batch.objects.count() == 1


def test_send_them_again_leaves_out_refusals_nobody_can_fix(staff, sandbox):
    customer = service.registered()
    # Placed 26 days ago, their monthly terms end within the window; the others just now.
    due = [service.placed(timezone.localdate() - timedelta(days=26), customer=customer)]
    due += [service.placed(due[0].term_start, customer=customer) for _ in range(3)]
    early = service.placed_many(2, customer=customer)
    # Sent without the confirmation, so the early ones reach the service and are refused.
    data = {
        "action": "renew_selected",
        ACTION_CHECKBOX_NAME: [o.pk for o in [*due, *early]],
        "post": "yes",
        "index": 0,
    }
    sandbox.inject("createRenewalOrder", "respond", status=400, body='"payment overdue"')
    with override_settings(ONEOFFICE_MAX_IN_FLIGHT=1):
        staff.post(ORDERS, data)
    batch = Batch.objects.get()
    assert batch.items.filter(state=State.REJECTED).count() == 2
    assert batch.items.filter(state=State.REFUSED).count() == 1

    response = staff.post(reverse("admin:portal_batch_again", args=[batch.pk, "same"]), follow=True)

    again = Batch.objects.exclude(pk=batch.pk).get()
    refused_by_oneoffice = batch.items.get(state=State.REFUSED).object_id
    assert list(again.items.values_list("object_id", flat=True)) == [refused_by_oneoffice]
    assert "2 of them not sent again: the portal would refuse them" in response.content.decode()
